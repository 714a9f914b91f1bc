package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

// testCallTimeout is short so that the hanging variants cost little; the
// reference adapter answers in microseconds, far inside it.
const testCallTimeout = 250 * time.Millisecond

// options is a complete run against the reference adapter on backend,
// every Check function played by an application talking to backend.
func options(backend *memadapter.Backend, factory adapters.Factory) conformance.Options {
	return conformance.Options{
		Factory:                    factory,
		Settings:                   adapters.MapSettings(map[string]any{"prefix": "kit-"}),
		Plans:                      []adapters.PlanConfig{{Plan: adapters.Plan{ID: "plan-small", Name: "small"}}},
		ProvisionParameters:        map[string]any{"max_keys": 10},
		InvalidProvisionParameters: map[string]any{"max_keys": -1},
		CheckCredentials: func(_ context.Context, creds map[string]any) error {
			if err := backend.Put(creds, "probe", "written"); err != nil {
				return err
			}
			got, err := backend.Get(creds, "probe")
			if err != nil {
				return err
			}
			if got != "written" {
				return fmt.Errorf("read back %q after writing %q", got, "written")
			}
			return nil
		},
		CheckRevoked: func(_ context.Context, creds map[string]any) error {
			if err := backend.Put(creds, "probe", "after unbind"); err == nil {
				return errors.New("the backend still accepts the credentials")
			}
			return nil
		},
		CheckIsolation: func(_ context.Context, credsA, credsB map[string]any) error {
			// A's login aimed at B's database, as a curious tenant would.
			probe := maps.Clone(credsA)
			probe["database"] = credsB["database"]
			if _, err := backend.Get(probe, "probe"); !errors.Is(err, memadapter.ErrAuthentication) {
				return fmt.Errorf("reading the other database: want ErrAuthentication, got %v", err)
			}
			if err := backend.Put(probe, "intruder", "x"); !errors.Is(err, memadapter.ErrAuthentication) {
				return fmt.Errorf("writing the other database: want ErrAuthentication, got %v", err)
			}
			return nil
		},
		CallTimeout:  testCallTimeout,
		PollInterval: 5 * time.Millisecond,
	}
}

// wrapped builds the reference adapter and lets wrap break it.
func wrapped(backend *memadapter.Backend, wrap func(*memadapter.Adapter) adapters.Adapter) adapters.Factory {
	return adapters.Factory{
		Name: "broken",
		New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			inner, err := memadapter.New(cfg, backend)
			if err != nil {
				return nil, err
			}
			return wrap(inner), nil
		},
	}
}

// variant replaces single methods of the reference adapter, so each
// broken variant breaks one promise and keeps the others.
type variant struct {
	*memadapter.Adapter
	provision func(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error)
	bind      func(context.Context, adapters.BindRequest) (adapters.BindResult, error)
	unbind    func(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error)
	update    func(context.Context, adapters.UpdateRequest) (adapters.UpdateResult, error)
	inspect   func(context.Context, adapters.InspectRequest) (adapters.InspectResult, error)
	ping      func(context.Context) error
}

func (v *variant) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	if v.inspect != nil {
		return v.inspect(ctx, req)
	}
	return v.Adapter.Inspect(ctx, req)
}

func (v *variant) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if v.provision != nil {
		return v.provision(ctx, req)
	}
	return v.Adapter.Provision(ctx, req)
}

func (v *variant) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if v.bind != nil {
		return v.bind(ctx, req)
	}
	return v.Adapter.Bind(ctx, req)
}

func (v *variant) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	if v.unbind != nil {
		return v.unbind(ctx, req)
	}
	return v.Adapter.Unbind(ctx, req)
}

func (v *variant) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	if v.update != nil {
		return v.update(ctx, req)
	}
	return v.Adapter.Update(ctx, req)
}

func (v *variant) Ping(ctx context.Context) error {
	if v.ping != nil {
		return v.ping(ctx)
	}
	return v.Adapter.Ping(ctx)
}

