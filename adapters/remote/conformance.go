package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
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
	// ProvisionSchema is the plan's provision parameters schema, from
	// which the kit derives invalid parameters when none are given.
	ProvisionSchema                map[string]any
	CheckCredentials, CheckRevoked func(ctx context.Context, creds map[string]any) error
	CheckIsolation                 func(ctx context.Context, credsA, credsB map[string]any) error
	// Verifiers use the credentials by their type: pass
	// credcheck.Defaults(dial), as `agora adapter test` does with a plain
	// dialer. A remote adapter chooses the hosts in its credentials, so a
	// caller that must not connect everywhere (the producer gate) passes
	// a dialer that enforces its allow-list. Nil verifies nothing: every
	// type is reported unverified.
	Verifiers map[string]conformance.Verifier
	// Capabilities are what the offering's config.capabilities lists, for
	// a gate that judges a catalog entry; nil when it lists none (the
	// producer gate then fills them in from Report.Capabilities). Each
	// must be declared by the adapter, or the configured-capabilities
	// check fails. The kit always runs with what the adapter declares.
	Capabilities []string
	// Timeout bounds each call; default 30s.
	Timeout time.Duration
	// CleanupAttempts is passed to the kit (conformance.Options): how
	// many times to try removing what the run left; default 1.
	CleanupAttempts int
	// Dial, when set, makes every connection to the adapter (the gate's
	// egress rules).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logf receives progress lines; default silent.
	Logf func(format string, args ...any)
}

// The protocol checks' names, as reported.
const (
	CheckCapabilities         = "capabilities"
	CheckConfiguredCaps       = "configured-capabilities"
	CheckRejectsUnsigned      = "rejects-unsigned"
	CheckRejectsBadSignature  = "rejects-bad-signature"
	CheckRejectsStale         = "rejects-stale-timestamp"
	CheckRejectsReplay        = "rejects-replay"
	defaultConformanceTimeout = 30 * time.Second
)

// Conformance judges a remote adapter: the protocol's own rules first
// (capabilities, signatures, timestamps, replays), then every check of the
// conformance kit through a Client, exactly as Agora would reach it, with
// the capabilities the adapter declares. It returns an error only for
// options no run could use; a failing adapter is a Report with failed
// checks. Report.Capabilities holds what the adapter declared, as far as
// this Agora knows the capability.
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
	// No circuit breaker either: an adapter that fails five calls in a row
	// must still get the cleanup's calls (and the checks' own), or the kit
	// would report the breaker's refusals as the adapter's answers.
	clientOpts := Options{Dial: opts.Dial, BreakerFailures: math.MaxInt32}
	client, err := New(settings, clientOpts)
	if err != nil {
		return conformance.Report{}, fmt.Errorf("conformance options: %w", err)
	}
	defer client.Close()
	p := &probe{client: client, opts: opts}

	var results []conformance.CheckResult
	caps, capsResult := p.capabilities(ctx)
	results = append(results, capsResult)
	if opts.Capabilities != nil {
		results = append(results, configuredCapabilities(caps, opts.Capabilities))
	}
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

	declared := caps.declared()
	raw := map[string]any{"url": opts.URL, "timeout": opts.Timeout.String(), "retries": 0, "capabilities": declared}
	if opts.Secret != "" {
		raw["secret"] = opts.Secret
	}
	if opts.TLS != nil {
		raw["tls"] = map[string]any{"ca_file": opts.TLS.CAFile, "cert_file": opts.TLS.CertFile, "key_file": opts.TLS.KeyFile}
	}
	kit := conformance.Run(ctx, conformance.Options{
		Factory:                    FactoryWith(clientOpts),
		Settings:                   adapters.MapSettings(raw),
		Plans:                      []adapters.PlanConfig{{Plan: opts.Plan}},
		Offering:                   "conformance",
		ProvisionParameters:        opts.ProvisionParameters,
		BindParameters:             opts.BindParameters,
		InvalidProvisionParameters: opts.InvalidProvisionParameters,
		ProvisionSchema:            opts.ProvisionSchema,
		CheckCredentials:           opts.CheckCredentials,
		CheckRevoked:               opts.CheckRevoked,
		CheckIsolation:             opts.CheckIsolation,
		Verifiers:                  opts.Verifiers,
		Audience:                   conformance.ProtocolAudience,
		CallTimeout:                opts.Timeout,
		CleanupAttempts:            opts.CleanupAttempts,
		Logf:                       opts.Logf,
	})
	results = append(results, kit.Results...)
	return conformance.Report{Results: results, Capabilities: declared, Unverified: kit.Unverified}, nil
}

// declared are the capabilities the adapter declared that this Agora
// knows, in their usual order; never nil, so a config built from them
// says "none" rather than "not set".
func (cs *capabilitySet) declared() []string {
	out := []string{}
	for _, known := range knownCapabilities() {
		if slices.Contains(cs.result.Capabilities, known) {
			out = append(out, known)
		}
	}
	return out
}

// configuredCapabilities checks a catalog entry's config.capabilities
// against what the adapter declares: a capability the adapter does not
// declare would fail every call that needs it once live.
func configuredCapabilities(caps *capabilitySet, configured []string) conformance.CheckResult {
	res := conformance.CheckResult{Name: CheckConfiguredCaps}
	if caps == nil {
		res.Skipped, res.Detail = true, "needs the adapter's answer to GET /v1/capabilities (see the capabilities check)"
		return res
	}
	var missing []string
	for _, c := range configured {
		if !slices.Contains(caps.result.Capabilities, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		res.Passed = true
		return res
	}
	res.Detail = fmt.Sprintf("config.capabilities lists %s, but the adapter declares %s at GET /v1/capabilities",
		quoted(missing), truncate(quoted(caps.result.Capabilities)))
	res.Hint = fmt.Sprintf("Remove %s from config.capabilities, or declare %s in the adapter's GET /v1/capabilities answer once it implements %s; "+
		"leave config.capabilities out and the gate fills in what the adapter declares (docs/adapter-protocol.md, \"Capabilities\")",
		quoted(missing), them(missing), them(missing))
	return res
}

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
