package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Factory returns the factory of adapter "remote", for the explicit list
// in cmd/agora. New does not contact the adapter: the protocol version and
// the capabilities it declares are checked on the first call and by Ping.
// The adapter it builds implements adapters.Updater and adapters.Poller
// only as config.capabilities says (see Client.Adapter).
func Factory() adapters.Factory {
	return FactoryWith(Options{})
}

// FactoryWith is Factory with base Options for every Client it builds
// (the conformance run passes its Dial).
func FactoryWith(base Options) adapters.Factory {
	return adapters.Factory{
		Name:        "remote",
		Description: "A producer's HTTP service in any language, over Agora's adapter protocol v1 (docs/adapter-protocol.md)",
		New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			c, err := newFromConfig(cfg, base)
			if err != nil {
				return nil, err
			}
			return c.Adapter(), nil
		},
		Check: func(cfg adapters.Config) (adapters.Capabilities, error) {
			s, err := decodeConfig(cfg)
			return s.declared(), err
		},
	}
}

// planSettings is empty: plans reach the adapter by ID and name, and its
// own per-plan settings live with the adapter. Decoding into it still
// rejects a field a catalog author sets by mistake.
type planSettings struct{}

func newFromConfig(cfg adapters.Config, base Options) (*Client, error) {
	s, err := decodeConfig(cfg)
	if err != nil {
		return nil, err
	}
	producer := cfg.Producer
	if producer == "" {
		producer = cfg.Offering
	}
	base.Producer, base.Logger = producer, cfg.Logger
	return New(s, base)
}

