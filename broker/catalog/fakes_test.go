package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

// fakeSettings is the fake adapter's offering config. Fail lets a fixture
// make the factory report problems, the way a real adapter reports bad
// config: errors.Join of one error per problem.
type fakeSettings struct {
	Region   string   `json:"region"`
	Password string   `json:"password"`
	Fail     []string `json:"fail"`
}

type fakePlanSettings struct {
	Size int `json:"size"`
}

// fakeAdapter records what its factory was given and whether it was closed.
type fakeAdapter struct {
	offering string
	settings fakeSettings
	plans    map[string]fakePlanSettings // by plan name
	planIDs  map[string]string           // plan name -> ID the factory saw

	mu     sync.Mutex
	closed int
}

func (a *fakeAdapter) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return adapters.ProvisionResult{}, nil
}

func (a *fakeAdapter) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}

func (a *fakeAdapter) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{}, nil
}

func (a *fakeAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

func (a *fakeAdapter) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed++
	return nil
}

func (a *fakeAdapter) closeCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// fakeUpdater is a fake adapter that can update instances.
type fakeUpdater struct{ fakeAdapter }

func (a *fakeUpdater) Update(context.Context, adapters.UpdateRequest) (adapters.UpdateResult, error) {
	return adapters.UpdateResult{}, nil
}

var (
	_ adapters.Adapter = (*fakeAdapter)(nil)
	_ adapters.Closer  = (*fakeAdapter)(nil)
	_ adapters.Updater = (*fakeUpdater)(nil)
)

// fakes keeps every adapter its factories built, for assertions.
type fakes struct {
	mu    sync.Mutex
	built []*fakeAdapter
}

func (f *fakes) add(a *fakeAdapter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.built = append(f.built, a)
}

func (f *fakes) byOffering(t *testing.T, name string) *fakeAdapter {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.built {
		if a.offering == name {
			return a
		}
	}
	t.Fatalf("no adapter was built for offering %q", name)
	return nil
}

func decodeFake(cfg adapters.Config) (*fakeAdapter, error) {
	a := &fakeAdapter{offering: cfg.Offering, plans: map[string]fakePlanSettings{}, planIDs: map[string]string{}}
	if err := cfg.Settings.Decode(&a.settings); err != nil {
		return nil, fmt.Errorf("decode settings: %w", err)
	}
	var errs []error
	for _, p := range cfg.Plans {
		var ps fakePlanSettings
		if err := p.Settings.Decode(&ps); err != nil {
			errs = append(errs, fmt.Errorf("plan %s: %w", p.Name, err))
		}
		a.plans[p.Name] = ps
		a.planIDs[p.Name] = p.ID
	}
	for _, msg := range a.settings.Fail {
		errs = append(errs, errors.New(msg))
	}
	return a, errors.Join(errs...)
}

// newFakeRegistry offers "fake" (no updates), "fake-updater" and
// "secrets" (the real catalog.yml's adapter, with its documented config).
func newFakeRegistry(t testing.TB, rec *fakes) *adapters.Registry {
	t.Helper()
	reg, err := adapters.NewRegistry(
		adapters.Factory{Name: "fake", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			a, err := decodeFake(cfg)
			if err != nil {
				return nil, err
			}
			rec.add(a)
			return a, nil
		}, Check: func(cfg adapters.Config) (adapters.Capabilities, error) {
			_, err := decodeFake(cfg)
			return adapters.Capabilities{}, err
		}},
		adapters.Factory{Name: "fake-updater", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			a, err := decodeFake(cfg)
			if err != nil {
				return nil, err
			}
			u := &fakeUpdater{}
			u.offering, u.settings, u.plans, u.planIDs = a.offering, a.settings, a.plans, a.planIDs
			rec.add(&u.fakeAdapter)
			return u, nil
		}, Check: func(cfg adapters.Config) (adapters.Capabilities, error) {
			_, err := decodeFake(cfg)
			return adapters.Capabilities{Updater: true}, err
		}},
		adapters.Factory{Name: "secrets", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			// The fields adapters/secrets documents, decoded as strictly.
			var s struct {
				VaultAddr       string `json:"vault_addr"`
				Token           string `json:"token"`
				KVMount         string `json:"kv_mount"`
				PathPrefix      string `json:"path_prefix"`
				ApproleMount    string `json:"approle_mount"`
				PublicVaultAddr string `json:"public_vault_addr"`
			}
			if err := cfg.Settings.Decode(&s); err != nil {
				return nil, err
			}
			if s.VaultAddr == "" || s.Token == "" {
				return nil, errors.New("vault_addr and token are required")
			}
			for _, p := range cfg.Plans {
				var ps struct {
					TokenTTL    string `json:"token_ttl"`
					SecretIDTTL string `json:"secret_id_ttl"`
					MaxSecrets  *int   `json:"max_secrets"`
				}
				if err := p.Settings.Decode(&ps); err != nil {
					return nil, fmt.Errorf("plan %s: %w", p.Name, err)
				}
			}
			a := &fakeAdapter{offering: cfg.Offering, settings: fakeSettings{Password: s.Token}}
			rec.add(a)
			return a, nil
		}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// fakeVault is a SecretResolver over a map that counts its calls.
type fakeVault struct {
	mu      sync.Mutex
	secrets map[string]string // "path#key" -> value
	calls   int
}

func (v *fakeVault) resolve(_ context.Context, path, key string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	s, ok := v.secrets[path+"#"+key]
	if !ok {
		return "", fmt.Errorf("no secret %s at %s", key, path)
	}
	return s, nil
}
