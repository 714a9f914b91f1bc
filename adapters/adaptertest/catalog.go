package adaptertest

import (
	"context"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/broker/catalog"
)

// MemCatalog builds a catalog from YAML whose offerings use the reference
// adapter (adapter: memory), for tests of what reads a catalog: metrics,
// the catalog webhook, the marketplace. It is closed when the test ends.
func MemCatalog(t testing.TB, yaml string) *catalog.Catalog {
	t.Helper()
	file, err := catalog.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := adapters.NewRegistry(memadapter.Factory(memadapter.NewBackend()))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Build(context.Background(), catalog.BuildOptions{Registry: reg}, file)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return cat
}
