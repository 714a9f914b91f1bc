package producerapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/producers"
)

// Client drives the producer and admin API over HTTP. Set Token for a
// producer's calls, or Username and Password for an admin's.
type Client struct {
	// BaseURL is Agora's URL, such as https://agora.example.com.
	BaseURL  string
	Token    string
	Username string
	Password string
	// HTTP is the client to use; nil means one with a 2-minute timeout
	// (an apply waits for the conformance gate).
	HTTP *http.Client
}

// APIError is an error answer, with everything the API said.
type APIError struct {
	Status      int
	Code        string                   `json:"error"`
	Description string                   `json:"description"`
	Problems    []producers.FieldProblem `json:"problems"`
	Gate        *producers.GateResult    `json:"gate"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Status, e.Description)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(FormatProblem(p))
	}
	return b.String()
}

// FormatProblem prints a problem as "path: message (line N)".
func FormatProblem(p producers.FieldProblem) string {
	s := p.Message
	if p.Path != "" {
		s = p.Path + ": " + s
	}
	if p.Line > 0 {
		s += " (line " + strconv.Itoa(p.Line) + ")"
	}
	return s
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.Username != "":
		req.SetBasicAuth(c.Username, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Description == "" {
			e.Description = strings.TrimSpace(string(data))
			if e.Description == "" {
				e.Description = resp.Status
			}
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func (c *Client) doJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	return c.do(ctx, method, path, body, ct, out)
}

func seg(s string) string { return url.PathEscape(s) }

// Register self-registers a pending producer (no credentials needed).
func (c *Client) Register(ctx context.Context, req producers.CreateRequest) (*producers.Created, error) {
	var out producers.Created
	return &out, c.doJSON(ctx, http.MethodPost, "/producers/register", req, &out)
}

// Status is the producer's overview.
func (c *Client) Status(ctx context.Context, name string) (*producers.Status, error) {
	var out producers.Status
	return &out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name), nil, &out)
}

// Apply puts a slice (YAML or JSON bytes). A failed gate is an *APIError
// with Status 422 and the Gate report.
func (c *Client) Apply(ctx context.Context, name string, slice []byte) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.do(ctx, http.MethodPut, "/producers/"+seg(name)+"/slice", bytes.NewReader(slice), "application/yaml", &out)
}

// Live returns the live version with its text.
func (c *Client) Live(ctx context.Context, name string) (*producers.SliceVersion, error) {
	var out producers.SliceVersion
	return &out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/slice", nil, &out)
}

// Versions lists every version, newest first.
func (c *Client) Versions(ctx context.Context, name string) ([]producers.SliceVersion, error) {
	var out []producers.SliceVersion
	return out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/slice/versions", nil, &out)
}

// Version returns one version with its text and gate report.
func (c *Client) Version(ctx context.Context, name string, v int) (*producers.SliceVersion, error) {
	var out producers.SliceVersion
	return &out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/slice/versions/"+strconv.Itoa(v), nil, &out)
}

// Restore makes an earlier version current again, as a new version.
func (c *Client) Restore(ctx context.Context, name string, v int) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.doJSON(ctx, http.MethodPost, "/producers/"+seg(name)+"/slice/restore/"+strconv.Itoa(v), nil, &out)
}

// Offerings lists her live offerings.
func (c *Client) Offerings(ctx context.Context, name string) ([]producers.OfferingView, error) {
	var out []producers.OfferingView
	return out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/offerings", nil, &out)
}

// Deprecate hides a plan from new instances.
func (c *Client) Deprecate(ctx context.Context, name, offering, plan string) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.doJSON(ctx, http.MethodPost, "/producers/"+seg(name)+"/offerings/"+seg(offering)+"/plans/"+seg(plan)+"/deprecate", nil, &out)
}

// RemoveOffering takes an offering without instances out of the catalog.
func (c *Client) RemoveOffering(ctx context.Context, name, offering string) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.doJSON(ctx, http.MethodDelete, "/producers/"+seg(name)+"/offerings/"+seg(offering), nil, &out)
}

// InstancePage reads one page of her instances and their bindings;
// cursor "" starts, limit 0 takes the server's default.
func (c *Client) InstancePage(ctx context.Context, name, cursor string, limit int) (*producers.InstancePage, error) {
	var out producers.InstancePage
	return &out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/instances"+pageQuery(cursor, limit, nil), nil, &out)
}

// Instances walks every page of her instances.
func (c *Client) Instances(ctx context.Context, name string) ([]producers.InstanceView, error) {
	var all []producers.InstanceView
	for cursor := ""; ; {
		page, err := c.InstancePage(ctx, name, cursor, producers.MaxPageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Instances...)
		if cursor = page.NextCursor; cursor == "" {
			return all, nil
		}
	}
}

// OperationPage reads the latest operations of one page of instances;
// failedOnly keeps failures.
func (c *Client) OperationPage(ctx context.Context, name string, failedOnly bool, cursor string, limit int) (*producers.OperationPage, error) {
	var out producers.OperationPage
	extra := url.Values{}
	if failedOnly {
		extra.Set("failed", "true")
	}
	return &out, c.doJSON(ctx, http.MethodGet, "/producers/"+seg(name)+"/operations"+pageQuery(cursor, limit, extra), nil, &out)
}

// Operations walks every page, newest first.
func (c *Client) Operations(ctx context.Context, name string, failedOnly bool) ([]producers.OperationView, error) {
	var all []producers.OperationView
	for cursor := ""; ; {
		page, err := c.OperationPage(ctx, name, failedOnly, cursor, producers.MaxPageSize)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Operations...)
		if cursor = page.NextCursor; cursor == "" {
			sort.SliceStable(all, func(i, j int) bool { return all[i].UpdatedAt.After(all[j].UpdatedAt) })
			return all, nil
		}
	}
}

func pageQuery(cursor string, limit int, q url.Values) string {
	if q == nil {
		q = url.Values{}
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// ListProducers lists every producer (admin).
func (c *Client) ListProducers(ctx context.Context) ([]producers.Producer, error) {
	var out []producers.Producer
	return out, c.doJSON(ctx, http.MethodGet, "/admin/producers", nil, &out)
}

// CreateProducer creates an active producer and returns her token (admin).
func (c *Client) CreateProducer(ctx context.Context, req producers.CreateRequest) (*producers.Created, error) {
	var out producers.Created
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers", req, &out)
}

// GetProducer returns one producer (admin).
func (c *Client) GetProducer(ctx context.Context, name string) (*producers.Producer, error) {
	var out producers.Producer
	return &out, c.doJSON(ctx, http.MethodGet, "/admin/producers/"+seg(name), nil, &out)
}

// UpdateProducer changes contact or auto-approval (admin).
func (c *Client) UpdateProducer(ctx context.Context, name string, req producers.UpdateRequest) (*producers.Producer, error) {
	var out producers.Producer
	return &out, c.doJSON(ctx, http.MethodPatch, "/admin/producers/"+seg(name), req, &out)
}

// ApproveProducer makes a pending or suspended producer active (admin).
func (c *Client) ApproveProducer(ctx context.Context, name string) (*producers.Producer, error) {
	var out producers.Producer
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers/"+seg(name)+"/approve", nil, &out)
}

// SuspendProducer suspends a producer (admin).
func (c *Client) SuspendProducer(ctx context.Context, name string) (*producers.Producer, error) {
	var out producers.Producer
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers/"+seg(name)+"/suspend", nil, &out)
}

// RotateToken issues a new token; the old one stops working (admin).
func (c *Client) RotateToken(ctx context.Context, name string) (*producers.Created, error) {
	var out producers.Created
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers/"+seg(name)+"/token", nil, &out)
}

// AdminVersions lists a producer's versions (admin).
func (c *Client) AdminVersions(ctx context.Context, name string) ([]producers.SliceVersion, error) {
	var out []producers.SliceVersion
	return out, c.doJSON(ctx, http.MethodGet, "/admin/producers/"+seg(name)+"/slices", nil, &out)
}

// ApproveSlice makes a pending version live (admin).
func (c *Client) ApproveSlice(ctx context.Context, name string, v int) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers/"+seg(name)+"/slices/"+strconv.Itoa(v)+"/approve", nil, &out)
}

// RejectSlice closes a pending version (admin).
func (c *Client) RejectSlice(ctx context.Context, name string, v int, reason string) (*producers.ApplyResult, error) {
	var out producers.ApplyResult
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/producers/"+seg(name)+"/slices/"+strconv.Itoa(v)+"/reject", RejectRequest{Reason: reason}, &out)
}

// CatalogStatus reports the catalog generation (admin).
func (c *Client) CatalogStatus(ctx context.Context) (*CatalogStatus, error) {
	var out CatalogStatus
	return &out, c.doJSON(ctx, http.MethodGet, "/admin/catalog", nil, &out)
}

// Canary reads the canary's latest verdict on every live offering.
func (c *Client) Canary(ctx context.Context) ([]producers.CanaryResult, error) {
	var out []producers.CanaryResult
	return out, c.doJSON(ctx, http.MethodGet, "/admin/canary", nil, &out)
}

// AllInstances reads one page of the platform engineer's listing.
func (c *Client) AllInstances(ctx context.Context, f producers.InstanceFilter, cursor string, limit int) (*producers.InstancePage, error) {
	q := url.Values{}
	for k, v := range map[string]string{"producer": f.Producer, "offering": f.Offering, "state": f.State} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.StuckFor > 0 {
		q.Set("stuck_for", f.StuckFor.String())
	}
	var out producers.InstancePage
	return &out, c.doJSON(ctx, http.MethodGet, "/admin/instances"+pageQuery(cursor, limit, q), nil, &out)
}

// InstanceDetail reads one instance of any producer.
func (c *Client) InstanceDetail(ctx context.Context, instanceID string) (*producers.InstanceDetail, error) {
	var out producers.InstanceDetail
	return &out, c.doJSON(ctx, http.MethodGet, "/admin/instances/"+seg(instanceID), nil, &out)
}

// Retry runs the failed latest operation of an instance (or of one of its
// bindings) again.
func (c *Client) Retry(ctx context.Context, instanceID, bindingID string) (*broker.Operation, error) {
	var out broker.Operation
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/instances/"+seg(instanceID)+"/retry", RepairRequest{BindingID: bindingID}, &out)
}

// ForceFail ends the operation in progress on an instance (or binding).
func (c *Client) ForceFail(ctx context.Context, instanceID, bindingID, reason string) (*broker.Operation, error) {
	var out broker.Operation
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/instances/"+seg(instanceID)+"/force-fail", RepairRequest{BindingID: bindingID, Reason: reason}, &out)
}

// Reconcile asks the instance's adapter whether the instance exists and
// corrects Agora's record when it disagrees.
func (c *Client) Reconcile(ctx context.Context, instanceID string) (*broker.Reconciliation, error) {
	var out broker.Reconciliation
	return &out, c.doJSON(ctx, http.MethodPost, "/admin/instances/"+seg(instanceID)+"/reconcile", nil, &out)
}

// Sweep reads (or, apply, repairs) one page of the orphan sweep, from
// "records" or "vault".
func (c *Client) Sweep(ctx context.Context, from, cursor string, limit int, apply bool) (*SweepPage, error) {
	method := http.MethodGet
	if apply {
		method = http.MethodPost
	}
	var out SweepPage
	return &out, c.doJSON(ctx, method, "/admin/orphans"+pageQuery(cursor, limit, url.Values{"from": {from}}), nil, &out)
}
