// Package memadapter is the reference adapter: an in-memory key/value
// "database" per instance and a user per binding. It passes every check of
// the conformance kit (package conformance) and is short enough to read in
// one sitting, so producers can copy its shape: strict settings, parameter
// validation before any backend work, idempotent calls, names derived from
// IDs rather than from receipts, ctx honoured everywhere.
//
// It must never be used for real data: everything lives in process memory.
package memadapter

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/agora-osb/agora/adapters"
)

// Name is what catalog.yml uses in `adapter:`.
const Name = "memory"

// defaultMaxKeys applies when the platform sends no max_keys parameter.
const defaultMaxKeys = 100

// Settings is the offering's `config:` section.
type Settings struct {
	// Prefix starts every database name, so two offerings that share one
	// Backend never collide.
	Prefix string `json:"prefix"`
}

// prefixPattern keeps database names to characters every real backend
// accepts in an identifier.
var prefixPattern = regexp.MustCompile(`^[a-z0-9-]{0,32}$`)

// Validate reports every problem with s at once.
func (s Settings) Validate() error {
	if !prefixPattern.MatchString(s.Prefix) {
		return fmt.Errorf("prefix: %q must be at most 32 characters of a-z, 0-9 and -", s.Prefix)
	}
	return nil
}

// planSettings is empty on purpose: decoding into it still rejects any
// field a catalog author sets by mistake.
type planSettings struct{}

// Adapter manages databases and users on one Backend.
type Adapter struct {
	backend *Backend
	prefix  string
}

// Factory returns the factory for catalog.yml. Every adapter it builds
// shares backend; a nil backend gives each adapter a fresh one.
func Factory(backend *Backend) adapters.Factory {
	return adapters.Factory{
		Name:        Name,
		Description: "In-memory key/value databases; the reference adapter for the conformance kit",
		New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			return New(cfg, backend)
		},
	}
}

// New decodes and validates cfg strictly, reporting every problem at once.
func New(cfg adapters.Config, backend *Backend) (*Adapter, error) {
	var errs []error
	var s Settings
	if cfg.Settings != nil {
		if err := cfg.Settings.Decode(&s); err != nil {
			errs = append(errs, fmt.Errorf("config: %w", err))
		}
	}
	if err := s.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("config.%w", err))
	}
	for i, p := range cfg.Plans {
		if p.Settings == nil {
			continue
		}
		if err := p.Settings.Decode(&planSettings{}); err != nil {
			errs = append(errs, fmt.Errorf("plans[%d] (%s).config: %w", i, p.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if backend == nil {
		backend = NewBackend()
	}
	return &Adapter{backend: backend, prefix: s.Prefix}, nil
}

// databaseName is derived from the instance ID, never read back from the
// receipt, so a Deprovision after a lost Provision response still finds
// what to remove.
func (a *Adapter) databaseName(instanceID string) string {
	return a.prefix + instanceID
}

// userName is derived from the binding ID for the same reason.
func userName(bindingID string) string {
	return "u-" + bindingID
}

type instanceParameters struct {
	MaxKeys *int `json:"max_keys"`
}

// maxKeys validates the parameters before any backend work, so a rejected
// request changes nothing.
func maxKeys(params map[string]any) (int, error) {
	var p instanceParameters
	if err := decodeStrict(params, &p); err != nil {
		return 0, adapters.InvalidParameters("%v", err)
	}
	if p.MaxKeys == nil {
		return defaultMaxKeys, nil
	}
	if *p.MaxKeys < 1 {
		return 0, adapters.InvalidParameters("max_keys must be at least 1, got %d", *p.MaxKeys)
	}
	return *p.MaxKeys, nil
}

func decodeStrict(params map[string]any, v any) error {
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Provision creates the instance's database. A repeat with the same
// parameters succeeds; a database of the same name with different
// parameters is a conflict this request did not create.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.ProvisionResult{}, fmt.Errorf("provision %s: %w", req.InstanceID, err)
	}
	keys, err := maxKeys(req.Parameters)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	name := a.databaseName(req.InstanceID)
	b := a.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	if db, ok := b.databases[name]; ok {
		if db.maxKeys != keys {
			return adapters.ProvisionResult{}, fmt.Errorf("database %s has max_keys %d, not %d: %w", name, db.maxKeys, keys, adapters.ErrAlreadyExists)
		}
	} else {
		b.databases[name] = &database{maxKeys: keys, users: map[string]string{}, data: map[string]string{}}
	}
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Labels: map[string]any{"database": name}},
		Receipt:  adapters.Receipt{"database": name},
	}, nil
}

