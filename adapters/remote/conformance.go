package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
)

// ConformanceOptions configures Conformance: the remote adapter to judge
// and what the conformance kit needs to drive it.
type ConformanceOptions struct {
	// URL, Secret and TLS reach the adapter, as in Settings. Without a
	// Secret (mTLS only) the signature checks are skipped.
	URL    string
	Secret string
	TLS    *TLSSettings
	// Plan is what the adapter sees in every request; default
	// {ID: "conformance-plan", Name: "default"}.
	Plan adapters.Plan
	// ProvisionParameters, BindParameters, InvalidProvisionParameters and
	// the Check functions are passed to the kit (conformance.Options).
	ProvisionParameters, BindParameters map[string]any
	InvalidProvisionParameters          map[string]any
	CheckCredentials, CheckRevoked      func(ctx context.Context, creds map[string]any) error
	CheckIsolation                      func(ctx context.Context, credsA, credsB map[string]any) error
	// Timeout bounds each call; default 30s.
	Timeout time.Duration
	// Logf receives progress lines; default silent.
	Logf func(format string, args ...any)
}

// The protocol checks' names, as reported.
const (
	CheckCapabilities         = "capabilities"
	CheckRejectsUnsigned      = "rejects-unsigned"
	CheckRejectsBadSignature  = "rejects-bad-signature"
	CheckRejectsStale         = "rejects-stale-timestamp"
	CheckRejectsReplay        = "rejects-replay"
	defaultConformanceTimeout = 30 * time.Second
)

// Conformance judges a remote adapter: the protocol's own rules first
// (capabilities, signatures, timestamps, replays), then every check of the
// conformance kit through a Client, exactly as Agora would reach it. It
// returns an error only for options no run could use; a failing adapter
// is a Report with failed checks.
//
// The Client it uses does not retry, so the kit judges what the adapter
// answers rather than what retries hide.
func Conformance(ctx context.Context, opts ConformanceOptions) (conformance.Report, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = defaultConformanceTimeout
	}
	if opts.Plan == (adapters.Plan{}) {
		opts.Plan = adapters.Plan{ID: "conformance-plan", Name: "default"}
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	noRetries := 0
	settings := Settings{URL: opts.URL, Secret: opts.Secret, Timeout: opts.Timeout.String(), Retries: &noRetries, TLS: opts.TLS, Producer: "under test"}
	client, err := New(settings, Options{})
	if err != nil {
		return conformance.Report{}, fmt.Errorf("conformance options: %w", err)
	}
	defer client.Close()
	p := &probe{client: client, opts: opts}

	var results []conformance.CheckResult
	caps, capsResult := p.capabilities(ctx)
	results = append(results, capsResult)
	for _, check := range []struct {
		name string
		run  func(context.Context) conformance.CheckResult
	}{
		{CheckRejectsUnsigned, p.rejectsUnsigned},
		{CheckRejectsBadSignature, p.rejectsBadSignature},
		{CheckRejectsStale, p.rejectsStale},
		{CheckRejectsReplay, p.rejectsReplay},
	} {
		start := time.Now()
		var res conformance.CheckResult
		switch {
		case opts.Secret == "":
			res = conformance.CheckResult{Skipped: true, Detail: "no secret: the adapter is expected to authenticate Agora by mTLS"}
		case caps == nil:
			// An adapter that rejects everything would pass vacuously.
			res = conformance.CheckResult{Skipped: true, Detail: "needs an adapter that accepts a correctly signed request (see the capabilities check)"}
		default:
			res = check.run(ctx)
		}
		res.Name, res.Duration = check.name, time.Since(start)
		results = append(results, res)
	}
	if caps == nil {
		results = append(results, conformance.CheckResult{Name: "kit", Skipped: true,
			Detail: "the conformance kit did not run: it needs an adapter that answers GET /v1/capabilities (see the capabilities check)"})
		return conformance.Report{Results: results}, nil
	}

	raw := map[string]any{"url": opts.URL, "timeout": opts.Timeout.String(), "retries": 0}
	if opts.Secret != "" {
		raw["secret"] = opts.Secret
	}
	if opts.TLS != nil {
		raw["tls"] = map[string]any{"ca_file": opts.TLS.CAFile, "cert_file": opts.TLS.CertFile, "key_file": opts.TLS.KeyFile}
	}
	kit := conformance.Run(ctx, conformance.Options{
		Factory:                    conformanceFactory(caps.update),
		Settings:                   adapters.MapSettings(raw),
		Plans:                      []adapters.PlanConfig{{Plan: opts.Plan}},
		Offering:                   "conformance",
		ProvisionParameters:        opts.ProvisionParameters,
		BindParameters:             opts.BindParameters,
		InvalidProvisionParameters: opts.InvalidProvisionParameters,
		CheckCredentials:           opts.CheckCredentials,
		CheckRevoked:               opts.CheckRevoked,
		CheckIsolation:             opts.CheckIsolation,
		CallTimeout:                opts.Timeout,
		Logf:                       opts.Logf,
	})
	results = append(results, kit.Results...)
	return conformance.Report{Results: results}, nil
}

