package rabbitmq

import (
	"context"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// TestCatalogSection validates catalog-section.yml exactly as Agora does at
// startup (strict fields, schemas, this adapter's factory), so the snippet
// the lead merges into catalog.yml cannot rot.
func TestCatalogSection(t *testing.T) {
	f, err := catalog.ParseFile("catalog-section.yml")
	if err != nil {
		t.Fatal(err)
	}
	registry, err := adapters.NewRegistry(Factory())
	if err != nil {
		t.Fatal(err)
	}
	var resolved []string
	resolve := func(_ context.Context, path, key string) (string, error) {
		resolved = append(resolved, path+"#"+key)
		return "resolved-by-vault", nil
	}
	if err := catalog.Check(catalog.BuildOptions{Registry: registry}, f); err != nil {
		t.Fatalf("catalog-section.yml is invalid:\n%v", err)
	}
	built, err := catalog.Build(context.Background(), catalog.BuildOptions{Registry: registry, Resolve: resolve}, f)
	if err != nil {
		t.Fatalf("catalog-section.yml does not build:\n%v", err)
	}
	defer built.Close()
	if len(resolved) != 1 || !strings.HasPrefix(resolved[0], "agora/adapters/rabbitmq#") {
		t.Errorf("vault references resolved: %v, want the admin password only", resolved)
	}
}
