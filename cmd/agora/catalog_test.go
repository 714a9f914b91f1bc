package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-osb/agora/broker/catalog"
)

// The repository's catalog.yml must validate against the adapters this
// binary really offers: a typo in a producer's section fails here, in CI,
// and not at some operator's startup.
func TestRepositoryCatalogIsValid(t *testing.T) {
	var out bytes.Buffer
	if err := catalogCmd(context.Background(), []string{"check", "-offline", "-catalog", "../../catalog.yml"}, &out); err != nil {
		t.Fatal(err)
	}
	// Offline, the vault: references are not called valid.
	if want := "every rule holds, but its 5 vault: references were NOT checked"; !strings.Contains(out.String(), want) {
		t.Errorf("output %q does not say %q", out.String(), want)
	}
	file, err := catalog.ParseFile("../../catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	offerings := map[string]bool{}
	for _, p := range file.Producers {
		for _, o := range p.Offerings {
			offerings[o.Name+"/"+o.Adapter] = true
		}
	}
	for _, want := range []string{"secrets/secrets", "postgres/postgres", "mysql/mysql", "redis/redis", "rabbitmq/rabbitmq"} {
		if !offerings[want] {
			t.Errorf("catalog.yml lacks offering/adapter %s (has %v)", want, offerings)
		}
	}
}

func TestCatalogCheckReportsProblems(t *testing.T) {
	dir := t.TempDir()
	bad := dir + "/bad.yml"
	writeFile(t, bad, "producers:\n  - name: Team X\n    contact: x\n    offerings:\n      - name: thing\n        description: d\n        adapter: nosuch\n        plans: []\n")
	err := catalogCmd(context.Background(), []string{"check", "-catalog", bad}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("a bad catalog passed the check")
	}
	for _, want := range []string{"producers[0].name", "adapter \"nosuch\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("report %q does not mention %q", err, want)
		}
	}
}

// TestCatalogCheckReportsEveryProblemAtOnce: an unknown field is reported
// with the rules the rest of the catalog breaks, as text and as -o json.
func TestCatalogCheckReportsEveryProblemAtOnce(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, "producers:\n  - name: Team X\n    contact: x\n    colour: blue\n    offerings:\n      - name: thing\n        description: d\n        adapter: nosuch\n        plans: []\n")
	code, out, errOut := runCLI(t, "catalog", "check", "-offline", "-catalog", bad)
	for _, want := range []string{"producers[0].name", `unknown field "colour" (line 4)`, `adapter "nosuch"`} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("catalog check: exit %d, report lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	code, out, _ = runCLI(t, "catalog", "check", "-offline", "-catalog", bad, "-o", "json")
	var res catalogCheck
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res.Valid || len(res.Problems) < 3 {
		t.Fatalf("catalog check -o json: exit %d, %v\n%s", code, err, out)
	}
	if p := res.Problems[1]; p != (catalogProblem{Path: "producers[0].colour", Line: 4, Message: `unknown field "colour"`}) {
		t.Errorf("second problem %+v", p)
	}
	code, out, _ = runCLI(t, "catalog", "check", "-offline", "-catalog", "../../catalog.yml", "-o", "json")
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || !res.Valid || res.VaultReferences != 5 || res.ReferencesChecked {
		t.Errorf("catalog check -o json of catalog.yml: exit %d, %+v (%v)", code, res, err)
	}
}
