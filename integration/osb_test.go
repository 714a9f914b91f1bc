package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/broker/catalog"
)

// apiVersion is what Cloud Foundry's Cloud Controller still sends.
const apiVersion = "2.15"

func derivePlanID(plan string) string {
	return catalog.DerivePlanID("platform-team", "secrets", plan)
}

// OSBClient speaks OSB to one broker the way a platform does.
type OSBClient struct {
	base, user, pass string
	http             *http.Client
}

func newOSBClient(base, user, pass string) *OSBClient {
	return &OSBClient{base: base, user: user, pass: pass, http: &http.Client{Timeout: 60 * time.Second}}
}

// Response is what came back, with the body decoded when it is JSON.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func (r Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, r.Body)
}

// Str returns a top-level string field of the JSON body.
func (r Response) Str(field string) string {
	s, _ := r.JSON[field].(string)
	return s
}

// Credentials returns the "credentials" object of a binding response.
func (r Response) Credentials() map[string]any {
	c, _ := r.JSON["credentials"].(map[string]any)
	return c
}

// Raw sends a request with a raw body and extra headers; path is the
// already-escaped path and query below the broker's URL.
func (c *OSBClient) Raw(method, path string, body []byte, header http.Header) Response {
	GinkgoHelper()
	u, err := url.Parse(c.base + path)
	Expect(err).NotTo(HaveOccurred())
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header.Del(k)
		for _, v := range vs {
			if v != "" {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := c.http.Do(req)
	Expect(err).NotTo(HaveOccurred(), "%s %s", method, path)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	_ = json.Unmarshal(data, &out.JSON)
	return out
}

// Do sends body as JSON (nil: no body).
func (c *OSBClient) Do(method, path string, body any) Response {
	GinkgoHelper()
	return c.Raw(method, path, jsonBody(body), nil)
}

// jsonBody encodes a request body (nil: none).
func jsonBody(body any) []byte {
	GinkgoHelper()
	if body == nil {
		return nil
	}
	raw, err := json.Marshal(body)
	Expect(err).NotTo(HaveOccurred())
	return raw
}

func instancePath(iid string) string { return "/v2/service_instances/" + url.PathEscape(iid) }

func bindingPath(iid, bid string) string {
	return instancePath(iid) + "/service_bindings/" + url.PathEscape(bid)
}

func query(acceptsIncomplete bool, kv ...string) string {
	q := url.Values{}
	if acceptsIncomplete {
		q.Set("accepts_incomplete", "true")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ProvisionBody is the body Cloud Foundry sends for create-service.
func ProvisionBody(planID string) map[string]any {
	return map[string]any{
		"service_id": secretsServiceID, "plan_id": planID,
		"organization_guid": "org-guid", "space_guid": "space-guid",
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": "org-guid", "space_guid": "space-guid"},
	}
}

func (c *OSBClient) Catalog() Response {
	GinkgoHelper()
	return c.Do(http.MethodGet, "/v2/catalog", nil)
}

func (c *OSBClient) Provision(iid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.ProvisionWith(iid, ProvisionBody(planID), acceptsIncomplete)
}

func (c *OSBClient) ProvisionWith(iid string, body map[string]any, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodPut, instancePath(iid)+query(acceptsIncomplete), body)
}

func (c *OSBClient) GetInstance(iid string) Response {
	GinkgoHelper()
	return c.Do(http.MethodGet, instancePath(iid), nil)
}

func (c *OSBClient) Deprovision(iid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodDelete, instancePath(iid)+query(acceptsIncomplete, "service_id", secretsServiceID, "plan_id", planID), nil)
}

func (c *OSBClient) Bind(iid, bid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodPut, bindingPath(iid, bid)+query(acceptsIncomplete), map[string]any{
		"service_id": secretsServiceID, "plan_id": planID, "app_guid": "app-guid",
		"bind_resource": map[string]any{"app_guid": "app-guid"},
	})
}

func (c *OSBClient) GetBinding(iid, bid string) Response {
	GinkgoHelper()
	return c.Do(http.MethodGet, bindingPath(iid, bid), nil)
}

func (c *OSBClient) Unbind(iid, bid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodDelete, bindingPath(iid, bid)+query(acceptsIncomplete, "service_id", secretsServiceID, "plan_id", planID), nil)
}

func (c *OSBClient) LastOperation(iid, operation string) Response {
	GinkgoHelper()
	return c.Do(http.MethodGet, instancePath(iid)+"/last_operation"+query(false, "operation", operation), nil)
}

func (c *OSBClient) LastBindingOperation(iid, bid, operation string) Response {
	GinkgoHelper()
	return c.Do(http.MethodGet, bindingPath(iid, bid)+"/last_operation"+query(false, "operation", operation), nil)
}

// AwaitOperation polls last_operation (as a platform does) until the state
// is no longer "in progress" or the answer is not a 200 (410 after an
// async delete). Every 200 must carry Retry-After.
func (c *OSBClient) AwaitOperation(iid, operation string, timeout time.Duration) Response {
	GinkgoHelper()
	return c.await(func() Response { return c.LastOperation(iid, operation) }, timeout)
}

// AwaitBindingOperation is AwaitOperation for a binding.
func (c *OSBClient) AwaitBindingOperation(iid, bid, operation string, timeout time.Duration) Response {
	GinkgoHelper()
	return c.await(func() Response { return c.LastBindingOperation(iid, bid, operation) }, timeout)
}

func (c *OSBClient) await(poll func() Response, timeout time.Duration) Response {
	GinkgoHelper()
	var last Response
	Eventually(func(g Gomega) {
		last = poll()
		if last.Status == http.StatusOK {
			g.Expect(last.Header.Get("Retry-After")).NotTo(BeEmpty(), "last_operation 200 without Retry-After")
			g.Expect(last.Str("state")).NotTo(Equal("in progress"), "still in progress: %s", last)
		}
	}).WithTimeout(timeout).WithPolling(100 * time.Millisecond).Should(Succeed())
	return last
}
