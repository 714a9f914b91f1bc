package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// management is a small client for the RabbitMQ management HTTP API. It
// covers only the handful of calls the adapter makes, which keeps the
// adapter free of a third-party client and its defaults.
type management struct {
	base       string // without trailing slash, for messages and URLs
	user, pass string
	http       *http.Client
}

func newManagement(s Settings) *management {
	return &management{
		base: strings.TrimRight(s.ManagementURL, "/"),
		user: s.AdminUser,
		pass: s.AdminPassword,
		http: &http.Client{
			// Each call is small; the overall bound keeps a stuck server
			// from eating the platform's 60 s OSB budget. ctx still wins
			// when it is shorter.
			Timeout: 30 * time.Second,
			// No Proxy: the adapter takes its configuration from the
			// catalog only, never silently from HTTP_PROXY.
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSHandshakeTimeout:   5 * time.Second,
				ResponseHeaderTimeout: 25 * time.Second,
				MaxIdleConnsPerHost:   4,
				IdleConnTimeout:       90 * time.Second,
			},
		},
	}
}

// apiError is a non-2xx answer, kept typed so callers can look at the
// RabbitMQ reason (e.g. vhost_or_user_not_found).
type apiError struct {
	Status int
	Reason string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Reason)
}

// path joins escaped segments: vhost and user names may hold '/', which
// must reach RabbitMQ as %2F.
func path(segments ...string) string {
	esc := make([]string, len(segments))
	for i, s := range segments {
		esc[i] = url.PathEscape(s)
	}
	return strings.Join(esc, "/")
}

// call sends one request to /api/<apiPath> and decodes a JSON answer into
// out when out is not nil. Every error names the management URL.
func (m *management) call(ctx context.Context, method, apiPath string, body, out any) error {
	var reader io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("rabbitmq management at %s: encode %s %s: %w", m.base, method, apiPath, err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.base+"/api/"+apiPath, reader)
	if err != nil {
		return fmt.Errorf("rabbitmq management at %s: %s %s: %w", m.base, method, apiPath, err)
	}
	req.SetBasicAuth(m.user, m.pass)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.http.Do(req)
	if err != nil {
		// url.Error repeats the URL; the wrapped chain keeps the cause
		// (connection refused, timeout, ctx cancelled) for errors.Is.
		return fmt.Errorf("rabbitmq management at %s: %s %s: %w", m.base, method, apiPath, err)
	}
	defer resp.Body.Close()
	payload, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("rabbitmq management at %s: %s %s: read answer: %w", m.base, method, apiPath, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		// Retrying with the same credentials cannot help; an operator must
		// fix the offering's config.
		return adapters.Terminal(fmt.Errorf("rabbitmq management at %s: %s %s: credentials of admin_user %q rejected or not an administrator (check admin_user/admin_password): %w",
			m.base, method, apiPath, m.user, &apiError{Status: resp.StatusCode, Reason: reason(payload)}))
	case resp.StatusCode == http.StatusNotFound:
		// Callers that delete treat this as success.
		return fmt.Errorf("rabbitmq management at %s: %s %s: %w", m.base, method, apiPath, adapters.ErrNotFound)
	case resp.StatusCode >= 300:
		return fmt.Errorf("rabbitmq management at %s: %s %s: %w", m.base, method, apiPath, &apiError{Status: resp.StatusCode, Reason: reason(payload)})
	}
	if out != nil {
		if err := json.Unmarshal(payload, out); err != nil {
			return fmt.Errorf("rabbitmq management at %s: %s %s: decode answer: %w", m.base, method, apiPath, err)
		}
	}
	return nil
}

// reason extracts RabbitMQ's {"error": ..., "reason": ...}, falling back to
// a short excerpt of whatever came back (a proxy's HTML page, say).
func reason(payload []byte) string {
	var e struct {
		Error  string          `json:"error"`
		Reason json.RawMessage `json:"reason"`
	}
	if json.Unmarshal(payload, &e) == nil && e.Error != "" {
		r := strings.Trim(string(e.Reason), `"`)
		return e.Error + ": " + r
	}
	s := strings.TrimSpace(string(payload))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// deleteIgnoringMissing deletes and treats "already gone" as success,
// which is what makes Unbind and Deprovision repeatable.
func (m *management) deleteIgnoringMissing(ctx context.Context, apiPath string) error {
	if err := m.call(ctx, http.MethodDelete, apiPath, nil, nil); err != nil && !errors.Is(err, adapters.ErrNotFound) {
		return err
	}
	return nil
}
