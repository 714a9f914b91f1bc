package catalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

// TestCheckFindsWhatBuildFinds runs Check and Build over every fixture:
// everything Build reports, Check reports too, except what only a build
// can know (a secret Vault does not hold, an adapter without a Check).
func TestCheckFindsWhatBuildFinds(t *testing.T) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yml") {
			continue
		}
		t.Run(e.Name(), func(t *testing.T) {
			f, err := ParseFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				return // a parse error stops both alike
			}
			rec := &fakes{}
			opts := BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve}
			built, buildErr := Build(context.Background(), opts, f)
			if built != nil {
				_ = built.Close()
			}
			checkErr := Check(opts, f)
			got := problemSet(checkErr)
			for _, p := range problemSet(buildErr) {
				if !slices.Contains(got, p) && !strings.Contains(p, "resolve vault reference") && !strings.Contains(p, `adapter "secrets"`) {
					t.Errorf("Build found %q, Check did not (Check: %v)", p, got)
				}
			}
		})
	}
}

func problemSet(err error) []string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	out := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		out[i] = fe.String()
	}
	return out
}

// TestRebuildReusesWhatDidNotChange: a rebuild with Previous keeps the
// adapters of unchanged offerings, builds only the changed one, and an
// adapter is closed only when the last catalog holding it is.
func TestRebuildReusesWhatDidNotChange(t *testing.T) {
	rec := &fakes{}
	opts := BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve}
	good := parseFixture(t, "good.yml")
	first, err := Build(context.Background(), opts, good)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.built) != 2 {
		t.Fatalf("first build made %d adapters, want 2", len(rec.built))
	}

	changed := parseFixture(t, "good.yml")
	changed.Producers[0].Offerings[0].Plans[0].Description = "A new description changes no adapter."
	opts.Previous = first
	second, err := Build(context.Background(), opts, changed)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.built) != 2 {
		t.Fatalf("a rebuild without config changes built %d new adapters, want none", len(rec.built)-2)
	}
	for i, o := range second.Offerings() {
		if o.Adapter != first.Offerings()[i].Adapter {
			t.Errorf("offering %s got a new adapter", o.Name)
		}
	}

	// The first catalog is retired: its adapters live on in the second.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range rec.built {
		if a.closeCount() != 0 {
			t.Errorf("%s was closed while the second catalog still serves it", a.offering)
		}
	}

	// A config change builds that offering's adapter anew, and only it.
	third := parseFixture(t, "good.yml")
	setConfig(t, &third.Producers[0].Offerings[0], "region: elsewhere")
	opts.Previous = second
	rebuilt, err := Build(context.Background(), opts, third)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.built) != 3 || rec.built[2].offering != third.Producers[0].Offerings[0].Name {
		t.Fatalf("a config change built %d adapters in all (want 3, the changed offering's last)", len(rec.built))
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	if rec.built[0].closeCount() != 1 || rec.built[1].closeCount() != 0 {
		t.Errorf("after the second catalog closed: replaced adapter closed %d times (want 1), kept one %d (want 0)",
			rec.built[0].closeCount(), rec.built[1].closeCount())
	}
	if err := rebuilt.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range rec.built {
		if a.closeCount() != 1 {
			t.Errorf("%s closed %d times after every catalog closed, want 1", a.offering, a.closeCount())
		}
	}
	var _ adapters.Adapter = rec.built[0]
}

func setConfig(t *testing.T, o *OfferingSpec, yamlText string) {
	t.Helper()
	f, err := Parse([]byte("producers:\n  - name: x\n    contact: c\n    offerings:\n      - name: y\n        description: d\n        adapter: fake\n        config: {" + strings.ReplaceAll(yamlText, ": ", ": ") + "}\n        plans: [{name: p, description: d}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	o.Config = f.Producers[0].Offerings[0].Config
}

// CheckWithSecrets reads every vault reference and reports the ones that
// do not resolve at their field paths, and builds no adapter.
func TestCheckWithSecrets(t *testing.T) {
	rec := &fakes{}
	opts := BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve}
	if err := CheckWithSecrets(context.Background(), opts, parseFixture(t, "vault.yml")); err != nil {
		t.Fatalf("every reference resolves: %v", err)
	}
	if len(rec.built) != 0 {
		t.Errorf("a check built %d adapters", len(rec.built))
	}
	opts.Resolve = (&fakeVault{}).resolve
	err := CheckWithSecrets(context.Background(), opts, parseFixture(t, "vault.yml"))
	checkErrors(t, validationErrors(t, err), []wantError{
		{"producers[0].offerings[0].config.password", `resolve vault reference "vault:agora/admin/svc#password": no secret password at agora/admin/svc`, 10},
		{"producers[0].offerings[1].config.password", "resolve vault reference", 20},
	})
	if err := Check(opts, parseFixture(t, "vault.yml")); err != nil {
		t.Errorf("Check reads no Vault, so the same catalog passes it: %v", err)
	}
}

// TestAnUnknownFieldHidesNoOtherProblem: Parse returns the file decoded
// around unknown fields and mistyped values, and Check reports those with
// every rule the rest breaks, in line order; a mistyped value's own
// consequences ("at least one plan") are not repeated.
func TestAnUnknownFieldHidesNoOtherProblem(t *testing.T) {
	src := `producers:
  - name: Team X
    contact: x
    colour: blue
    offerings:
      - name: thing
        description: d
        adapter: fake
        bindable: maybe
        plans: {name: small}
`
	f, err := ParseSource("c.yml", []byte(src))
	if f == nil || err == nil {
		t.Fatalf("ParseSource = %v, %v; want the file and its decode problems", f, err)
	}
	checkErrors(t, validationErrors(t, err), []wantError{
		{"producers[0].colour", `unknown field "colour"`, 4},
		{"producers[0].offerings[0].bindable", "cannot unmarshal", 9},
		{"producers[0].offerings[0].plans", "into a list", 10},
	})
	err = Check(BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, f)
	checkErrors(t, validationErrors(t, err), []wantError{
		{"producers[0].name", "lowercase", 2},
		{"producers[0].colour", `unknown field "colour"`, 4},
		{"producers[0].offerings[0].bindable", "cannot unmarshal", 9},
		{"producers[0].offerings[0].plans", "into a list", 10},
	})
	// Build refuses it too, with the same report.
	if _, err := Build(t.Context(), BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, f); err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("Build of a file with an unknown field: %v", err)
	}
	// A syntax error leaves nothing to check.
	if f, err := ParseSource("c.yml", []byte("producers: [\n")); f != nil || err == nil {
		t.Errorf("syntax error: %v, %v", f, err)
	}
}