// decodeConfig decodes and validates an offering's config without I/O:
// what Check needs, and the first half of New.
func decodeConfig(cfg adapters.Config) (Settings, error) {
	var errs []error
	var s Settings
	if cfg.Settings == nil {
		errs = append(errs, errors.New("config: missing (url and secret are required)"))
	} else if err := cfg.Settings.Decode(&s); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	for i, p := range cfg.Plans {
		if p.Settings == nil {
			continue
		}
		if err := p.Settings.Decode(&planSettings{}); err != nil {
			errs = append(errs, fmt.Errorf("plans[%d] (%s).config: the remote adapter takes no plan settings: %w", i, p.Name, err))
		}
	}
	if len(errs) == 0 {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return s, errors.Join(errs...)
}

// Options are what a Client needs beside its Settings. The zero value
// works.
type Options struct {
	// Producer names the adapter's owner in errors when Settings.Producer
	// is empty.
	Producer string
	// Logger receives retries and circuit changes; default silent.
	Logger *slog.Logger
	// Now is the clock for signatures, backoff and the circuit breaker;
	// default time.Now.
	Now func() time.Time
	// BreakerFailures is how many consecutive failed attempts open the
	// circuit (default 5); BreakerCooldown how long it stays open before a
	// probe (default 10s).
	BreakerFailures int
	BreakerCooldown time.Duration
	// Dial, when set, makes every connection to the adapter: the producer
	// gate and the canary pass one that enforces the platform engineer's
	// egress rules on the address actually dialled.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

const (
	defaultBreakerFailures = 5
	defaultBreakerCooldown = 10 * time.Second
	backoffBase            = 200 * time.Millisecond
	backoffMax             = 5 * time.Second
	// capabilitiesTTL bounds how long Agora trusts an answer: a new
	// adapter release that drops a configured capability (or adds one
	// the config lists) is noticed without a restart; Ping refreshes at
	// once.
	capabilitiesTTL = 5 * time.Minute
)

// Client is an adapters.Adapter whose work is done by a remote adapter
// over protocol v1. It is safe for concurrent use.
//
// A Client itself has only the calls every remote adapter answers (and
// Ping and Close). Adapter returns it with Update and Poll as well, as far
// as Settings.Capabilities lists "update" and "status": capabilities are
// declared in the config, not assumed, so the catalog can refuse an
// offering that promises what its adapter cannot do.
type Client struct {
	who      string // "remote adapter <producer> at <url>", for every error
	base     string
	secret   []byte
	timeout  time.Duration
	retries  int
	http     *http.Client
	breaker  *breaker
	failures int
	logger   *slog.Logger
	now      func() time.Time
	// configured is Settings.Capabilities, which decides Adapter's type.
	configured []string

	// fetching serialises capability fetches without ignoring the
	// waiters' contexts, as a mutex held across a network call would.
	fetching chan struct{}
	capsMu   sync.Mutex
	caps     *capabilitySet
	// loggedUnused is the last list of declared but unconfigured
	// capabilities logged, so that a refresh logs only a change.
	loggedUnused string
}

// capabilitySet is one answer of GET /v1/capabilities, or the terminal
// error of an adapter that speaks another protocol.
type capabilitySet struct {
	result    capabilitiesResult
	update    bool
	status    bool
	err       error
	fetchedAt time.Time
	// missing are configured capabilities the adapter does not declare.
	missing []string
}

// New validates s and builds a Client. It does not contact the adapter.
func New(s Settings, opts Options) (*Client, error) {
	errs := []error{s.Validate()}
	tlsConfig, err := s.TLS.tlsConfig()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	producer := s.Producer
	if producer == "" {
		producer = opts.Producer
	}
	if producer == "" {
		producer = "(unnamed)"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	failures, cooldown := opts.BreakerFailures, opts.BreakerCooldown
	if failures <= 0 {
		failures = defaultBreakerFailures
	}
	if cooldown <= 0 {
		cooldown = defaultBreakerCooldown
	}
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	transport := &http.Transport{
		// No Proxy from the environment: the adapter's address is what the
		// catalog says, not what a variable on Agora's host says.
		DialContext:         dial,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Client{
		who:     fmt.Sprintf("remote adapter %s at %s", producer, s.baseURL()),
		base:    s.baseURL(),
		secret:  []byte(s.Secret),
		timeout: s.timeout(),
		retries: s.retries(),
		http: &http.Client{
			Transport: transport,
			// A signed request is for one URL; a redirect means the
			// catalog's url is wrong, which the operator must fix.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		breaker:    newBreaker(failures, cooldown),
		failures:   failures,
		logger:     logger,
		now:        now,
		configured: slices.Clone(s.Capabilities),
		fetching:   make(chan struct{}, 1),
	}, nil
}

// call is one protocol request.
type call struct {
	method    string
	path      string // escaped, below the base URL
	query     url.Values
	body      any
	requestID string
}

func (c call) String() string { return c.method + " " + c.path }

// do sends cl, retrying what may be retried, and decodes a 2xx answer
// into out. Every protocol call is idempotent by the adapter contract
// (PATCH included: it carries the whole desired state, not a change), so
// every call may be retried; only network errors, timeouts, 5xx and 429
// are, since any other answer would be the same again.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return adapters.Terminal(fmt.Errorf("%s: %s: encode request: %w", c.who, cl, err))
		}
	}
	target := c.base + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	if cl.requestID == "" {
		cl.requestID = "agora-" + newNonce()[:16]
	}
	var last error
	for attempt := 0; ; attempt++ {
		if !c.breaker.allow(c.now()) {
			return c.unavailable(last)
		}
		status, header, body, err := c.attempt(ctx, cl, target, payload)
		retry, verdict, res := c.judge(ctx, cl, status, header, body, err)
		c.breaker.done(verdict, c.now())
		if res == nil {
			if out == nil || len(bytes.TrimSpace(body)) == 0 {
				return nil
			}
			if err := json.Unmarshal(body, out); err != nil {
				return adapters.Terminal(fmt.Errorf("%s: %s: answered %d with a body that is not a protocol v1 result: %v: %w",
					c.who, cl, status, err, ErrProtocolMismatch))
			}
			return nil
		}
		last = res
		if !retry || attempt >= c.retries {
			return res
		}
		wait := backoff(attempt, header)
		c.logger.WarnContext(ctx, "remote adapter call failed; retrying", "call", cl.String(), "attempt", attempt+1,
			"of", c.retries+1, "wait", wait, "error", res.Error())
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%w (retry abandoned: %w)", res, ctx.Err())
		}
	}
}

// attempt sends one signed request with its own timeout and reads the
// answer, bounded in size.
func (c *Client) attempt(ctx context.Context, cl call, target string, payload []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, cl.method, target, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, nil, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "agora-remote-adapter/v1")
	req.Header.Set(HeaderRequestID, cl.requestID)
	if len(c.secret) > 0 {
		sign(req, c.secret, payload, c.now())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err == nil && len(body) > maxBody {
		err = fmt.Errorf("answer larger than %d bytes", maxBody)
	}
	return resp.StatusCode, resp.Header, body, err
}

// judge turns one attempt into the call's error (nil for a 2xx), whether
// to retry, and what it tells the circuit breaker.
func (c *Client) judge(ctx context.Context, cl call, status int, header http.Header, body []byte, err error) (retry bool, verdict outcome, _ error) {
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which c.who already names
		}
		switch {
		case ctx.Err() != nil:
			// The caller gave up; that says nothing about the adapter.
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return false, neutral, fmt.Errorf("%s: %s: no answer before the call's deadline: %w", c.who, cl, err)
			}
			return false, neutral, fmt.Errorf("%s: %s: %w", c.who, cl, err)
		case errors.Is(err, context.DeadlineExceeded):
			return true, failed, fmt.Errorf("%s: %s: no answer within %s: %w", c.who, cl, c.timeout, err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return true, failed, fmt.Errorf("%s: %s: the adapter closed the connection without a complete answer: %w", c.who, cl, err)
		case status != 0:
			return true, failed, fmt.Errorf("%s: %s: reading the answer: %w", c.who, cl, err)
		}
		return true, failed, fmt.Errorf("%s: %s: %w", c.who, cl, err)
	}
	if status >= 200 && status < 300 {
		return false, succeeded, nil
	}
	verdict = succeeded
	if retryableStatus(status) {
		verdict = failed
	}
	if status >= 300 && status < 400 {
		return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: answered %d with a redirect to %q; set url to the adapter's own address: %w",
			c.who, cl, status, header.Get("Location"), ErrProtocolMismatch))
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error == "" {
		switch {
		case retryableStatus(status):
			return true, verdict, fmt.Errorf("%s: %s: answered %d %s", c.who, cl, status, http.StatusText(status))
		case status == http.StatusUnauthorized:
			return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: answered 401 Unauthorized: %w", c.who, cl, ErrUnauthorized))
		}
		// Without the protocol's error body the code is unknown, and a
		// guess (a proxy's 404 read as "already gone") could be unsafe.
		return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: answered %d %s without a protocol error body; is url the adapter's base URL? %w",
			c.who, cl, status, http.StatusText(status), ErrProtocolMismatch))
	}
	msg := truncate(eb.Message)
	terminal, sentinel := codeError(eb.Error)
	switch {
	case sentinel == adapters.ErrInvalidParameters:
		// The broker shows this one to the app developer as it is: the
		// adapter's own words, without Agora's plumbing.
		return false, verdict, fmt.Errorf("%w: %s", sentinel, trimSentinel(msg, sentinel))
	case sentinel == ErrUnauthorized:
		return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: %w: %s", c.who, cl, sentinel, msg))
	case sentinel != nil:
		return false, verdict, fmt.Errorf("%s: %s: %w: %s", c.who, cl, sentinel, trimSentinel(msg, sentinel))
	case terminal:
		return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: %s", c.who, cl, msg))
	case retryableStatus(status):
		return true, verdict, fmt.Errorf("%s: %s: %d %s: %s", c.who, cl, status, eb.Error, msg)
	}
	// "internal" or an unknown code with a status that is not 5xx: the
	// same request would get the same answer.
	return false, verdict, adapters.Terminal(fmt.Errorf("%s: %s: %d %s: %s", c.who, cl, status, eb.Error, msg))
}

