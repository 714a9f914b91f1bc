package remote

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// signingVectors is docs/signing-vectors.json, the published test vectors
// every implementation of the protocol is held to: this test holds
// Agora's own client and verifier to them; sdk/python and sdk/node hold
// the SDKs to the same file.
type signingVectors struct {
	Vectors []struct {
		Name, Method, Target, Timestamp, Nonce, Body, Secret string
		InstanceID                                           string `json:"instance_id"`
		BindingID                                            string `json:"binding_id"`
		Operation                                            string
		BodySHA256                                           string `json:"body_sha256"`
		StringToSign                                         string `json:"string_to_sign"`
		Signature                                            string
	}
	MustReject []struct {
		Name, Request, Signature, Why string
		Now                           int64
	} `json:"must_reject"`
	AcceptAtBoundary []struct {
		Name, Request string
		Now           int64
	} `json:"accept_at_boundary"`
}

func loadSigningVectors(t *testing.T) signingVectors {
	t.Helper()
	raw, err := os.ReadFile("../../docs/signing-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v signingVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("docs/signing-vectors.json: %v", err)
	}
	if len(v.Vectors) < 8 || len(v.MustReject) < 8 || len(v.AcceptAtBoundary) < 2 {
		t.Fatalf("docs/signing-vectors.json lost vectors: %d, %d rejects, %d boundaries", len(v.Vectors), len(v.MustReject), len(v.AcceptAtBoundary))
	}
	return v
}

// vectorRequest is the request an adapter receives for vector name,
// carrying signature (no header when empty).
func vectorRequest(t *testing.T, vs signingVectors, name, signature string) (*http.Request, []byte, string) {
	t.Helper()
	for _, v := range vs.Vectors {
		if v.Name != name {
			continue
		}
		r := httptest.NewRequest(v.Method, v.Target, strings.NewReader(v.Body))
		r.Header.Set(HeaderTimestamp, v.Timestamp)
		r.Header.Set(HeaderNonce, v.Nonce)
		if signature != "" {
			r.Header.Set(HeaderSignature, signature)
		}
		return r, []byte(v.Body), v.Secret
	}
	t.Fatalf("no vector named %q", name)
	return nil, nil, ""
}

func TestSigningVectors(t *testing.T) {
	vs := loadSigningVectors(t)
	for _, v := range vs.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			body := []byte(v.Body)
			if got := signingString(v.Method, v.Target, v.Timestamp, v.Nonce, body); got != v.StringToSign {
				t.Errorf("string to sign:\n got %q\nwant %q", got, v.StringToSign)
			}
			if got := signaturePrefix + computeSignature([]byte(v.Secret), v.Method, v.Target, v.Timestamp, v.Nonce, body); got != v.Signature {
				t.Errorf("signature: got %s, want %s", got, v.Signature)
			}
			unix, _ := strconv.ParseInt(v.Timestamp, 10, 64)
			verifier := newVerifier(v.Secret, func() time.Time { return time.Unix(unix, 0) })
			r, body, _ := vectorRequest(t, vs, v.Name, v.Signature)
			if err := verifier.verify(r, body); err != nil {
				t.Errorf("the verifier rejects the vector: %v", err)
			}
			if err := verifier.verify(r, body); err == nil || !strings.Contains(err.Error(), "replayed") {
				t.Errorf("the same signature a second time: want a replay rejection, got %v", err)
			}
		})
	}
}

func TestSigningVectorsMustReject(t *testing.T) {
	vs := loadSigningVectors(t)
	for _, c := range vs.MustReject {
		t.Run(c.Name, func(t *testing.T) {
			r, body, secret := vectorRequest(t, vs, c.Request, c.Signature)
			verifier := newVerifier(secret, func() time.Time { return time.Unix(c.Now, 0) })
			err := verifier.verify(r, body)
			if err == nil {
				t.Fatalf("accepted; must be rejected (%s)", c.Why)
			}
			if len(verifier.seen) != 0 {
				t.Errorf("a rejected request entered the replay cache")
			}
		})
	}
	for _, c := range vs.AcceptAtBoundary {
		t.Run(c.Name, func(t *testing.T) {
			var signature string
			for _, v := range vs.Vectors {
				if v.Name == c.Request {
					signature = v.Signature
				}
			}
			r, body, secret := vectorRequest(t, vs, c.Request, signature)
			verifier := newVerifier(secret, func() time.Time { return time.Unix(c.Now, 0) })
			if err := verifier.verify(r, body); err != nil {
				t.Errorf("rejected at the window's edge: %v", err)
			}
		})
	}
}

// targetRecorder is an adapter with just enough behaviour for the client
// to complete the vectors' calls.
type targetRecorder struct{}

func (targetRecorder) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return adapters.ProvisionResult{}, nil
}
func (targetRecorder) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}
func (targetRecorder) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{}, nil
}
func (targetRecorder) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}
func (targetRecorder) Poll(context.Context, adapters.PollRequest) (adapters.PollResult, error) {
	return adapters.PollResult{State: adapters.InProgress}, nil
}
func (targetRecorder) Inspect(context.Context, adapters.InspectRequest) (adapters.InspectResult, error) {
	return adapters.InspectResult{}, nil
}

// TestClientSendsTheVectorsTargets: Agora's client puts IDs, operation
// tokens and query strings on the wire exactly as the vectors write
// them (percent-encoding and query order included), so an adapter that
// passes the vectors verifies what Agora really sends.
func TestClientSendsTheVectorsTargets(t *testing.T) {
	vs := loadSigningVectors(t)
	var mu sync.Mutex
	var targets []string
	handler := Handler(targetRecorder{}, HandlerOptions{Name: "vectors", Version: "1", Secret: testVectorSecret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		targets = append(targets, r.RequestURI)
		mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	defer srv.Close()
	retries := 0
	c, err := New(Settings{URL: srv.URL, Secret: testVectorSecret, Retries: &retries, Capabilities: []string{CapabilityStatus, CapabilityInspect}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plan := adapters.Plan{ID: "p1", Name: "small"}
	sent := map[string]func(ctx context.Context) error{
		"bind, percent-encoded path elements": func(ctx context.Context) error {
			_, err := c.Bind(ctx, adapters.BindRequest{InstanceID: "a/b c", BindingID: "été?", Offering: "files"})
			return err
		},
		"status poll, query string, empty body": func(ctx context.Context) error {
			_, err := c.poll(ctx, adapters.PollRequest{Kind: adapters.OpBind, InstanceID: "i-1", BindingID: "b-1", Token: "op-77", Offering: "files", Plan: plan})
			return err
		},
		"inspect, JSON receipt in the query": func(ctx context.Context) error {
			_, err := c.Inspect(ctx, adapters.InspectRequest{InstanceID: "i-1", Offering: "files", Plan: plan, Receipt: adapters.Receipt{"path": "/srv/files/i-1"}})
			return err
		},
	}
	for _, v := range vs.Vectors {
		call, ok := sent[v.Name]
		if !ok {
			continue
		}
		delete(sent, v.Name)
		if err := call(t.Context()); err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		mu.Lock()
		last := targets[len(targets)-1]
		mu.Unlock()
		if last != v.Target {
			t.Errorf("%s: the client sent\n  %s\nthe vector signs\n  %s", v.Name, last, v.Target)
		}
	}
	for name := range sent {
		t.Errorf("docs/signing-vectors.json has no vector %q any more", name)
	}
}

const testVectorSecret = "vectors-test-secret"