// conformanceFactory builds Clients that show the kit the adapter's real
// capabilities: a Client always has an Update method (Agora's factory
// cannot ask the adapter first), but the kit should skip the update check
// for an adapter that does not declare "update", not fail it.
func conformanceFactory(update bool) adapters.Factory {
	f := Factory()
	if update {
		return f
	}
	newClient := f.New
	f.New = func(ctx context.Context, cfg adapters.Config) (adapters.Adapter, error) {
		a, err := newClient(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return withoutUpdate{a.(*Client)}, nil
	}
	return f
}

// withoutUpdate is a Client without its Update method.
type withoutUpdate struct{ c *Client }

func (w withoutUpdate) Provision(ctx context.Context, r adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return w.c.Provision(ctx, r)
}
func (w withoutUpdate) Deprovision(ctx context.Context, r adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return w.c.Deprovision(ctx, r)
}
func (w withoutUpdate) Bind(ctx context.Context, r adapters.BindRequest) (adapters.BindResult, error) {
	return w.c.Bind(ctx, r)
}
func (w withoutUpdate) Unbind(ctx context.Context, r adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return w.c.Unbind(ctx, r)
}
func (w withoutUpdate) Poll(ctx context.Context, r adapters.PollRequest) (adapters.PollResult, error) {
	return w.c.Poll(ctx, r)
}
func (w withoutUpdate) Ping(ctx context.Context) error { return w.c.Ping(ctx) }
func (w withoutUpdate) Close() error                   { return w.c.Close() }

// probe sends the hand-made requests of the protocol checks.
type probe struct {
	client *Client
	opts   ConformanceOptions
}

func (p *probe) capabilities(ctx context.Context) (*capabilitySet, conformance.CheckResult) {
	start := time.Now()
	res := conformance.CheckResult{Name: CheckCapabilities}
	cs, err := p.client.refreshCapabilities(ctx)
	res.Duration = time.Since(start)
	switch {
	case err == nil:
		res.Passed = true
		p.opts.Logf("adapter %q version %q speaks %s with capabilities %v", cs.result.Name, cs.result.Version, cs.result.Protocol, cs.result.Capabilities)
		return cs, res
	case errors.Is(err, ErrProtocolMismatch):
		res.Detail = err.Error()
		res.Hint = fmt.Sprintf(`Answer GET /v1/capabilities with {"protocol": %q, "name": ..., "version": ..., "capabilities": [...]} (docs/adapter-protocol.md)`, ProtocolVersion)
	case errors.Is(err, ErrUnauthorized):
		res.Detail = err.Error()
		res.Hint = "The adapter rejected a correctly signed request: check that both sides use the same secret, that the signing string " +
			"is method, path with query, timestamp, nonce and the body's SHA-256, joined by newlines, and that both clocks are right"
	default:
		res.Detail = err.Error()
		res.Hint = "Start the adapter and check --url: Agora must reach it, and it must answer GET /v1/capabilities"
	}
	return nil, res
}

// send makes one GET /v1/capabilities, prepared by prepare, and returns
// the status.
func (p *probe) send(ctx context.Context, prepare func(*http.Request)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.client.base+"/v1/capabilities", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set(HeaderRequestID, "conformance-"+newNonce()[:12])
	prepare(req)
	return p.do(req)
}

func (p *probe) do(req *http.Request) (int, error) {
	resp, err := p.client.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /v1/capabilities: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, nil
}

const hintVerify = "Verify every request before doing anything: recompute HMAC-SHA256 over method, path with query, timestamp, " +
	"nonce and the body's SHA-256 (hex), joined by newlines, compare in constant time, and answer 401 " +
	`{"error": "unauthorized", ...} on a mismatch (docs/adapter-protocol.md, "Verifying")`

func expect401(name string, status int, err error, hint, what string) conformance.CheckResult {
	switch {
	case err != nil:
		return conformance.CheckResult{Name: name, Detail: err.Error(), Hint: "The adapter must answer; see the capabilities check"}
	case status != http.StatusUnauthorized:
		return conformance.CheckResult{Name: name, Hint: hint,
			Detail: fmt.Sprintf("the adapter answered %d %s to %s; it must answer 401", status, http.StatusText(status), what)}
	}
	return conformance.CheckResult{Name: name, Passed: true}
}

func (p *probe) rejectsUnsigned(ctx context.Context) conformance.CheckResult {
	status, err := p.send(ctx, func(*http.Request) {})
	return expect401(CheckRejectsUnsigned, status, err,
		"Answer 401 when X-Agora-Timestamp, X-Agora-Nonce or X-Agora-Signature is missing: otherwise anyone who reaches the adapter can provision and bind. "+hintVerify,
		"a request without a signature")
}

func (p *probe) rejectsBadSignature(ctx context.Context) conformance.CheckResult {
	status, err := p.send(ctx, func(req *http.Request) {
		sign(req, []byte(p.opts.Secret+"-but-not-the-shared-one"), nil, time.Now())
	})
	return expect401(CheckRejectsBadSignature, status, err, hintVerify, "a request signed with another secret")
}

func (p *probe) rejectsStale(ctx context.Context) conformance.CheckResult {
	for _, skew := range []time.Duration{-2 * MaxSkew, 2 * MaxSkew} {
		status, err := p.send(ctx, func(req *http.Request) {
			sign(req, []byte(p.opts.Secret), nil, time.Now().Add(skew))
		})
		what := fmt.Sprintf("a correctly signed request whose timestamp is %s old", -skew)
		if skew > 0 {
			what = fmt.Sprintf("a correctly signed request whose timestamp is %s in the future", skew)
		}
		res := expect401(CheckRejectsStale, status, err,
			"Answer 401 when X-Agora-Timestamp is more than 5 minutes from the adapter's clock, either way: that bounds how long a captured request stays usable "+
				"and how long the adapter must remember signatures", what)
		if !res.Passed {
			return res
		}
	}
	return conformance.CheckResult{Name: CheckRejectsStale, Passed: true}
}

func (p *probe) rejectsReplay(ctx context.Context) conformance.CheckResult {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.client.base+"/v1/capabilities", nil)
	if err != nil {
		return conformance.CheckResult{Name: CheckRejectsReplay, Detail: err.Error()}
	}
	sign(req, []byte(p.opts.Secret), nil, time.Now())
	var statuses []string
	for i := range 2 {
		status, err := p.do(req.Clone(ctx))
		switch {
		case err != nil:
			return conformance.CheckResult{Name: CheckRejectsReplay, Detail: err.Error(), Hint: "The adapter must answer; see the capabilities check"}
		case i == 0 && status != http.StatusOK:
			return conformance.CheckResult{Name: CheckRejectsReplay,
				Detail: fmt.Sprintf("the adapter answered %d %s to a correctly signed GET /v1/capabilities; it must answer 200", status, http.StatusText(status)),
				Hint:   hintVerify}
		case i == 1 && status != http.StatusUnauthorized:
			return conformance.CheckResult{Name: CheckRejectsReplay,
				Detail: fmt.Sprintf("the adapter answered %d %s to the same signed request sent a second time; it must answer 401", status, http.StatusText(status)),
				Hint: "Remember every signature accepted within the last 5 minutes (the timestamp window) and answer 401 to a repeat: " +
					"otherwise whoever captures one request can send it again. Agora signs every attempt afresh, retries included"}
		}
		statuses = append(statuses, fmt.Sprint(status))
	}
	return conformance.CheckResult{Name: CheckRejectsReplay, Passed: true, Detail: strings.Join(statuses, ", ")}
}
