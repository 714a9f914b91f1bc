package adapters

import "context"

// Constructor turns an adapter's own constructor, which returns its
// concrete type, into a Factory's New:
//
//	New: adapters.Constructor(New),
//
// The constructor keeps its concrete result for tests and callers, and
// the compiler checks that the type implements Adapter. On an error the
// Factory returns a nil Adapter, never a nil *T inside a non-nil
// interface, which would pass a caller's `a != nil` check.
func Constructor[A Adapter](newAdapter func(context.Context, Config) (A, error)) func(context.Context, Config) (Adapter, error) {
	return func(ctx context.Context, cfg Config) (Adapter, error) {
		a, err := newAdapter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return a, nil
	}
}
