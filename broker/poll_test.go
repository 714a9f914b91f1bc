package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker"
)

// polled is one poll's answer as the platform sees it.
type polled struct {
	status     int
	body       string
	retryAfter string
}

func (e *env) pollOn(srv string, iid, operation string) polled {
	e.t.Helper()
	target := srv + "/v2/service_instances/" + iid + "/last_operation"
	if operation != "" {
		target += "?operation=" + operation
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth(brokerUser, brokerPass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	req.Header.Set("X-Broker-API-Request-Identity", "rid-poll")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return polled{status: resp.StatusCode, body: string(body), retryAfter: resp.Header.Get("Retry-After")}
}

// wantAlike polls both paths (the ready-made answer, and brokerapi over
// the broker's LastOperation) and wants the same answer, and status.
func (e *env) wantAlike(what, iid, operation string, status int) polled {
	e.t.Helper()
	fast := e.pollOn(e.srv.URL, iid, operation)
	chain := e.pollOn(e.chainSrv.URL, iid, operation)
	if fast != chain {
		e.t.Errorf("%s: the paths differ:\n fast  %+v\n chain %+v", what, fast, chain)
	}
	if fast.status != status {
		e.t.Errorf("%s: status %d, want %d; body %s", what, fast.status, status, fast.body)
	}
	return fast
}

// TestPollsAnswerAlikeOnBothPaths walks an instance through the states a
// poll reports, on the real store, and wants the stored answer (the fast
// path) to be brokerapi's answer to LastOperation in every one of them:
// in progress, overdue, an unknown operation, succeeded, deleted (410),
// unknown (404), a status written before answers were stored, and Redis
// down.
func TestPollsAnswerAlikeOnBothPaths(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-p")
	p := e.wantAlike("in progress", "inst-p", opID, http.StatusOK)
	if p.retryAfter != "7" {
		t.Errorf("Retry-After %q, want the configured 7", p.retryAfter)
	}
	e.wantAlike("in progress, no operation named", "inst-p", "", http.StatusOK)
	e.wantAlike("an unknown operation", "inst-p", "not-an-op", http.StatusBadRequest)
	e.wantAlike("an unknown instance", "inst-none", "", http.StatusNotFound)

	e.clock.advance(time.Hour)
	p = e.wantAlike("overdue", "inst-p", opID, http.StatusOK)
	if !json.Valid([]byte(p.body)) || p.body == "" {
		t.Fatalf("overdue body %q", p.body)
	}
	var lo struct{ State, Description string }
	_ = json.Unmarshal([]byte(p.body), &lo)
	if lo.State != "failed" {
		t.Errorf("an overdue operation polls %q, want failed", lo.State)
	}
	e.clock.advance(-time.Hour)

	e.startWorkers("w1")
	e.waitState("inst-p", opID, "succeeded")
	e.wantAlike("succeeded", "inst-p", opID, http.StatusOK)
	e.wantAlike("succeeded, no operation named", "inst-p", "", http.StatusOK)
	e.wantAlike("the provision, named after a later operation", "inst-p", "not-an-op", http.StatusBadRequest)

	// A status written before answers were stored: plain JSON.
	key := prefix + ":{inst-p}:status"
	stored, err := e.mr.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	var st broker.InstanceStatus
	if err := json.Unmarshal([]byte(stored), &st); err != nil || st.Operation == nil {
		t.Fatalf("status %q does not decode as an InstanceStatus: %v", stored, err)
	}
	plain, _ := json.Marshal(st)
	if err := e.mr.Set(key, string(plain)); err != nil {
		t.Fatal(err)
	}
	before := e.wantAlike("succeeded, status without an answer", "inst-p", opID, http.StatusOK)
	if err := e.mr.Set(key, stored); err != nil {
		t.Fatal(err)
	}
	if after := e.pollOn(e.srv.URL, "inst-p", opID); after != before {
		t.Errorf("the stored answer %+v differs from the one built from the summary %+v", after, before)
	}

	r := e.deprovision("inst-p", planAsync, true)
	expect(t, "async deprovision", r, http.StatusAccepted, "")
	eventually(t, func() bool { return e.pollOn(e.srv.URL, "inst-p", r.str("operation")).status == http.StatusGone },
		func() string { return "the delete never finished" })
	e.wantAlike("deleted, its operation named", "inst-p", r.str("operation"), http.StatusGone)
	e.wantAlike("deleted, no operation named", "inst-p", "", http.StatusGone)
	e.wantAlike("deleted, the provision named", "inst-p", opID, http.StatusNotFound)

	e.mr.Close()
	p = e.wantAlike("Redis down", "inst-p", "", http.StatusServiceUnavailable)
	if p.retryAfter != "" {
		t.Errorf("an error carries Retry-After %q", p.retryAfter)
	}
}
