package adapters

import (
	"context"
	"errors"
	"testing"
)

type nopAdapter struct{}

func (*nopAdapter) Provision(context.Context, ProvisionRequest) (ProvisionResult, error) {
	return ProvisionResult{}, nil
}
func (*nopAdapter) Deprovision(context.Context, DeprovisionRequest) (DeprovisionResult, error) {
	return DeprovisionResult{}, nil
}
func (*nopAdapter) Bind(context.Context, BindRequest) (BindResult, error) { return BindResult{}, nil }
func (*nopAdapter) Unbind(context.Context, UnbindRequest) (UnbindResult, error) {
	return UnbindResult{}, nil
}

func TestConstructor(t *testing.T) {
	broken := errors.New("port: 0 is not between 1 and 65535")
	newAdapter := Constructor(func(_ context.Context, cfg Config) (*nopAdapter, error) {
		if cfg.Offering == "broken" {
			// What a constructor that fails half-way typically returns.
			return (*nopAdapter)(nil), broken
		}
		return &nopAdapter{}, nil
	})
	a, err := newAdapter(context.Background(), Config{Offering: "broken"})
	if a != nil || !errors.Is(err, broken) {
		t.Errorf("on error: %#v, %v; want a nil Adapter interface and the error", a, err)
	}
	a, err = newAdapter(context.Background(), Config{Offering: "db"})
	if _, ok := a.(*nopAdapter); !ok || err != nil {
		t.Errorf("on success: %#v, %v; want the adapter", a, err)
	}
}