// coreOnly hides every optional capability of the adapter it holds.
type coreOnly struct{ adapters.Adapter }

// asyncAdapter answers every mutating call with Pending and reports the
// outcome on the second Poll, the way an adapter for a slow backend does.
type asyncAdapter struct {
	*memadapter.Adapter
	mu      sync.Mutex
	next    int
	polls   map[string]int
	results map[string]adapters.PollResult
	// pollCount lets the test prove the Pending path ran at all.
	pollCount int
}

func (a *asyncAdapter) pending(res adapters.PollResult) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	token := fmt.Sprintf("op-%d", a.next)
	a.results[token] = res
	return token
}

func (a *asyncAdapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	res, err := a.Adapter.Provision(ctx, req)
	if err != nil {
		return res, err
	}
	return adapters.ProvisionResult{Pending: true, OperationToken: a.pending(adapters.PollResult{State: adapters.Succeeded, Instance: &res})}, nil
}

func (a *asyncAdapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	if _, err := a.Adapter.Deprovision(ctx, req); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	return adapters.DeprovisionResult{Pending: true, OperationToken: a.pending(adapters.PollResult{State: adapters.Succeeded})}, nil
}

func (a *asyncAdapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	res, err := a.Adapter.Bind(ctx, req)
	if err != nil {
		return res, err
	}
	return adapters.BindResult{Pending: true, OperationToken: a.pending(adapters.PollResult{State: adapters.Succeeded, Bind: &res})}, nil
}

func (a *asyncAdapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	if _, err := a.Adapter.Unbind(ctx, req); err != nil {
		return adapters.UnbindResult{}, err
	}
	return adapters.UnbindResult{Pending: true, OperationToken: a.pending(adapters.PollResult{State: adapters.Succeeded})}, nil
}