// Update changes max_keys in place. Plan changes need no backend work.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.UpdateResult{}, fmt.Errorf("update %s: %w", req.InstanceID, err)
	}
	keys, err := maxKeys(req.Parameters)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	name := a.databaseName(req.InstanceID)
	b := a.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	db, ok := b.databases[name]
	if !ok {
		return adapters.UpdateResult{}, fmt.Errorf("database %s: %w", name, adapters.ErrNotFound)
	}
	db.maxKeys = keys
	return adapters.UpdateResult{Receipt: adapters.Receipt{"database": name}}, nil
}

// Deprovision drops the database with its users, as DROP DATABASE would.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.DeprovisionResult{}, fmt.Errorf("deprovision %s: %w", req.InstanceID, err)
	}
	name := a.databaseName(req.InstanceID)
	b := a.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.databases[name]; !ok {
		return adapters.DeprovisionResult{}, fmt.Errorf("database %s: %w", name, adapters.ErrNotFound)
	}
	delete(b.databases, name)
	return adapters.DeprovisionResult{}, nil
}

// Inspect implements adapters.Inspector: the instance is its database,
// named from the instance ID, so it is found without a receipt too.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.InspectResult{}, fmt.Errorf("inspect %s: %w", req.InstanceID, err)
	}
	name := a.databaseName(req.InstanceID)
	a.backend.mu.Lock()
	_, ok := a.backend.databases[name]
	a.backend.mu.Unlock()
	if !ok {
		return adapters.InspectResult{Detail: "database " + name + " missing"}, nil
	}
	return adapters.InspectResult{Exists: true, Detail: "database " + name + " exists", Receipt: adapters.Receipt{"database": name}}, nil
}

// Bind creates the binding's user with a fresh random password. A repeat
// sets a new password and returns it, as an adapter for a real database
// must: it cannot read the old password back.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.BindResult{}, fmt.Errorf("bind %s: %w", req.BindingID, err)
	}
	if len(req.Parameters) > 0 {
		return adapters.BindResult{}, adapters.InvalidParameters("bindings take no parameters")
	}
	name := a.databaseName(req.InstanceID)
	user := userName(req.BindingID)
	password := rand.Text()
	b := a.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	db, ok := b.databases[name]
	if !ok {
		return adapters.BindResult{}, fmt.Errorf("database %s: %w", name, adapters.ErrNotFound)
	}
	db.users[user] = password
	return adapters.BindResult{
		Credentials: map[string]any{
			"database": name,
			"username": user,
			"password": password,
			"uri":      fmt.Sprintf("mem://%s:%s@memadapter/%s", user, password, name),
		},
		Receipt: adapters.Receipt{"username": user},
	}, nil
}

// Unbind drops the binding's user, which revokes its credentials.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.UnbindResult{}, fmt.Errorf("unbind %s: %w", req.BindingID, err)
	}
	name := a.databaseName(req.InstanceID)
	user := userName(req.BindingID)
	b := a.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	db, ok := b.databases[name]
	if !ok {
		return adapters.UnbindResult{}, fmt.Errorf("database %s: %w", name, adapters.ErrNotFound)
	}
	if _, ok := db.users[user]; !ok {
		return adapters.UnbindResult{}, fmt.Errorf("user %s on %s: %w", user, name, adapters.ErrNotFound)
	}
	delete(db.users, user)
	return adapters.UnbindResult{}, nil
}

// Ping always answers while ctx lives: the backend is in process.
func (a *Adapter) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
)
