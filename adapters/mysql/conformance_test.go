package mysql

import (
	"context"
	"sync"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
)

// TestConformance runs the shared conformance kit against the real server,
// with the same check functions as the lifecycle tests: they connect with
// the issued credentials and do real work.
func TestConformance(t *testing.T) {
	integration(t)
	t.Parallel()
	rec := &instanceRecorder{}
	report := adaptertest.RunT(t, conformance.Options{
		Factory:                    rec.factory(),
		Settings:                   adapters.MapSettings(testSettings()),
		Plans:                      testPlans(),
		Offering:                   "mysql",
		ProvisionParameters:        nil,
		InvalidProvisionParameters: map[string]any{"charset": "latin1"},
	})
	// The kit uses the credentials itself, by their type.
	adaptertest.RequireVerified(t, report)
	// The kit checks that Unbind and Deprovision succeeded; this checks
	// that they left nothing on the server.
	for _, id := range rec.ids() {
		if left := leftovers(t, context.Background(), id); len(left) > 0 {
			t.Errorf("conformance instance %s left behind: %v", id, left)
		}
	}
}

// instanceRecorder notes every instance ID the kit provisions, so the
// test can look for leftovers by the names derived from them.
type instanceRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *instanceRecorder) factory() adapters.Factory {
	f := Factory()
	next := f.New
	f.New = func(ctx context.Context, cfg adapters.Config) (adapters.Adapter, error) {
		a, err := next(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return recordingAdapter{Adapter: a.(*Adapter), rec: r}, nil
	}
	return f
}

func (r *instanceRecorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// recordingAdapter embeds the adapter, so the kit still finds Updater,
// Pinger and Closer on it.
type recordingAdapter struct {
	*Adapter
	rec *instanceRecorder
}

func (a recordingAdapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	a.rec.mu.Lock()
	a.rec.seen = append(a.rec.seen, req.InstanceID)
	a.rec.mu.Unlock()
	return a.Adapter.Provision(ctx, req)
}
