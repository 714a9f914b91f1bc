package remote_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

// signed builds a request signed the way docs/adapter-protocol.md says,
// written out here independently of the package's own signing code, so
// that the document and the code cannot drift apart unnoticed.
func signed(method, target, body, secret string, ts time.Time, nonce string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	io.WriteString(mac, method+"\n"+target+"\n"+stamp+"\n"+nonce+"\n"+hex.EncodeToString(sum[:]))
	r.Header.Set("X-Agora-Timestamp", stamp)
	r.Header.Set("X-Agora-Nonce", nonce)
	r.Header.Set("X-Agora-Signature", "v1="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

func TestHandlerAuthentication(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	h := remote.Handler(&scripted{}, remote.HandlerOptions{Name: "x", Version: "1", Secret: testSecret, Now: func() time.Time { return now }})
	body := `{"offering":"o","plan":{"id":"p1","name":"small"},"parameters":{}}`
	for _, tc := range []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		{"valid", signed("PUT", "/v1/instances/i-1", body, testSecret, now, "n1"), 200, ""},
		{"replay", signed("PUT", "/v1/instances/i-1", body, testSecret, now, "n1"), 401, "replayed"},
		{"same request, new nonce", signed("PUT", "/v1/instances/i-1", body, testSecret, now, "n2"), 200, ""},
		{"unsigned", httptest.NewRequest("PUT", "/v1/instances/i-1", strings.NewReader(body)), 401, "missing signature"},
		{"wrong secret", signed("PUT", "/v1/instances/i-1", body, "nope", now, "n3"), 401, "bad signature"},
		{"signed for another path", func() *http.Request {
			r := signed("PUT", "/v1/instances/i-1", body, testSecret, now, "n4")
			r.URL.Path, r.RequestURI = "/v1/instances/i-2", "/v1/instances/i-2"
			return r
		}(), 401, "bad signature"},
		{"body changed", func() *http.Request {
			r := signed("PUT", "/v1/instances/i-1", body, testSecret, now, "n5")
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(body, "small", "large", 1)))
			return r
		}(), 401, "bad signature"},
		{"6 minutes old", signed("PUT", "/v1/instances/i-1", body, testSecret, now.Add(-6*time.Minute), "n6"), 401, "stale timestamp"},
		{"6 minutes ahead", signed("PUT", "/v1/instances/i-1", body, testSecret, now.Add(6*time.Minute), "n7"), 401, "stale timestamp"},
		{"4 minutes old", signed("PUT", "/v1/instances/i-1", body, testSecret, now.Add(-4*time.Minute), "n8"), 200, ""},
		{"unknown endpoint, signed", signed("POST", "/v1/instances/i-1", "", testSecret, now, "n9"), 501, "not part of protocol v1"},
		{"update of an adapter without Updater", signed("PATCH", "/v1/instances/i-1", body, testSecret, now, "n10"), 501, "does not update"},
		{"capabilities with query", signed("GET", "/v1/capabilities?x=1", "", testSecret, now, "n11"), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, tc.req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.reason == "" {
				return
			}
			var eb struct{ Error, Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
			if !strings.Contains(eb.Message, tc.reason) || eb.Error == "" {
				t.Errorf("error body %+v, want a code and %q", eb, tc.reason)
			}
			if strings.Contains(rec.Body.String(), testSecret) {
				t.Error("the answer holds the secret")
			}
		})
	}
}

func TestHandlerRefusesToRunWithoutSecret(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), "Secret is empty") {
			t.Errorf("want a panic naming the missing secret, got %v", p)
		}
	}()
	remote.Handler(&scripted{}, remote.HandlerOptions{})
}

func TestHandlerCapabilities(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		adapter adapters.Adapter
		want    []string
	}{
		{&scripted{}, []string{}},
		{&polling{scripted: &scripted{}}, []string{remote.CapabilityStatus}},
	} {
		h := remote.Handler(tc.adapter, remote.HandlerOptions{Name: "n", Version: "v", Secret: testSecret})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, signed("GET", "/v1/capabilities", "", testSecret, now, "c"))
		var got struct {
			Protocol, Name, Version string
			Capabilities            []string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Protocol != remote.ProtocolVersion || got.Name != "n" || got.Version != "v" || strings.Join(got.Capabilities, ",") != strings.Join(tc.want, ",") {
			t.Errorf("capabilities %+v, want %v", got, tc.want)
		}
	}
}