func (a *asyncAdapter) Poll(ctx context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	if err := ctx.Err(); err != nil {
		return adapters.PollResult{}, fmt.Errorf("poll %s: %w", req.Token, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	res, ok := a.results[req.Token]
	if !ok {
		return adapters.PollResult{}, fmt.Errorf("operation %s: %w", req.Token, adapters.ErrNotFound)
	}
	a.pollCount++
	a.polls[req.Token]++
	if a.polls[req.Token] == 1 {
		return adapters.PollResult{State: adapters.InProgress}, nil
	}
	return res, nil
}

// idSet is a concurrency-safe set of IDs a variant has seen.
type idSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *idSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
}

func (s *idSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// emptyError wraps ErrNotFound with no text at all.
type emptyError struct{}

func (emptyError) Error() string { return "" }
func (emptyError) Unwrap() error { return adapters.ErrNotFound }

// leakedPasswords remembers what a leaking variant put in its errors, so
// the test can prove the report itself does not repeat it.
type leakedPasswords struct {
	mu   sync.Mutex
	last string
	all  []string
}

func TestRunFailsExactlyTheBrokenCheck(t *testing.T) {
	leaks := &leakedPasswords{}
	tests := []struct {
		name    string
		factory func(*memadapter.Backend) adapters.Factory
		// want are the checks that must fail, no more and no fewer.
		want []string
		// wantDetail must appear in the first failure's detail.
		wantDetail string
		// also checks what else the variant needs checked.
		also func(*testing.T, conformance.Report)
	}{
		{
			name:    "reference adapter",
			factory: memadapter.Factory,
		},
		{
			name: "factory ignores unknown settings",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return adapters.Factory{Name: "lenient", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
					var loose map[string]any
					if err := cfg.Settings.Decode(&loose); err != nil {
						return nil, err
					}
					cfg.Settings = adapters.MapSettings(map[string]any{"prefix": loose["prefix"]})
					return memadapter.New(cfg, b)
				}}
			},
			want:       []string{"factory-rejects-unknown-config"},
			wantDetail: "agora_conformance_unknown_field",
		},
		{
			name: "factory fails",
			factory: func(*memadapter.Backend) adapters.Factory {
				return adapters.Factory{Name: "down", New: func(context.Context, adapters.Config) (adapters.Adapter, error) {
					return nil, errors.New("cannot reach the backend")
				}}
			},
			want:       []string{"factory"},
			wantDetail: "cannot reach the backend",
		},
		{
			name: "repeat provision returns ErrAlreadyExists",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					var provisioned idSet
					return &variant{Adapter: inner, provision: func(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
						if provisioned.has(req.InstanceID) {
							return adapters.ProvisionResult{}, fmt.Errorf("instance %s: %w", req.InstanceID, adapters.ErrAlreadyExists)
						}
						res, err := inner.Provision(ctx, req)
						if err == nil {
							provisioned.add(req.InstanceID)
						}
						return res, err
					}}
				})
			},
			// The race check's final repeat is a repeat too.
			want:       []string{"idempotent-provision", "concurrent-repeat"},
			wantDetail: "already exists",
		},
		{
			name: "inspect finds an instance only by its receipt",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, inspect: func(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
						if req.Receipt == nil {
							return adapters.InspectResult{}, nil
						}
						return inner.Inspect(ctx, req)
					}}
				})
			},
			want:       []string{"inspect"},
			wantDetail: "receipt passed: false",
		},
		{
			name: "inspect says every instance exists",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, inspect: func(context.Context, adapters.InspectRequest) (adapters.InspectResult, error) {
						return adapters.InspectResult{Exists: true}, nil
					}}
				})
			},
			want:       []string{"inspect", "inspect-gone"},
			wantDetail: "never-created instance",
		},
		{
			name: "same credentials for every binding",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					var mu sync.Mutex
					type login struct {
						bindingID string
						creds     map[string]any
					}
					first := map[string]login{}
					return &variant{Adapter: inner, bind: func(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
						res, err := inner.Bind(ctx, req)
						if err != nil {
							return res, err
						}
						mu.Lock()
						defer mu.Unlock()
						if l, ok := first[req.InstanceID]; ok && l.bindingID != req.BindingID {
							res.Credentials = l.creds // the instance's one login, handed to everyone
						} else {
							first[req.InstanceID] = login{req.BindingID, res.Credentials}
						}
						return res, nil
					}}
				})
			},
			want:       []string{"distinct-credentials"},
			wantDetail: "identical credentials",
		},
		{
			name: "bind on a never-provisioned instance issues credentials",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, bind: func(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
						res, err := inner.Bind(ctx, req)
						if !errors.Is(err, adapters.ErrNotFound) {
							return res, err
						}
						// Creates the instance on the way instead of answering not found.
						if _, err := inner.Provision(ctx, adapters.ProvisionRequest{InstanceID: req.InstanceID, Plan: req.Plan}); err != nil {
							return adapters.BindResult{}, err
						}
						return inner.Bind(ctx, req)
					}}
				})
			},
			want:       []string{"bind-missing-instance"},
			wantDetail: "returned credentials",
		},
		{
			name: "unbind of a never-created binding errors",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					var bound idSet
					return &variant{
						Adapter: inner,
						bind: func(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
							bound.add(req.BindingID)
							return inner.Bind(ctx, req)
						},
						unbind: func(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
							if !bound.has(req.BindingID) {
								return adapters.UnbindResult{}, fmt.Errorf("binding %s: no such user", req.BindingID)
							}
							return inner.Unbind(ctx, req)
						},
					}
				})
			},
			want:       []string{"unbind-missing", "unbind-missing-instance"},
			wantDetail: "no such user",
		},
		{
			name: "repeated unbind errors",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					var removed idSet
					return &variant{Adapter: inner, unbind: func(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
						if removed.has(req.BindingID) {
							return adapters.UnbindResult{}, errors.New("user was already dropped")
						}
						res, err := inner.Unbind(ctx, req)
						if err == nil {
							removed.add(req.BindingID)
						}
						return res, err
					}}
				})
			},
			want:       []string{"idempotent-unbind"},
			wantDetail: "already dropped",
		},
		{
			name: "unbind does not revoke",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, unbind: func(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
						return adapters.UnbindResult{}, nil
					}}
				})
			},
			want:       []string{"credentials-revoked"},
			wantDetail: "still work",
		},
		{
			name: "accepts invalid parameters",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, provision: func(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
						req.Parameters = nil
						return inner.Provision(ctx, req)
					}}
				})
			},
			want:       []string{"invalid-parameters"},
			wantDetail: "accepted",
		},
		{
			name: "password leaked in an error",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{
						Adapter: inner,
						bind: func(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
							res, err := inner.Bind(ctx, req)
							if err == nil {
								leaks.mu.Lock()
								leaks.last, _ = res.Credentials["password"].(string)
								leaks.mu.Unlock()
							}
							return res, err
						},
						unbind: func(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
							res, err := inner.Unbind(ctx, req)
							if errors.Is(err, adapters.ErrNotFound) {
								leaks.mu.Lock()
								defer leaks.mu.Unlock()
								leaks.all = append(leaks.all, leaks.last)
								return res, fmt.Errorf("binding %s is gone (last password issued: %s): %w", req.BindingID, leaks.last, err)
							}
							return res, err
						},
					}
				})
			},
			want:       []string{"error-shapes"},
			wantDetail: "contains the credential password",
			also: func(t *testing.T, report conformance.Report) {
				leaks.mu.Lock()
				defer leaks.mu.Unlock()
				if len(leaks.all) == 0 {
					t.Fatal("the variant never leaked: the test proves nothing")
				}
				out := printed(report)
				for _, p := range leaks.all {
					if strings.Contains(out, p) {
						t.Errorf("the report repeats a leaked password:\n%s", out)
					}
				}
			},
		},
		{
			name: "error with an empty message",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, unbind: func(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
						res, err := inner.Unbind(ctx, req)
						if errors.Is(err, adapters.ErrNotFound) {
							return res, emptyError{}
						}
						return res, err
					}}
				})
			},
			want:       []string{"error-shapes"},
			wantDetail: "empty message",
		},
		{
			name: "ignores a cancelled context",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, provision: func(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
						return inner.Provision(context.WithoutCancel(ctx), req)
					}}
				})
			},
			want:       []string{"context-cancellation"},
			wantDetail: "succeeded",
		},
		{
			name: "slow ping ignores its deadline",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, ping: func(context.Context) error {
						time.Sleep(testCallTimeout * 7 / 5) // past the deadline, inside the grace period
						return nil
					}}
				})
			},
			want:       []string{"timeouts"},
			wantDetail: "Ping (in ping): took",
		},
		{
			name: "update hangs beyond CallTimeout",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, update: func(_ context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
						time.Sleep(6 * testCallTimeout) // past the grace period: abandoned
						return inner.Update(context.Background(), req)
					}}
				})
			},
			want:       []string{"update", "timeouts"},
			wantDetail: "stopped waiting",
		},
		{
			name: "pending without a Poller",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, update: func(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
						res, err := inner.Update(ctx, req)
						res.Pending, res.OperationToken = true, "op-1"
						return res, err
					}}
				})
			},
			want:       []string{"update"},
			wantDetail: "does not implement adapters.Poller",
		},
		{
			name: "ping panics",
			factory: func(b *memadapter.Backend) adapters.Factory {
				return wrapped(b, func(inner *memadapter.Adapter) adapters.Adapter {
					return &variant{Adapter: inner, ping: func(context.Context) error {
						panic("connection pool used before it was opened")
					}}
				})
			},
			want:       []string{"ping"},
			wantDetail: "kit_test.go", // the stack points at the adapter's own line
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			backend := memadapter.NewBackend()
			report := conformance.Run(t.Context(), options(backend, tt.factory(backend)))

			var failed []string
			for _, c := range report.Results {
				if c.Failed() {
					failed = append(failed, c.Name)
					if c.Hint == "" {
						t.Errorf("%s failed without a hint", c.Name)
					}
				}
			}
			if !slices.Equal(failed, tt.want) {
				t.Errorf("failed checks = %q, want %q\n%s", failed, tt.want, printed(report))
			}
			if report.Failed() != (len(tt.want) > 0) {
				t.Errorf("Failed() = %v with %d expected failures", report.Failed(), len(tt.want))
			}
			if tt.wantDetail != "" && len(failed) > 0 {
				if first := result(report, failed[0]); !strings.Contains(first.Detail, tt.wantDetail) {
					t.Errorf("%s detail = %q, want it to contain %q", first.Name, first.Detail, tt.wantDetail)
				}
			}
			if left := backend.Databases(); len(left) > 0 {
				t.Errorf("the run left databases behind: %q", left)
			}
			if tt.also != nil {
				tt.also(t, report)
			}
		})
	}
}

