package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// ProtocolVersion is what an adapter must answer in GET /v1/capabilities.
// Additions that old adapters can ignore (new optional fields, new
// capabilities) keep it and raise ProtocolMinor; anything else is v2
// under a new path prefix.
const ProtocolVersion = "agora.adapter/v1"

// ProtocolMinor is the minor version of v1 this Agora speaks, answered
// beside the protocol as "minor" (absent means 0). A minor adds optional
// fields only, so any minor of v1 works with any other: the number tells
// a producer which fields she may rely on (docs/adapter-protocol.md,
// Versioning). 1 added maintenance_info to provision and update.
const ProtocolMinor = 1

// The capabilities an adapter may declare. Unknown ones are ignored, so a
// newer adapter works with an older Agora.
const (
	CapabilityUpdate  = "update"  // PATCH /v1/instances/{id}
	CapabilityStatus  = "status"  // GET /v1/instances/{id}/operations/{operation}
	CapabilityInspect = "inspect" // GET /v1/instances/{id}
)

// knownCapabilities are the capabilities this Agora can use, in the order
// errors and filled-in configs list them. A function, not a variable, so
// no caller can change the list for everyone.
func knownCapabilities() []string {
	return []string{CapabilityUpdate, CapabilityStatus, CapabilityInspect}
}

// The headers every request carries.
const (
	HeaderRequestID = "X-Agora-Request-Id"
	HeaderTimestamp = "X-Agora-Timestamp"
	HeaderNonce     = "X-Agora-Nonce"
	HeaderSignature = "X-Agora-Signature"
)

// The error codes of an error body {"error": code, "message": ...}.
const (
	CodeNotFound          = "not_found"
	CodeAlreadyExists     = "already_exists"
	CodeInvalidParameters = "invalid_parameters"
	CodeNotSupported      = "not_supported"
	CodeTerminal          = "terminal"
	CodeUnauthorized      = "unauthorized"
	CodeInternal          = "internal"
)

// maxBody bounds what either side reads: requests and results are small
// JSON documents, and an unbounded read lets a broken peer exhaust memory.
const maxBody = 1 << 20

// maxMessage bounds the adapter's error text that reaches Agora's errors
// and logs.
const maxMessage = 1024

// Sentinel errors of the client, beside the adapters sentinels it maps
// error codes to.
var (
	// ErrProtocolMismatch: the adapter speaks another protocol version, or
	// its URL does not serve the protocol at all. Always terminal.
	ErrProtocolMismatch = errors.New("protocol mismatch")
	// ErrUnauthorized: the adapter rejected Agora's signature or client
	// certificate: the shared secret, the certificates or a clock differ.
	ErrUnauthorized = errors.New("rejected by the adapter as unauthorized")
	// ErrUnavailable: the circuit breaker is open; calls fail fast until
	// the adapter answers again.
	ErrUnavailable = errors.New("unavailable")
	// ErrCapabilityMismatch: the offering's config.capabilities lists a
	// capability the adapter does not declare at GET /v1/capabilities.
	// Always terminal: the config or the adapter's release must change.
	ErrCapabilityMismatch = errors.New("capability not declared by the adapter")
)

// wirePlan and the other wire* types are the JSON shapes of protocol v1.
// Both sides ignore unknown fields, so fields can be added within v1.
type wirePlan struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type wireOrigin struct {
	RequestID string          `json:"request_id,omitempty"`
	Platform  string          `json:"platform,omitempty"`
	Context   json.RawMessage `json:"context,omitempty"`
}

type provisionBody struct {
	Offering   string         `json:"offering"`
	Plan       wirePlan       `json:"plan"`
	Parameters map[string]any `json:"parameters"`
	Origin     wireOrigin     `json:"origin"`
	// Maintenance is added in v1.1; absent for plans without
	// maintenance_info.
	Maintenance *wireMaintenance `json:"maintenance_info,omitempty"`
}

// wireMaintenance carries adapters.Maintenance (v1.1): the version an
// instance runs (current, absent on provision) and the one it must run
// after the call (requested).
type wireMaintenance struct {
	Current   *wireMaintenanceInfo `json:"current,omitempty"`
	Requested *wireMaintenanceInfo `json:"requested,omitempty"`
}

