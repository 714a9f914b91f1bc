package osb

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// maxResponseBody bounds what Agora reads from an upstream: a catalog with
// large schemas fits easily, a misbehaving proxy streaming forever does not.
const maxResponseBody = 8 << 20

// maxDescription bounds an upstream's error text in Agora's errors, which
// reach logs and app developers.
const maxDescription = 1000

// client speaks OSB to one upstream broker. It holds no state besides its
// settings and connection pool, so one client serves concurrent calls.
type client struct {
	ep   endpoint
	http *http.Client
}

// call is one HTTP request to the upstream.
type call struct {
	method string
	// path is below the base URL and already escaped ("/v2/catalog").
	path  string
	query url.Values
	// body is encoded as JSON; nil sends no body.
	body   any
	origin *adapters.Origin
}

// String names the request in errors: method and path, never the query
// (harmless, but noise) and never credentials.
func (c call) String() string {
	return c.method + " " + c.path
}

// response is the upstream's answer, read in full.
type response struct {
	status int
	body   []byte
}

// do sends one request, bounded by the upstream's timeout. Transport
// failures come back wrapped, naming the upstream's URL, so an operator
// sees at once which broker is down.
func (c *client) do(ctx context.Context, r call) (response, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.ep.timeout)
	defer cancel()

	target := c.ep.base.String() + r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		raw, err := json.Marshal(r.body)
		if err != nil {
			return response{}, fmt.Errorf("upstream broker %s: %s: encode request body: %w", c.ep, r, err)
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(callCtx, r.method, target, body)
	if err != nil {
		return response{}, fmt.Errorf("upstream broker %s: %s: %w", c.ep, r, err)
	}
	req.Header.Set("X-Broker-API-Version", c.ep.apiVersion)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.ep.username != "" {
		req.SetBasicAuth(c.ep.username, c.ep.password)
	}
	if r.origin != nil {
		if id := r.origin.RequestID; validHeaderValue(id) {
			req.Header.Set("X-Broker-API-Request-Identity", id)
		}
		if id := originatingIdentity(*r.origin); id != "" {
			req.Header.Set("X-Broker-API-Originating-Identity", id)
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL with its query; the upstream's
		// base URL and the call say the same with less noise.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return response{}, fmt.Errorf("upstream broker %s: %s: no answer within %s (the offering's timeout): %w", c.ep, r, c.ep.timeout, err)
		}
		return response{}, fmt.Errorf("upstream broker %s: %s: %w", c.ep, r, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		return response{}, fmt.Errorf("upstream broker %s: %s: read the %d response: %w", c.ep, r, resp.StatusCode, err)
	}
	if len(raw) > maxResponseBody {
		return response{}, fmt.Errorf("upstream broker %s: %s: the %d response is larger than %d bytes", c.ep, r, resp.StatusCode, maxResponseBody)
	}
	return response{status: resp.StatusCode, body: raw}, nil
}

// osbFailure is the OSB error body.
type osbFailure struct {
	Error       string `json:"error"`
	Description string `json:"description"`
}

// failure turns an unexpected status into the adapters error that means
// the same, keeping the upstream's own words for the app developer.
// Statuses an operation treats as success (202, 410 on delete) are
// handled by the caller before it gets here.
func (c *client) failure(r call, resp response) error {
	var f osbFailure
	_ = json.Unmarshal(resp.body, &f) // a body that is not an OSB error just has no description
	desc := f.Description
	if desc == "" {
		desc = f.Error
	}
	if desc == "" {
		desc = http.StatusText(resp.status)
	}
	if len(desc) > maxDescription {
		desc = desc[:maxDescription] + "..."
	}
	status := fmt.Sprintf("%d", resp.status)
	if f.Error != "" {
		status += " " + f.Error
	}
	if resp.status == http.StatusBadRequest && (r.method == http.MethodPut || r.method == http.MethodPatch) {
		// Only requests with parameters: the app developer reads this,
		// and the upstream's description tells her which one to fix.
		return adapters.InvalidParameters("%s", desc)
	}
	switch resp.status {
	case http.StatusConflict:
		return fmt.Errorf("%w: upstream broker %s answered %s with 409: %s", adapters.ErrAlreadyExists, c.ep, r, desc)
	case http.StatusGone:
		return fmt.Errorf("%w: upstream broker %s answered %s with 410: %s", adapters.ErrNotFound, c.ep, r, desc)
	case http.StatusUnprocessableEntity:
		switch f.Error {
		case "ConcurrencyError":
			// Another operation is running upstream; a later retry
			// succeeds, so this must not be terminal.
			return fmt.Errorf("upstream broker %s is busy with another operation on this resource (%s %s): %s", c.ep, r, status, desc)
		case "AsyncRequired":
			// Agora always sends accepts_incomplete=true, so this is the
			// upstream breaking the protocol; retrying cannot help.
			return adapters.Terminal(fmt.Errorf("upstream broker %s demanded accepts_incomplete=true although Agora sent it (%s %s): %s", c.ep, r, status, desc))
		default:
			// RequiresApp, MaintenanceInfoConflict and the like: the
			// request cannot be served as asked.
			return fmt.Errorf("%w: upstream broker %s answered %s with %s: %s", adapters.ErrNotSupported, c.ep, r, status, desc)
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		return adapters.Terminal(fmt.Errorf("upstream broker %s rejected Agora's credentials (%s %s): check the username and password Agora uses", c.ep, r, status))
	case http.StatusPreconditionFailed:
		return adapters.Terminal(fmt.Errorf("upstream broker %s does not accept X-Broker-API-Version %s (%s %s): %s; set api_version", c.ep, c.ep.apiVersion, r, status, desc))
	}
	if resp.status >= 500 {
		return fmt.Errorf("upstream broker %s failed: %s answered %s: %s", c.ep, r, status, desc)
	}
	return fmt.Errorf("upstream broker %s answered %s with unexpected %s: %s", c.ep, r, status, desc)
}

// decode reads a success body. Binding bodies hold credentials, so their
// decode errors never quote the body (json's errors do not, but a
// wrapper's message must not start to either).
func (c *client) decode(r call, resp response, v any) error {
	if len(bytes.TrimSpace(resp.body)) == 0 {
		return nil // "{}" is the spec's body, but an empty one means the same
	}
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("upstream broker %s answered %s with %d and a body that is not the OSB response: %w", c.ep, r, resp.status, err)
	}
	return nil
}

// originatingIdentity builds X-Broker-API-Originating-Identity from what
// Agora knows: the platform, and the OSB context in place of the user.
// adapters.Origin carries no user identity, so the upstream cannot audit
// by user; it sees the org/space (or namespace) the request came from.
// The spec requires the platform to equal context.platform when a context
// is sent, so that one wins.
func originatingIdentity(o adapters.Origin) string {
	platform := o.Platform
	ctxObj := contextObject(o)
	if p, ok := ctxObj["platform"].(string); ok && p != "" {
		platform = p
	}
	if platform == "" || strings.ContainsAny(platform, " \t") || !validHeaderValue(platform) {
		return ""
	}
	value := []byte("{}")
	if ctxObj != nil {
		value = requestContext(o)
	}
	return platform + " " + base64.StdEncoding.EncodeToString(value)
}

// contextObject decodes the platform's OSB context; nil when there is
// none or it is not a JSON object.
func contextObject(o adapters.Origin) map[string]any {
	if len(bytes.TrimSpace(o.Context)) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(o.Context, &m); err != nil {
		return nil
	}
	return m
}

// requestContext is the context object sent upstream: the platform's, or
// one that at least names the platform.
func requestContext(o adapters.Origin) json.RawMessage {
	if contextObject(o) != nil {
		// Passed on as the platform sent it: re-encoding would round
		// large numbers through float64.
		var compact bytes.Buffer
		if err := json.Compact(&compact, o.Context); err == nil {
			return compact.Bytes()
		}
	}
	if o.Platform != "" {
		raw, err := json.Marshal(map[string]string{"platform": o.Platform})
		if err == nil {
			return raw
		}
	}
	return nil
}

// tenant returns the deprecated but still required organization_guid and
// space_guid: Cloud Foundry's context carries them, Kubernetes' has the
// cluster and namespace in their place.
func tenant(o adapters.Origin) (org, space string) {
	m := contextObject(o)
	str := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok && v != "" {
				return v
			}
		}
		return ""
	}
	return str("organization_guid", "clusterid"), str("space_guid", "namespace")
}

// validHeaderValue reports whether v is non-empty and can be sent as a
// header value as it is; Go's client refuses control characters, and
// failing the whole request over a log-only header would be wrong.
func validHeaderValue(v string) bool {
	if v == "" {
		return false
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