func TestRunFollowsPendingThroughPoller(t *testing.T) {
	backend := memadapter.NewBackend()
	var async *asyncAdapter
	factory := wrapped(backend, func(inner *memadapter.Adapter) adapters.Adapter {
		a := &asyncAdapter{Adapter: inner, polls: map[string]int{}, results: map[string]adapters.PollResult{}}
		if async == nil {
			async = a // the first adapter built is the one under test
		}
		return a
	})
	report := conformance.Run(t.Context(), options(backend, factory))
	if report.Failed() {
		t.Fatalf("an adapter that completes through Poll failed:\n%s", printed(report))
	}
	async.mu.Lock()
	defer async.mu.Unlock()
	if async.pollCount == 0 {
		t.Error("Poll was never called: the Pending path was not exercised")
	}
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the run left databases behind: %q", left)
	}
}

func TestRunSkipsWhatIsNotConfigured(t *testing.T) {
	backend := memadapter.NewBackend()
	opts := options(backend, wrapped(backend, func(inner *memadapter.Adapter) adapters.Adapter {
		return coreOnly{inner}
	}))
	opts.CheckCredentials, opts.CheckRevoked, opts.CheckIsolation, opts.InvalidProvisionParameters = nil, nil, nil, nil
	report := conformance.Run(t.Context(), opts)
	if report.Failed() {
		t.Fatalf("unexpected failure:\n%s", printed(report))
	}
	want := map[string]string{
		"ping":                         "adapters.Pinger",
		"update":                       "adapters.Updater",
		"inspect":                      "adapters.Inspector",
		"inspect-gone":                 "adapters.Inspector",
		"credentials-work":             "unverified: type (none)",
		"credentials-revoked":          "unverified: type (none)",
		"isolation":                    "unverified: type (none)",
		"deprovision-revokes-bindings": "unverified: type (none)",
		"invalid-parameters":           "InvalidProvisionParameters",
	}
	for name, reason := range want {
		c := result(report, name)
		if !c.Skipped || !strings.Contains(c.Detail, reason) {
			t.Errorf("%s: skipped=%v detail=%q, want skipped naming %q", name, c.Skipped, c.Detail, reason)
		}
	}
	if got := report.Summary(); got != "20 passed, 0 failed, 9 skipped, unverified: type (none)" {
		t.Errorf("Summary() = %q", got)
	}
	if !slices.Equal(report.Unverified, []string{"(none)"}) {
		t.Errorf("Unverified = %q, want the missing type once", report.Unverified)
	}
}

