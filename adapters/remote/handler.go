package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// HandlerOptions configures Handler.
type HandlerOptions struct {
	// Name and Version describe the adapter in GET /v1/capabilities.
	Name, Version string
	// Secret is shared with Agora (its catalog entry's config.secret).
	Secret string
	// SkipSignature accepts unsigned requests. Set it only when the server
	// authenticates Agora by a client certificate (tls.Config with
	// ClientAuth: tls.RequireAndVerifyClientCert); anyone who can reach
	// the adapter could otherwise provision and bind.
	SkipSignature bool
	// Now is the clock for the timestamp and replay checks; default
	// time.Now.
	Now func() time.Time
	// Logger receives every failed call, with its request id; default
	// silent.
	Logger *slog.Logger
}

type handler struct {
	adapter  adapters.Adapter
	opts     HandlerOptions
	verifier *verifier
	mux      *http.ServeMux
	logger   *slog.Logger
}

// Handler serves adapter over protocol v1: it checks each request's
// signature, timestamp and nonce (rejecting replays), routes it to the
// adapter method, and maps the adapters sentinel errors to the protocol's
// status codes and error bodies. Capabilities follow the adapter's type:
// "update" when it is an adapters.Updater, "status" when an
// adapters.Poller.
//
// It panics when opts has no Secret and SkipSignature is not set: an
// adapter that accepts anyone's requests must be a deliberate choice,
// found at startup, not in production.
func Handler(adapter adapters.Adapter, opts HandlerOptions) http.Handler {
	if opts.Secret == "" && !opts.SkipSignature {
		panic(errNoSecret)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{adapter: adapter, opts: opts, verifier: newVerifier(opts.Secret, opts.Now), logger: logger}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/capabilities", h.capabilities)
	mux.HandleFunc("PUT /v1/instances/{instance_id}", h.provision)
	mux.HandleFunc("PATCH /v1/instances/{instance_id}", h.update)
	mux.HandleFunc("DELETE /v1/instances/{instance_id}", h.deprovision)
	mux.HandleFunc("PUT /v1/instances/{instance_id}/bindings/{binding_id}", h.bind)
	mux.HandleFunc("DELETE /v1/instances/{instance_id}/bindings/{binding_id}", h.unbind)
	mux.HandleFunc("GET /v1/instances/{instance_id}/operations/{operation}", h.status)
	mux.HandleFunc("GET /v1/instances/{instance_id}", h.inspect)
	// Anything else gets a protocol error body too, so Agora never has to
	// guess what a bare 404 or 405 means.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotImplemented, CodeNotSupported, fmt.Sprintf("%s %s is not part of protocol v1", r.Method, r.URL.Path))
	})
	h.mux = mux
	return h
}

// ServeHTTP authenticates before routing, so an unauthenticated caller
// learns nothing, not even which paths exist.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, CodeTerminal, fmt.Sprintf("reading the request: %v", err))
		return
	}
	if !h.opts.SkipSignature {
		if err := h.verifier.verify(r, body); err != nil {
			h.logger.WarnContext(r.Context(), "rejected a request", "method", r.Method, "path", r.URL.Path,
				"request_id", r.Header.Get(HeaderRequestID), "reason", err.Error())
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, err.Error())
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h.mux.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails; nobody to tell
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// fail answers with the protocol's status and code for err. The message
// is err's text, which Agora logs and may show to app developers: the
// kit's error-shapes check holds adapters to keeping secrets out of it.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := errorStatus(err)
	// A missing instance on a repeated DELETE is routine; a 5xx is not.
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelWarn
	}
	h.logger.Log(r.Context(), level, "adapter call failed", "method", r.Method, "path", r.URL.Path,
		"request_id", r.Header.Get(HeaderRequestID), "status", status, "error", err.Error())
	writeError(w, status, code, err.Error())
}

// decode reads the request body leniently: fields a newer Agora adds
// within v1 are ignored.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, CodeTerminal, fmt.Sprintf("the request body is not a protocol v1 request: %v", err))
		return false
	}
	return true
}