// trimSentinel drops the sentinel's own text from an adapter's message,
// which a Go adapter behind Handler includes, so it is not said twice.
func trimSentinel(msg string, sentinel error) string {
	s := sentinel.Error()
	msg = strings.TrimPrefix(msg, s+": ")
	msg = strings.TrimSuffix(msg, ": "+s)
	if msg == s {
		return ""
	}
	return msg
}

func (c *Client) unavailable(last error) error {
	err := fmt.Errorf("%s is %w (circuit open after %d failures)", c.who, ErrUnavailable, c.failures)
	if last != nil {
		return fmt.Errorf("%w; last error: %w", err, last)
	}
	return err
}

// backoff is exponential with jitter (half fixed, half random), so that
// many callers retrying one adapter do not return in step. A Retry-After
// in seconds from the adapter lengthens it, within backoffMax.
func backoff(attempt int, header http.Header) time.Duration {
	d := min(backoffBase<<attempt, backoffMax)
	d = d/2 + rand.N(d/2+1)
	if header != nil {
		if s, err := strconv.Atoi(header.Get("Retry-After")); err == nil && s > 0 {
			d = max(d, min(time.Duration(s)*time.Second, backoffMax))
		}
	}
	return d
}

// capabilities returns the cached answer, fetching it on first use and
// after capabilitiesTTL.
func (c *Client) capabilities(ctx context.Context) (*capabilitySet, error) {
	if cs := c.cached(); cs != nil {
		return cs, cs.err
	}
	select {
	case c.fetching <- struct{}{}:
		defer func() { <-c.fetching }()
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for GET /v1/capabilities: %w", c.who, ctx.Err())
	}
	if cs := c.cached(); cs != nil {
		return cs, cs.err
	}
	return c.refreshCapabilities(ctx)
}