type wireMaintenanceInfo struct {
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

type updateBody struct {
	Offering     string           `json:"offering"`
	Plan         wirePlan         `json:"plan"`
	PreviousPlan wirePlan         `json:"previous_plan"`
	Parameters   map[string]any   `json:"parameters"`
	Receipt      adapters.Receipt `json:"receipt,omitempty"`
	Origin       wireOrigin       `json:"origin"`
	// Maintenance is added in v1.1, as in provisionBody.
	Maintenance *wireMaintenance `json:"maintenance_info,omitempty"`
}

type deprovisionBody struct {
	Offering string           `json:"offering"`
	Plan     wirePlan         `json:"plan"`
	Receipt  adapters.Receipt `json:"receipt,omitempty"`
	Origin   wireOrigin       `json:"origin"`
}

type bindBody struct {
	Offering        string           `json:"offering"`
	Plan            wirePlan         `json:"plan"`
	AppGUID         string           `json:"app_guid,omitempty"`
	Parameters      map[string]any   `json:"parameters"`
	InstanceReceipt adapters.Receipt `json:"instance_receipt,omitempty"`
	Origin          wireOrigin       `json:"origin"`
	// Predecessor is set on a binding rotation only (added within v1: an
	// adapter that ignores it issues fresh credentials, which is correct).
	Predecessor *wirePredecessor `json:"predecessor,omitempty"`
}

type wirePredecessor struct {
	BindingID string           `json:"binding_id"`
	Receipt   adapters.Receipt `json:"receipt,omitempty"`
}

type unbindBody struct {
	Offering        string           `json:"offering"`
	Plan            wirePlan         `json:"plan"`
	InstanceReceipt adapters.Receipt `json:"instance_receipt,omitempty"`
	Receipt         adapters.Receipt `json:"receipt,omitempty"`
	Origin          wireOrigin       `json:"origin"`
}

type instanceResult struct {
	DashboardURL string            `json:"dashboard_url,omitempty"`
	Metadata     adapters.Metadata `json:"metadata"`
	Receipt      adapters.Receipt  `json:"receipt,omitempty"`
	Pending      bool              `json:"pending"`
	Operation    string            `json:"operation,omitempty"`
}

type bindResult struct {
	Credentials     map[string]any      `json:"credentials,omitempty"`
	Endpoints       []adapters.Endpoint `json:"endpoints,omitempty"`
	SyslogDrainURL  string              `json:"syslog_drain_url,omitempty"`
	RouteServiceURL string              `json:"route_service_url,omitempty"`
	Receipt         adapters.Receipt    `json:"receipt,omitempty"`
	Pending         bool                `json:"pending"`
	Operation       string              `json:"operation,omitempty"`
	// ExpiresAt and RenewBefore are OSB binding metadata (added within
	// v1): RFC 3339 times in UTC with a literal "Z", or absent.
	ExpiresAt   string `json:"expires_at,omitempty"`
	RenewBefore string `json:"renew_before,omitempty"`
}

type deleteResult struct {
	Pending   bool   `json:"pending"`
	Operation string `json:"operation,omitempty"`
}

type statusResult struct {
	State       adapters.PollState `json:"state"`
	Description string             `json:"description,omitempty"`
	Instance    *instanceResult    `json:"instance,omitempty"`
	Bind        *bindResult        `json:"bind,omitempty"`
}

// inspectResult answers GET /v1/instances/{id} (capability "inspect").
type inspectResult struct {
	Exists       bool              `json:"exists"`
	DashboardURL string            `json:"dashboard_url,omitempty"`
	Metadata     adapters.Metadata `json:"metadata"`
	Receipt      adapters.Receipt  `json:"receipt,omitempty"`
	Detail       string            `json:"detail,omitempty"`
}

type capabilitiesResult struct {
	Protocol string `json:"protocol"`
	// Minor is the minor version of Protocol (absent: 0).
	Minor        int      `json:"minor,omitempty"`
	Name         string   `json:"name"`
	Version      string   `json:"version"`
	Capabilities []string `json:"capabilities"`
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func toWirePlan(p adapters.Plan) wirePlan { return wirePlan{ID: p.ID, Name: p.Name} }

func (p wirePlan) plan() adapters.Plan { return adapters.Plan{ID: p.ID, Name: p.Name} }

func toWireMaintenance(m adapters.Maintenance) *wireMaintenance {
	info := func(i adapters.MaintenanceInfo) *wireMaintenanceInfo {
		if i.Version == "" {
			return nil
		}
		return &wireMaintenanceInfo{Version: i.Version, Description: i.Description}
	}
	w := &wireMaintenance{Current: info(m.Current), Requested: info(m.Requested)}
	if w.Current == nil && w.Requested == nil {
		return nil
	}
	return w
}

func (w *wireMaintenance) maintenance() adapters.Maintenance {
	var m adapters.Maintenance
	if w == nil {
		return m
	}
	if w.Current != nil {
		m.Current = adapters.MaintenanceInfo{Version: w.Current.Version, Description: w.Current.Description}
	}
	if w.Requested != nil {
		m.Requested = adapters.MaintenanceInfo{Version: w.Requested.Version, Description: w.Requested.Description}
	}
	return m
}

func toWirePredecessor(p *adapters.Predecessor) *wirePredecessor {
	if p == nil {
		return nil
	}
	return &wirePredecessor{BindingID: p.BindingID, Receipt: p.Receipt}
}

func (p *wirePredecessor) predecessor() *adapters.Predecessor {
	if p == nil {
		return nil
	}
	return &adapters.Predecessor{BindingID: p.BindingID, Receipt: p.Receipt}
}

// wireTime writes a binding time the way the protocol carries it: RFC
// 3339 in UTC, so with a literal "Z"; "" for none.
func wireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// parseWireTime reads a binding time: RFC 3339 with a literal "Z" (UTC),
// which is what OSB's binding metadata needs; an offset is refused rather
// than converted, so an adapter's clock mistake shows instead of passing.
func parseWireTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time in UTC with a literal Z (such as 2030-01-02T15:04:05Z)", field, s)
	}
	return t, nil
}

