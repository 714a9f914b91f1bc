package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

// fakeImporter returns one offering per name, served by the "fake"
// adapter whose config carries the upstream's password as written, and
// records what it was asked.
type fakeImporter struct {
	names []string
	err   error

	mu   sync.Mutex
	reqs []ImportRequest
}

func (fi *fakeImporter) importer(_ context.Context, req ImportRequest) ([]OfferingSpec, error) {
	fi.mu.Lock()
	fi.reqs = append(fi.reqs, req)
	fi.mu.Unlock()
	if fi.err != nil {
		return nil, fi.err
	}
	var specs []OfferingSpec
	for _, name := range fi.names {
		s := OfferingSpec{Name: name, Description: "Imported " + name + ".", Adapter: "fake"}
		if err := s.Config.Encode(map[string]string{"password": req.Upstream.Password}); err != nil {
			return nil, err
		}
		s.Plans = []PlanSpec{{Name: "basic", Description: "Basic.", Async: true}}
		specs = append(specs, s)
	}
	return specs, nil
}

func parseInline(t *testing.T, src string) *File {
	t.Helper()
	f, err := ParseSource("catalog.yml", []byte(src))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return f
}

const upstreamCatalog = `producers:
  - name: team-a
    contact: a@example.com
    offerings:
      - name: svc
        description: Service.
        adapter: fake
        plans:
          - {name: basic, description: Basic.}
  - name: legacy
    contact: legacy@example.com
    upstream:
      url: https://legacy.example/
      username: agora
      password: vault:agora/admin/svc#password
      api_version: "2.14"
`

func TestBuildImportsUpstream(t *testing.T) {
	rec := &fakes{}
	vault := goodVault()
	fi := &fakeImporter{names: []string{"legacy-db", "legacy-cache"}}
	c, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: vault.resolve, Import: fi.importer},
		parseInline(t, upstreamCatalog))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if len(fi.reqs) != 1 {
		t.Fatalf("importer called %d times, want 1", len(fi.reqs))
	}
	req := fi.reqs[0]
	if req.Producer != "legacy" || req.Upstream.URL != "https://legacy.example/" || req.Upstream.APIVersion != "2.14" {
		t.Errorf("import request = %+v", req)
	}
	if req.Password != "svc-admin-pw" || req.Upstream.Password != "vault:agora/admin/svc#password" {
		t.Errorf("importer got password %q (written %q), want it resolved for fetching and as written for config", req.Password, req.Upstream.Password)
	}

	var names []string
	for _, o := range c.Offerings() {
		names = append(names, o.Producer+"/"+o.Name)
	}
	if got := strings.Join(names, " "); got != "team-a/svc legacy/legacy-db legacy/legacy-cache" {
		t.Errorf("offerings = %s", got)
	}
	o, ok := c.Offering(DeriveOfferingID("legacy", "legacy-db"))
	if !ok {
		t.Fatal("imported offering does not have the ID derived from producer and name")
	}
	_, p, ok := c.Plan(o.ID, DerivePlanID("legacy", "legacy-db", "basic"))
	if !ok || !p.Async {
		t.Errorf("imported plan = %+v, want the derived ID and async", p)
	}
	// The reference in the generated config is resolved like any other,
	// from the scope's cache: one Vault read for the whole build.
	if pw := rec.byOffering(t, "legacy-db").settings.Password; pw != "svc-admin-pw" {
		t.Errorf("imported offering's adapter got password %q", pw)
	}
	if vault.calls != 1 {
		t.Errorf("vault read %d times, want 1", vault.calls)
	}
	var body struct {
		Services []struct{ Name string } `json:"services"`
	}
	if err := json.Unmarshal(c.JSON(), &body); err != nil || len(body.Services) != 3 {
		t.Errorf("catalog body has %d services (%v): %s", len(body.Services), err, c.JSON())
	}
}

func TestBuildRejectsUpstreamProblems(t *testing.T) {
	const both = `producers:
  - name: legacy
    contact: l@example.com
    upstream: {url: https://legacy.example/}
    offerings:
      - name: svc
        description: Service.
        adapter: fake
        plans: [{name: basic, description: Basic.}]
`
	const noURL = `producers:
  - name: legacy
    contact: l@example.com
    upstream: {username: agora, password: "vault:nowhere"}
`
	const plain = `producers:
  - name: legacy
    contact: l@example.com
    upstream: {url: https://legacy.example/, password: "vault:agora/admin/svc#password"}
`
	tests := []struct {
		name string
		src  string
		imp  Importer
		want []wantError
	}{
		{"offerings and upstream", both, (&fakeImporter{}).importer, []wantError{
			{"producers[0].upstream", "not both", 4},
		}},
		{"missing url and a malformed reference", noURL, (&fakeImporter{}).importer, []wantError{
			{"producers[0].upstream.url", "is required", 4},
			{"producers[0].upstream.password", "not of the form vault:<path>#<key>", 4},
		}},
		{"no importer", plain, nil, []wantError{
			{"producers[0].upstream", "none is configured", 4},
		}},
		{"importer fails, one line each, secrets scrubbed", plain,
			(&fakeImporter{err: errors.New("upstream broker https://legacy.example/: GET /v2/catalog: connection refused\nlogged in with svc-admin-pw")}).importer,
			[]wantError{
				{"producers[0].upstream", "upstream broker https://legacy.example/: GET /v2/catalog: connection refused", 4},
				{"producers[0].upstream", "logged in with <redacted>", 4},
			}},
		{"importer panics", plain, func(context.Context, ImportRequest) ([]OfferingSpec, error) { panic("boom") }, []wantError{
			{"producers[0].upstream", "importer panicked: boom", 4},
		}},
		{"imported name collides with a hand-written one", upstreamCatalog, (&fakeImporter{names: []string{"svc"}}).importer, []wantError{
			{"producers[1].upstream.services[0].name", `duplicate of producers[0].offerings[0].name ("svc")`, 12},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakes{}
			_, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve, Import: tt.imp},
				parseInline(t, tt.src))
			checkErrors(t, validationErrors(t, err), tt.want)
		})
	}
}

func TestBuildImportsEveryUpstreamAtOnce(t *testing.T) {
	// Each importer waits until both have started: run one after the
	// other, the build would never finish.
	var started sync.WaitGroup
	started.Add(2)
	imp := func(ctx context.Context, req ImportRequest) ([]OfferingSpec, error) {
		started.Done()
		started.Wait()
		s := OfferingSpec{Name: req.Producer + "-db", Description: "Imported.", Adapter: "fake",
			Plans: []PlanSpec{{Name: "basic", Description: "Basic."}}}
		return []OfferingSpec{s}, nil
	}
	src := `producers:
  - {name: one, contact: c, upstream: {url: "https://one.example/"}}
  - {name: two, contact: c, upstream: {url: "https://two.example/"}}
`
	c, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{}), Import: imp}, parseInline(t, src))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if len(c.Offerings()) != 2 || c.Offerings()[0].Name != "one-db" {
		t.Errorf("offerings = %v", c.Offerings())
	}
}

// An upstream section round-trips through the strict decoder: a typo in
// it fails like a typo anywhere else.
func TestParseUpstreamIsStrict(t *testing.T) {
	_, err := ParseSource("catalog.yml", []byte("producers:\n  - name: x\n    contact: c\n    upstream:\n      url: u\n      pasword: p\n"))
	checkErrors(t, validationErrors(t, err), []wantError{{"producers[0].upstream.pasword", `unknown field "pasword"`, 6}})
}