func TestRunWithCancelledContextFailsAndLeavesNothing(t *testing.T) {
	backend := memadapter.NewBackend()
	ctx, cancel := context.WithCancel(t.Context())
	opts := options(backend, memadapter.Factory(backend))
	// Cancel the run as soon as the main instance exists.
	opts.Logf = func(format string, args ...any) {
		if strings.HasPrefix(fmt.Sprintf(format, args...), "PASS provision ") {
			cancel()
		}
	}
	report := conformance.Run(ctx, opts)
	if !report.Failed() {
		t.Errorf("a cancelled run must not pass:\n%s", printed(report))
	}
	if c := result(report, "bind"); !c.Failed() || !strings.Contains(c.Detail, "cancelled") {
		t.Errorf("bind after cancellation: %+v", c)
	}
	if c := result(report, "cleanup"); !c.Passed {
		t.Errorf("cleanup must still run: %+v", c)
	}
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the run left databases behind: %q", left)
	}
}

func TestRunRejectsUnusableOptions(t *testing.T) {
	report := conformance.Run(t.Context(), conformance.Options{Plan: "nope"})
	if len(report.Results) != 1 || report.Results[0].Name != "options" || !report.Failed() {
		t.Fatalf("want one failed options result, got %+v", report.Results)
	}
	for _, want := range []string{"no Factory.New", "no plans"} {
		if !strings.Contains(report.Results[0].Detail, want) {
			t.Errorf("detail %q does not mention %q", report.Results[0].Detail, want)
		}
	}
}

