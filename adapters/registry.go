package adapters

import (
	"errors"
	"fmt"
	"sort"
)

// Registry is the set of adapter factories a binary offers, keyed by name.
// It is built once from an explicit list (cmd/agora/adapters.go), never
// from init() side effects, so tests can build their own.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry checks the list for empty and duplicate names, reporting
// every problem at once.
func NewRegistry(factories ...Factory) (*Registry, error) {
	r := &Registry{factories: make(map[string]Factory, len(factories))}
	var errs []error
	for i, f := range factories {
		switch {
		case f.Name == "":
			errs = append(errs, fmt.Errorf("factories[%d]: name is empty", i))
		case f.New == nil:
			errs = append(errs, fmt.Errorf("factories[%d] (%s): New is nil", i, f.Name))
		default:
			if _, dup := r.factories[f.Name]; dup {
				errs = append(errs, fmt.Errorf("factories[%d]: duplicate adapter name %q", i, f.Name))
				continue
			}
			r.factories[f.Name] = f
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Lookup returns the factory registered under name.
func (r *Registry) Lookup(name string) (Factory, bool) {
	f, ok := r.factories[name]
	return f, ok
}

// Names returns the registered adapter names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
