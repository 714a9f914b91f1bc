package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-osb/agora/producers"
)

// fakeAgora answers the few producer routes the CLI tests use.
func fakeAgora(t *testing.T, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthenticated","description":"missing or invalid producer token"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "GET /producers/team-x/instances":
			// Two pages: the first names the cursor of the second.
			page := producers.InstancePage{Instances: []producers.InstanceView{{ID: "inst-1", Offering: "team-x-db"}}, NextCursor: "c2"}
			if r.URL.Query().Get("cursor") == "c2" {
				page = producers.InstancePage{Instances: []producers.InstanceView{{ID: "inst-2", Offering: "team-x-db"}}}
			}
			_ = json.NewEncoder(w).Encode(page)
		case "GET /producers/team-x":
			_ = json.NewEncoder(w).Encode(producers.Status{Producer: producers.Producer{Name: "team-x", State: producers.StateActive}})
		case "PUT /producers/team-x/slice":
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"error": "gate_failed", "description": "the conformance gate failed (1 passed, 1 failed, 0 skipped)",
				"gate": producers.GateResult{Summary: "1 passed, 1 failed, 0 skipped", Failed: true, Checks: []producers.GateCheck{
					{Offering: "team-x-db", Name: "provision", Result: "pass"},
					{Offering: "team-x-db", Name: "bind", Result: "fail", Detail: "bind returned 500", Hint: "return credentials"},
				}},
			})
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProducerLoginKeepsTheTokenPrivate(t *testing.T) {
	srv := fakeAgora(t, "agp_team-x_secret")
	cfg := filepath.Join(t.TempDir(), "agora", "producer.json")
	t.Setenv("AGORA_PRODUCER_CONFIG", cfg)
	t.Setenv("AGORA_PRODUCER_TOKEN", "")
	var out, errOut bytes.Buffer
	err := producerCmd(context.Background(), []string{"login", "--url", srv.URL, "--name", "team-x"}, strings.NewReader("agp_team-x_secret\n"), &out, &errOut)
	if err != nil {
		t.Fatalf("login: %v (%s)", err, errOut.String())
	}
	info, err := os.Stat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("login file mode %o, want 600", info.Mode().Perm())
	}
	var saved loginFile
	data, _ := os.ReadFile(cfg)
	want := producerLogin{URL: srv.URL, Name: "team-x", Token: "agp_team-x_secret"}
	if err := json.Unmarshal(data, &saved); err != nil || len(saved.Logins) != 1 || saved.Logins[0] != want ||
		saved.Active == nil || *saved.Active != (loginKey{URL: srv.URL, Name: "team-x"}) {
		t.Fatalf("saved logins %s (%v)", data, err)
	}
	// A wrong token is refused, and nothing is saved.
	other := filepath.Join(t.TempDir(), "producer.json")
	t.Setenv("AGORA_PRODUCER_CONFIG", other)
	if err := producerCmd(context.Background(), []string{"login", "--url", srv.URL, "--name", "team-x", "--token", "agp_team-x_wrong"}, nil, &out, &errOut); err == nil {
		t.Fatal("login with a wrong token succeeded")
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Fatal("a refused login was saved")
	}
}

func TestProducerApplyPrintsTheFailedGate(t *testing.T) {
	srv := fakeAgora(t, "agp_team-x_secret")
	loginByEnv(t, srv.URL)
	slice := filepath.Join(t.TempDir(), "slice.yml")
	writeFile(t, slice, "offerings: []\n")
	var out bytes.Buffer
	err := producerCmd(context.Background(), []string{"apply", "-f", slice}, nil, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "gate failed") {
		t.Fatalf("apply with a failing gate: %v", err)
	}
	for _, want := range []string{"conformance of team-x-db:", "PASS provision", "FAIL bind: bind returned 500", "hint: return credentials", "1 passed, 1 failed, 0 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	err = producerCmd(context.Background(), []string{"apply", "-f", slice, "-o", "json"}, nil, &out, io.Discard)
	var body struct {
		Status int                  `json:"Status"`
		Gate   producers.GateResult `json:"gate"`
	}
	if err == nil || json.Unmarshal(out.Bytes(), &body) != nil || body.Status != 422 || !body.Gate.Failed {
		t.Fatalf("apply -o json: %v, %s", err, out.String())
	}
}

func TestProducerInstancesPages(t *testing.T) {
	srv := fakeAgora(t, "agp_team-x_secret")
	loginByEnv(t, srv.URL)
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := producerCmd(context.Background(), append([]string{"instances"}, args...), nil, &out, io.Discard); err != nil {
			t.Fatalf("instances %v: %v", args, err)
		}
		return out.String()
	}
	// One page, and how to ask for the next.
	first := run("--limit", "1")
	if !strings.Contains(first, "inst-1") || strings.Contains(first, "inst-2") || !strings.Contains(first, "more: agora producer instances --cursor c2 --limit 1") {
		t.Errorf("first page:\n%s", first)
	}
	last := run("--cursor", "c2")
	if !strings.Contains(last, "inst-2") || strings.Contains(last, "more:") {
		t.Errorf("last page:\n%s", last)
	}
	// Without paging flags, every page.
	if all := run(); !strings.Contains(all, "inst-1") || !strings.Contains(all, "inst-2") {
		t.Errorf("every page:\n%s", all)
	}
}

// loginByEnv logs team-x in through the environment, as a CI pipeline
// does, with no login file.
func loginByEnv(t *testing.T, url string) {
	t.Setenv("AGORA_PRODUCER_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	t.Setenv("AGORA_URL", url)
	t.Setenv("AGORA_PRODUCER", "team-x")
	t.Setenv("AGORA_PRODUCER_TOKEN", "agp_team-x_secret")
}