func (c *Client) cached() *capabilitySet {
	c.capsMu.Lock()
	defer c.capsMu.Unlock()
	if c.caps == nil || c.now().Sub(c.caps.fetchedAt) > capabilitiesTTL {
		return nil
	}
	return c.caps
}

// refreshCapabilities asks the adapter what it speaks. A transport error
// is not cached (the next call asks again); an answer is, mismatch
// included, so that a wrong adapter is not asked again on every call.
func (c *Client) refreshCapabilities(ctx context.Context) (*capabilitySet, error) {
	var res capabilitiesResult
	if err := c.do(ctx, call{method: http.MethodGet, path: "/v1/capabilities"}, &res); err != nil {
		return nil, err
	}
	cs := &capabilitySet{
		result:    res,
		update:    slices.Contains(res.Capabilities, CapabilityUpdate),
		status:    slices.Contains(res.Capabilities, CapabilityStatus),
		fetchedAt: c.now(),
	}
	for _, want := range c.configured {
		if !slices.Contains(res.Capabilities, want) {
			cs.missing = append(cs.missing, want)
		}
	}
	switch res.Protocol {
	case ProtocolVersion:
	case "":
		cs.err = adapters.Terminal(fmt.Errorf("%s: GET /v1/capabilities names no protocol version; Agora speaks %q: is url the adapter's base URL? %w",
			c.who, ProtocolVersion, ErrProtocolMismatch))
	default:
		cs.err = adapters.Terminal(fmt.Errorf("%s speaks protocol %q (adapter %q version %q), but Agora speaks %q: deploy an adapter release that speaks %[5]q: %w",
			c.who, res.Protocol, res.Name, res.Version, ProtocolVersion, ErrProtocolMismatch))
	}
	if cs.err == nil {
		c.noteUnused(ctx, res)
	}
	c.capsMu.Lock()
	c.caps = cs
	c.capsMu.Unlock()
	return cs, cs.err
}

// Capabilities asks the adapter (always, not from the cache) and returns
// its protocol version, name, version and capabilities. A protocol other
// than v1 is an error wrapping ErrProtocolMismatch.
func (c *Client) Capabilities(ctx context.Context) (protocol, name, version string, capabilities []string, err error) {
	cs, err := c.refreshCapabilities(ctx)
	if cs == nil {
		return "", "", "", nil, err
	}
	return cs.result.Protocol, cs.result.Name, cs.result.Version, slices.Clone(cs.result.Capabilities), err
}