func TestReportPrint(t *testing.T) {
	report := conformance.Report{Results: []conformance.CheckResult{
		{Name: "idempotent-provision", Passed: true, Duration: 120*time.Millisecond + 431*time.Microsecond},
		{Name: "distinct-credentials", Detail: "the two bindings got identical credentials", Hint: "Create a user per binding"},
		{Name: "isolation", Skipped: true, Detail: "Options.CheckIsolation is not set"},
		{Name: "unbind", Detail: "first\nsecond", Hint: "fix it"},
	}}
	var out bytes.Buffer
	report.Print(&out)
	want := `PASS idempotent-provision (120ms)
FAIL distinct-credentials: the two bindings got identical credentials
      hint: Create a user per binding
SKIP isolation: Options.CheckIsolation is not set
FAIL unbind: first
      second
      hint: fix it
1 passed, 2 failed, 1 skipped
`
	if out.String() != want {
		t.Errorf("Print wrote\n%s\nwant\n%s", out.String(), want)
	}
}

func result(r conformance.Report, name string) conformance.CheckResult {
	for _, c := range r.Results {
		if c.Name == name {
			return c
		}
	}
	return conformance.CheckResult{Name: name, Detail: "no such check in the report"}
}

func printed(r conformance.Report) string {
	var b bytes.Buffer
	r.Print(&b)
	return b.String()
}

// TestRunDerivesInvalidParametersFromTheSchema proves the check runs with
// no invalid parameters given, from the plan's schema alone, and fails
// an adapter that accepts what the schema forbids.
func TestRunDerivesInvalidParametersFromTheSchema(t *testing.T) {
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"max_keys": map[string]any{"type": "integer", "minimum": 1, "maximum": 1000},
	}}
	backend := memadapter.NewBackend()
	opts := options(backend, memadapter.Factory(backend))
	opts.InvalidProvisionParameters, opts.ProvisionSchema = nil, schema
	// The reference adapter rejects max_keys 0 (minimum 1); it takes any
	// larger number, so the derived 1001 (past the maximum) is accepted.
	report := conformance.Run(t.Context(), opts)
	c := result(report, "invalid-parameters")
	if !c.Failed() || !strings.Contains(c.Detail, `{"max_keys":1001}`) || !strings.Contains(c.Detail, "above its maximum 1000") {
		t.Errorf("invalid-parameters = %+v, want it failed on the derived max_keys 1001", c)
	}

	schema["properties"] = map[string]any{"max_keys": map[string]any{"type": "integer", "minimum": 1}}
	report = conformance.Run(t.Context(), opts)
	if c := result(report, "invalid-parameters"); !c.Passed {
		t.Errorf("invalid-parameters with the derived max_keys 0 = %+v, want passed", c)
	}
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the runs left databases behind: %q", left)
	}
}
