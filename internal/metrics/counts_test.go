package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/broker/catalog"
)

const countsCatalog = `
producers:
  - name: data-team
    contact: data@example.com
    offerings:
      - name: cache
        description: A cache.
        adapter: memory
        plans:
          - name: small
            description: Small.
          - name: large
            description: Large.
`

// TestEveryPlanHasACount: Redis keeps only non-zero counts, yet every
// plan in the catalog exports its gauges (an emptied plan reads 0), and
// counts of plans gone from the catalog add up under "unknown".
func TestEveryPlanHasACount(t *testing.T) {
	cat := adaptertest.MemCatalog(t, countsCatalog)
	small := catalog.DerivePlanID("data-team", "cache", "small")
	m := New(Sources{
		Catalog: func() *catalog.Catalog { return cat },
		Counts: func(context.Context) ([]PlanCount, error) {
			return []PlanCount{
				{ServiceID: catalog.DeriveOfferingID("data-team", "cache"), PlanID: small, Instances: 3, Bindings: 5},
				{ServiceID: "gone-1", PlanID: "p", Instances: 1},
				{ServiceID: "gone-2", PlanID: "p", Instances: 2, Bindings: 1},
			}, nil
		},
	})
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := w.Body.String()
	for _, want := range []string{
		`agora_instances{offering="cache",plan="small",producer="data-team"} 3`,
		`agora_bindings{offering="cache",plan="small",producer="data-team"} 5`,
		`agora_instances{offering="cache",plan="large",producer="data-team"} 0`,
		`agora_bindings{offering="cache",plan="large",producer="data-team"} 0`,
		`agora_instances{offering="unknown",plan="",producer="unknown"} 3`,
		`agora_bindings{offering="unknown",plan="",producer="unknown"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
}