// Ping asks the adapter for its capabilities, which proves it answers,
// accepts Agora's signature and speaks protocol v1, and that it declares
// every capability the config lists.
func (c *Client) Ping(ctx context.Context) error {
	cs, err := c.refreshCapabilities(ctx)
	if err != nil {
		return err
	}
	if len(cs.missing) > 0 {
		return c.mismatch(cs, cs.missing, "")
	}
	return nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func instancePath(id string) string { return "/v1/instances/" + url.PathEscape(id) }

func bindingPath(instanceID, bindingID string) string {
	return instancePath(instanceID) + "/bindings/" + url.PathEscape(bindingID)
}

// params sends an object even when Agora has none, so adapters never
// have to tell null from {}.
func params(p map[string]any) map[string]any {
	if p == nil {
		return map[string]any{}
	}
	return p
}

// checkPending rejects a Pending answer Agora could never follow up.
func (c *Client) checkPending(cs *capabilitySet, cl call, pending bool, operation string) error {
	switch {
	case !pending:
		return nil
	case operation == "":
		return adapters.Terminal(fmt.Errorf("%s: %s: answered pending without an operation to poll: %w", c.who, cl, ErrProtocolMismatch))
	case !cs.status:
		return adapters.Terminal(fmt.Errorf("%s: %s: answered pending, but does not declare the %q capability, so Agora cannot follow the operation: %w",
			c.who, cl, CapabilityStatus, ErrProtocolMismatch))
	case !slices.Contains(c.configured, CapabilityStatus):
		return adapters.Terminal(fmt.Errorf("%s: %s: answered pending, but the offering's config.capabilities does not list %q, so Agora cannot follow the operation: add it",
			c.who, cl, CapabilityStatus))
	}
	return nil
}

// Provision sends PUT /v1/instances/{id}.
func (c *Client) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	cl := call{method: http.MethodPut, path: instancePath(req.InstanceID), requestID: req.Origin.RequestID,
		body: provisionBody{Offering: req.Offering, Plan: toWirePlan(req.Plan), Parameters: params(req.Parameters), Origin: toWireOrigin(req.Origin),
			Maintenance: toWireMaintenance(req.Maintenance)}}
	var res instanceResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := c.checkPending(cs, cl, res.Pending, res.Operation); err != nil {
		return adapters.ProvisionResult{}, err
	}
	return res.provision(), nil
}

func (r instanceResult) provision() adapters.ProvisionResult {
	return adapters.ProvisionResult{DashboardURL: r.DashboardURL, Metadata: r.Metadata, Receipt: r.Receipt,
		Pending: r.Pending, OperationToken: r.Operation}
}

// update sends PATCH /v1/instances/{id}. Only the types Adapter returns
// for a config listing "update" reach it.
func (c *Client) update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	if !cs.update {
		return adapters.UpdateResult{}, c.mismatch(cs, []string{CapabilityUpdate}, "update "+req.InstanceID)
	}
	cl := call{method: http.MethodPatch, path: instancePath(req.InstanceID), requestID: req.Origin.RequestID,
		body: updateBody{Offering: req.Offering, Plan: toWirePlan(req.Plan), PreviousPlan: toWirePlan(req.PreviousPlan),
			Parameters: params(req.Parameters), Receipt: req.Receipt, Origin: toWireOrigin(req.Origin),
			Maintenance: toWireMaintenance(req.Maintenance)}}
	var res instanceResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.UpdateResult{}, err
	}
	if err := c.checkPending(cs, cl, res.Pending, res.Operation); err != nil {
		return adapters.UpdateResult{}, err
	}
	return adapters.UpdateResult{DashboardURL: res.DashboardURL, Metadata: res.Metadata, Receipt: res.Receipt,
		Pending: res.Pending, OperationToken: res.Operation}, nil
}

// Deprovision sends DELETE /v1/instances/{id}.
func (c *Client) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	cl := call{method: http.MethodDelete, path: instancePath(req.InstanceID), requestID: req.Origin.RequestID,
		body: deprovisionBody{Offering: req.Offering, Plan: toWirePlan(req.Plan), Receipt: req.Receipt, Origin: toWireOrigin(req.Origin)}}
	var res deleteResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if err := c.checkPending(cs, cl, res.Pending, res.Operation); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	return adapters.DeprovisionResult{Pending: res.Pending, OperationToken: res.Operation}, nil
}

