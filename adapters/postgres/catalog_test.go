package postgres

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/mysql"
	"github.com/agora-osb/agora/broker/catalog"
)

// TestCatalogSection validates the data-team's catalog snippets with the
// catalog package, as Agora would at startup: strict fields, schemas, and
// each offering's config through its adapter's factory. The two offerings
// are merged into one producer item, the way they sit in catalog.yml.
func TestCatalogSection(t *testing.T) {
	pg, err := catalog.ParseFile("catalog-section.yml")
	if err != nil {
		t.Fatal(err)
	}
	my, err := catalog.ParseFile("../mysql/catalog-section.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(pg.Producers) != 1 || len(my.Producers) != 1 || pg.Producers[0].Name != my.Producers[0].Name {
		t.Fatalf("each snippet must hold exactly the data-team producer item")
	}
	pg.Producers[0].Offerings = append(pg.Producers[0].Offerings, my.Producers[0].Offerings...)
	registry, err := adapters.NewRegistry(Factory(), mysql.Factory())
	if err != nil {
		t.Fatal(err)
	}
	if err := catalog.Check(catalog.BuildOptions{Registry: registry}, pg); err != nil {
		t.Fatalf("catalog-section.yml:\n%v", err)
	}
}