// pendingStatus tells a human reading a trace that work goes on; Agora
// itself reads the pending field.
func pendingStatus(pending bool) int {
	if pending {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// orNil gives the adapter nil for "no parameters", as Agora does in
// process.
func orNil(p map[string]any) map[string]any {
	if len(p) == 0 {
		return nil
	}
	return p
}

func (h *handler) capabilities(w http.ResponseWriter, _ *http.Request) {
	caps := []string{}
	if _, ok := h.adapter.(adapters.Updater); ok {
		caps = append(caps, CapabilityUpdate)
	}
	if _, ok := h.adapter.(adapters.Poller); ok {
		caps = append(caps, CapabilityStatus)
	}
	if _, ok := h.adapter.(adapters.Inspector); ok {
		caps = append(caps, CapabilityInspect)
	}
	writeJSON(w, http.StatusOK, capabilitiesResult{Protocol: ProtocolVersion, Minor: ProtocolMinor, Name: h.opts.Name, Version: h.opts.Version, Capabilities: caps})
}

func toInstanceResult(r adapters.ProvisionResult) instanceResult {
	return instanceResult{DashboardURL: r.DashboardURL, Metadata: r.Metadata, Receipt: r.Receipt, Pending: r.Pending, Operation: r.OperationToken}
}

func toBindResult(r adapters.BindResult) bindResult {
	return bindResult{Credentials: r.Credentials, Endpoints: r.Endpoints, SyslogDrainURL: r.SyslogDrainURL,
		RouteServiceURL: r.RouteServiceURL, Receipt: r.Receipt, Pending: r.Pending, Operation: r.OperationToken,
		ExpiresAt: wireTime(r.ExpiresAt), RenewBefore: wireTime(r.RenewBefore)}
}

func (h *handler) provision(w http.ResponseWriter, r *http.Request) {
	var b provisionBody
	if !decode(w, r, &b) {
		return
	}
	res, err := h.adapter.Provision(r.Context(), adapters.ProvisionRequest{
		InstanceID: r.PathValue("instance_id"), Offering: b.Offering, Plan: b.Plan.plan(),
		Parameters: orNil(b.Parameters), Origin: b.Origin.origin(), Maintenance: b.Maintenance.maintenance(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, pendingStatus(res.Pending), toInstanceResult(res))
}

func (h *handler) update(w http.ResponseWriter, r *http.Request) {
	updater, ok := h.adapter.(adapters.Updater)
	if !ok {
		writeError(w, http.StatusNotImplemented, CodeNotSupported, "this adapter does not update instances")
		return
	}
	var b updateBody
	if !decode(w, r, &b) {
		return
	}
	res, err := updater.Update(r.Context(), adapters.UpdateRequest{
		InstanceID: r.PathValue("instance_id"), Offering: b.Offering, Plan: b.Plan.plan(), PreviousPlan: b.PreviousPlan.plan(),
		Parameters: orNil(b.Parameters), Receipt: b.Receipt, Origin: b.Origin.origin(), Maintenance: b.Maintenance.maintenance(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, pendingStatus(res.Pending), instanceResult{DashboardURL: res.DashboardURL, Metadata: res.Metadata,
		Receipt: res.Receipt, Pending: res.Pending, Operation: res.OperationToken})
}

func (h *handler) deprovision(w http.ResponseWriter, r *http.Request) {
	var b deprovisionBody
	if !decode(w, r, &b) {
		return
	}
	res, err := h.adapter.Deprovision(r.Context(), adapters.DeprovisionRequest{
		InstanceID: r.PathValue("instance_id"), Offering: b.Offering, Plan: b.Plan.plan(), Receipt: b.Receipt, Origin: b.Origin.origin(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, pendingStatus(res.Pending), deleteResult{Pending: res.Pending, Operation: res.OperationToken})
}

func (h *handler) bind(w http.ResponseWriter, r *http.Request) {
	var b bindBody
	if !decode(w, r, &b) {
		return
	}
	res, err := h.adapter.Bind(r.Context(), adapters.BindRequest{
		InstanceID: r.PathValue("instance_id"), BindingID: r.PathValue("binding_id"), Offering: b.Offering, Plan: b.Plan.plan(),
		AppGUID: b.AppGUID, Parameters: orNil(b.Parameters), InstanceReceipt: b.InstanceReceipt, Origin: b.Origin.origin(),
		Predecessor: b.Predecessor.predecessor(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, pendingStatus(res.Pending), toBindResult(res))
}

func (h *handler) unbind(w http.ResponseWriter, r *http.Request) {
	var b unbindBody
	if !decode(w, r, &b) {
		return
	}
	res, err := h.adapter.Unbind(r.Context(), adapters.UnbindRequest{
		InstanceID: r.PathValue("instance_id"), BindingID: r.PathValue("binding_id"), Offering: b.Offering, Plan: b.Plan.plan(),
		InstanceReceipt: b.InstanceReceipt, Receipt: b.Receipt, Origin: b.Origin.origin(),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, pendingStatus(res.Pending), deleteResult{Pending: res.Pending, Operation: res.OperationToken})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	poller, ok := h.adapter.(adapters.Poller)
	if !ok {
		writeError(w, http.StatusNotImplemented, CodeNotSupported, "this adapter has no pending operations to report")
		return
	}
	q := r.URL.Query()
	kind := adapters.OperationKind(q.Get("kind"))
	switch kind {
	case adapters.OpProvision, adapters.OpUpdate, adapters.OpDeprovision, adapters.OpBind, adapters.OpUnbind:
	default:
		writeError(w, http.StatusBadRequest, CodeTerminal, fmt.Sprintf("kind %q is not provision, update, deprovision, bind or unbind", kind))
		return
	}
	res, err := poller.Poll(r.Context(), adapters.PollRequest{
		Kind: kind, InstanceID: r.PathValue("instance_id"), BindingID: q.Get("binding_id"), Offering: q.Get("offering"),
		Plan: adapters.Plan{ID: q.Get("plan_id"), Name: q.Get("plan_name")}, Token: r.PathValue("operation"),
		Origin: adapters.Origin{RequestID: r.Header.Get(HeaderRequestID)},
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := statusResult{State: res.State, Description: res.Description}
	if res.Instance != nil {
		ir := toInstanceResult(*res.Instance)
		out.Instance = &ir
	}
	if res.Bind != nil {
		br := toBindResult(*res.Bind)
		out.Bind = &br
	}
	writeJSON(w, http.StatusOK, out)
}