// Bind sends PUT /v1/instances/{id}/bindings/{binding_id}.
func (c *Client) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.BindResult{}, err
	}
	cl := call{method: http.MethodPut, path: bindingPath(req.InstanceID, req.BindingID), requestID: req.Origin.RequestID,
		body: bindBody{Offering: req.Offering, Plan: toWirePlan(req.Plan), AppGUID: req.AppGUID, Parameters: params(req.Parameters),
			InstanceReceipt: req.InstanceReceipt, Origin: toWireOrigin(req.Origin), Predecessor: toWirePredecessor(req.Predecessor)}}
	var res bindResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.BindResult{}, err
	}
	if err := c.checkPending(cs, cl, res.Pending, res.Operation); err != nil {
		return adapters.BindResult{}, err
	}
	return c.bindResult(cl, res)
}

// bindResult turns a bind answer into the adapters type; malformed times
// are the adapter's protocol error, terminal (a retry gets them again).
func (c *Client) bindResult(cl call, r bindResult) (adapters.BindResult, error) {
	expires, err := parseWireTime("expires_at", r.ExpiresAt)
	if err == nil {
		var renew time.Time
		if renew, err = parseWireTime("renew_before", r.RenewBefore); err == nil {
			return adapters.BindResult{Credentials: r.Credentials, Endpoints: r.Endpoints, SyslogDrainURL: r.SyslogDrainURL,
				RouteServiceURL: r.RouteServiceURL, Receipt: r.Receipt, Pending: r.Pending, OperationToken: r.Operation,
				ExpiresAt: expires, RenewBefore: renew}, nil
		}
	}
	return adapters.BindResult{}, adapters.Terminal(fmt.Errorf("%s: %s: %w: %w", c.who, cl, err, ErrProtocolMismatch))
}

// Unbind sends DELETE /v1/instances/{id}/bindings/{binding_id}.
func (c *Client) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	cl := call{method: http.MethodDelete, path: bindingPath(req.InstanceID, req.BindingID), requestID: req.Origin.RequestID,
		body: unbindBody{Offering: req.Offering, Plan: toWirePlan(req.Plan), InstanceReceipt: req.InstanceReceipt,
			Receipt: req.Receipt, Origin: toWireOrigin(req.Origin)}}
	var res deleteResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.UnbindResult{}, err
	}
	if err := c.checkPending(cs, cl, res.Pending, res.Operation); err != nil {
		return adapters.UnbindResult{}, err
	}
	return adapters.UnbindResult{Pending: res.Pending, OperationToken: res.Operation}, nil
}

// poll sends GET /v1/instances/{id}/operations/{operation}. Only the
// types Adapter returns for a config listing "status" reach it.
func (c *Client) poll(ctx context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.PollResult{}, err
	}
	if !cs.status {
		return adapters.PollResult{}, c.mismatch(cs, []string{CapabilityStatus}, "poll "+req.InstanceID)
	}
	if req.Token == "" {
		return adapters.PollResult{}, adapters.Terminal(fmt.Errorf("%s: poll %s: no operation token to ask about", c.who, req.InstanceID))
	}
	q := url.Values{"kind": {string(req.Kind)}}
	for k, v := range map[string]string{"binding_id": req.BindingID, "offering": req.Offering, "plan_id": req.Plan.ID, "plan_name": req.Plan.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	cl := call{method: http.MethodGet, path: instancePath(req.InstanceID) + "/operations/" + url.PathEscape(req.Token),
		query: q, requestID: req.Origin.RequestID}
	var res statusResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.PollResult{}, err
	}
	switch res.State {
	case adapters.InProgress, adapters.Succeeded, adapters.Failed:
	default:
		return adapters.PollResult{}, adapters.Terminal(fmt.Errorf("%s: %s: state %q is not one of %q, %q, %q: %w",
			c.who, cl, res.State, adapters.InProgress, adapters.Succeeded, adapters.Failed, ErrProtocolMismatch))
	}
	out := adapters.PollResult{State: res.State, Description: res.Description}
	if res.Instance != nil {
		p := res.Instance.provision()
		out.Instance = &p
	}
	if res.Bind != nil {
		b, err := c.bindResult(cl, *res.Bind)
		if err != nil {
			return adapters.PollResult{}, err
		}
		out.Bind = &b
	}
	return out, nil
}