func toWireOrigin(o adapters.Origin) wireOrigin {
	return wireOrigin{RequestID: o.RequestID, Platform: o.Platform, Context: o.Context}
}

func (o wireOrigin) origin() adapters.Origin {
	return adapters.Origin{RequestID: o.RequestID, Platform: o.Platform, Context: o.Context}
}

// errorStatus is the one place where the Handler turns an adapter's error
// into a status and code; codeError below is its inverse on the client.
// The sentinels come before TerminalError, since a terminal error may wrap
// one and the sentinel says more.
func errorStatus(err error) (int, string) {
	var terminal *adapters.TerminalError
	switch {
	case errors.Is(err, adapters.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, adapters.ErrAlreadyExists):
		return http.StatusConflict, CodeAlreadyExists
	case errors.Is(err, adapters.ErrInvalidParameters):
		return http.StatusBadRequest, CodeInvalidParameters
	case errors.Is(err, adapters.ErrNotSupported):
		return http.StatusNotImplemented, CodeNotSupported
	case errors.As(err, &terminal):
		return http.StatusUnprocessableEntity, CodeTerminal
	}
	return http.StatusInternalServerError, CodeInternal
}

// codeError maps an error body's code to the adapters sentinel it stands
// for, and whether the failure is terminal. The code decides, not the
// status: a 404 from a proxy in front of a wrong URL must not read as
// "already gone", which would make every Deprovision succeed while nothing
// is removed. Internal and unknown codes give (false, nil): the status
// decides whether to retry.
func codeError(code string) (terminal bool, sentinel error) {
	switch code {
	case CodeNotFound:
		return false, adapters.ErrNotFound
	case CodeAlreadyExists:
		return false, adapters.ErrAlreadyExists
	case CodeInvalidParameters:
		return false, adapters.ErrInvalidParameters
	case CodeNotSupported:
		return false, adapters.ErrNotSupported
	case CodeUnauthorized:
		return true, ErrUnauthorized
	case CodeTerminal:
		return true, nil
	}
	return false, nil
}

// retryableStatus: the adapter (or a proxy in front of it) is overloaded
// or failing for now; the same request may succeed later.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500 && status != http.StatusNotImplemented
}

// truncate keeps an adapter's message to a size fit for a log line.
func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	// ToValidUTF8 drops a rune the cut split in two.
	return strings.ToValidUTF8(s[:maxMessage], "") + fmt.Sprintf("... (%d more bytes)", len(s)-maxMessage)
}
