package producers

import (
	"strings"
	"testing"
)

func TestTokenNames(t *testing.T) {
	token, hash, err := newToken("team-x")
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := tokenName(token); !ok || name != "team-x" || !tokenMatches(token, hash) {
		t.Fatalf("token %q: name %q ok %t", token, name, ok)
	}
	if tokenMatches(token+"x", hash) || tokenMatches(token, "") {
		t.Fatal("a changed token or an empty hash matched")
	}
	for _, bad := range []string{"", "agp_", "agp_team-x", "agp__abc", "agp_Team_abc", "Bearer agp_team-x_abc", "xyz_team-x_abc"} {
		if _, ok := tokenName(bad); ok {
			t.Errorf("tokenName(%q) accepted", bad)
		}
	}
}

func TestSliceLinesAndPathsAreTheSlicesOwn(t *testing.T) {
	for name, body := range map[string]string{
		"yaml": "---\nname: team-x\ncontact: c\nofferings:\n  - name: team-x-a\n    description: d\n    adapter: remote\n    colour: red\n",
		"json": "{\"name\": \"team-x\", \"contact\": \"c\", \"offerings\": [\n {\"name\": \"team-x-a\", \"description\": \"d\", \"adapter\": \"remote\",\n \"colour\": \"red\"}]}",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseSlice(sliceSource, []byte(body))
			pe, ok := err.(*Error)
			if !ok || len(pe.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			p := pe.Problems[0]
			wantLine := strings.Count(body[:strings.Index(body, "colour")], "\n") + 1
			if p.Path != "offerings[0].colour" && p.Path != "offerings[0]" || p.Line != wantLine || !strings.Contains(p.Message, `unknown field "colour"`) {
				t.Fatalf("problem %+v, want offerings[0].colour on line %d", p, wantLine)
			}
		})
	}
	if _, err := parseSlice(sliceSource, []byte("producers:\n  - name: team-x\n")); err == nil || !strings.Contains(err.(*Error).Problems[0].Message, "not a whole catalog") {
		t.Fatalf("a whole catalog as a slice: %v", err)
	}
}

func TestStoredSlicesFromBeforeCapabilitiesKeepUpdating(t *testing.T) {
	legacy := "name: team-x\ncontact: c\nofferings:\n  - name: team-x-a\n    description: d\n    adapter: remote\n    plan_updateable: true\n    config: {url: 'http://a', secret: 'vault:secret/agora/producers/team-x/secret#v1.team-x-a'}\n    plans: [{name: p, description: d}]\n"
	f, err := fileFromText("stored", legacy)
	if err != nil {
		t.Fatal(err)
	}
	caps := mapValue(&f.Producers[0].Offerings[0].Config, "capabilities")
	if caps == nil || len(caps.Content) != 2 || caps.Content[0].Value != "update" || caps.Content[1].Value != "status" {
		t.Fatalf("a legacy slice's capabilities = %+v, want [update, status]", caps)
	}
	declared := strings.Replace(legacy, "config: {", "config: {capabilities: [], ", 1)
	if f, err = fileFromText("stored", declared); err != nil {
		t.Fatal(err)
	}
	if caps := mapValue(&f.Producers[0].Offerings[0].Config, "capabilities"); caps == nil || len(caps.Content) != 0 {
		t.Errorf("a declared (empty) list was changed: %+v", caps)
	}
}
