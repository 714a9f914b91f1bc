package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// GetInstance implements domain.ServiceBroker (GET /v2/service_instances/:id).
func (b *Broker) GetInstance(ctx context.Context, instanceID string, _ domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	spec, err := b.getInstance(ctx, instanceID)
	return spec, b.fail(ctx, "get-instance", err)
}

func (b *Broker) getInstance(ctx context.Context, instanceID string) (domain.GetInstanceDetailsSpec, error) {
	snap, err := b.state.Load(ctx, LoadRequest{InstanceID: instanceID})
	if err != nil {
		return domain.GetInstanceDetailsSpec{}, stateErr(err)
	}
	inst := snap.Instance
	switch {
	case inst == nil || inst.State == InstanceProvisioning || inst.State == InstanceFailed:
		return domain.GetInstanceDetailsSpec{}, notFound("service instance %q does not exist or is not provisioned yet", instanceID)
	case inst.State == InstanceUpdating && inst.LastOp.Active(b.now()):
		return domain.GetInstanceDetailsSpec{}, concurrency("service instance %q is being updated", instanceID)
	}
	cat := b.catalog.Load()
	if off, ok := cat.Offering(inst.ServiceID); ok && !off.InstancesRetrievable {
		return domain.GetInstanceDetailsSpec{}, badRequest("service %q does not allow fetching instances", off.Name)
	}
	// Platforms compare these with their own on every reconcile
	// (provider-osb PATCHes while they differ), so {} is sent for none.
	_, plan, _ := cat.Plan(inst.ServiceID, inst.PlanID)
	params, err := b.shownParameters(ctx, plan, inst.ParametersRef)
	if err != nil {
		return domain.GetInstanceDetailsSpec{}, err
	}
	spec := domain.GetInstanceDetailsSpec{
		ServiceID: inst.ServiceID, PlanID: inst.PlanID, DashboardURL: inst.DashboardURL,
		Metadata: domain.InstanceMetadata(inst.Metadata),
	}
	if params != nil {
		spec.Parameters = params
	}
	if inst.MaintenanceInfo != "" {
		// brokerapi's spec has no field for it: the edge adds it.
		requestinfo.From(ctx).SetReplyField("maintenance_info", instanceMaintenance(plan, inst.MaintenanceInfo))
	}
	return spec, nil
}

// instanceMaintenance is the maintenance_info GET instance reports: the
// version the instance runs, with the catalog's description while the
// plan still publishes that version.
func instanceMaintenance(plan *catalog.Plan, version string) domain.MaintenanceInfo {
	mi := domain.MaintenanceInfo{Version: version}
	if plan != nil && plan.MaintenanceInfo != nil && plan.MaintenanceInfo.Version == version {
		mi.Description = plan.MaintenanceInfo.Description
	}
	return mi
}

// GetBinding implements domain.ServiceBroker
// (GET /v2/service_instances/:id/service_bindings/:binding_id).
func (b *Broker) GetBinding(ctx context.Context, instanceID, bindingID string, _ domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	spec, err := b.getBinding(ctx, instanceID, bindingID)
	return spec, b.fail(ctx, "get-binding", err)
}

func (b *Broker) getBinding(ctx context.Context, instanceID, bindingID string) (domain.GetBindingSpec, error) {
	snap, err := b.state.Load(ctx, LoadRequest{InstanceID: instanceID, BindingID: bindingID})
	if err != nil {
		return domain.GetBindingSpec{}, stateErr(err)
	}
	bnd := snap.Binding
	if snap.Instance == nil || bnd == nil || bnd.State != BindingBound {
		return domain.GetBindingSpec{}, notFound("service binding %q does not exist or is not bound yet", bindingID)
	}
	cat := b.catalog.Load()
	off, ok := cat.Offering(snap.Instance.ServiceID)
	if !ok {
		off = placeholderOffering(snap.Instance.ServiceID)
	} else if !off.BindingsRetrievable {
		return domain.GetBindingSpec{}, badRequest("service %q does not allow fetching bindings", off.Name)
	}
	_, plan, _ := cat.Plan(snap.Instance.ServiceID, bnd.PlanID)
	creds, err := b.creds.GetBinding(ctx, bnd.CredentialRef)
	if err != nil {
		return domain.GetBindingSpec{}, credErr(err)
	}
	params, err := b.shownParameters(ctx, plan, bnd.ParametersRef)
	if err != nil {
		return domain.GetBindingSpec{}, err
	}
	spec := bindingSpec(off, bnd, creds)
	out := domain.GetBindingSpec{
		Credentials: spec.Credentials, SyslogDrainURL: spec.SyslogDrainURL, RouteServiceURL: spec.RouteServiceURL,
		Endpoints: spec.Endpoints, Metadata: spec.Metadata,
	}
	if params != nil {
		out.Parameters = params
	}
	return out, nil
}

// LastOperation implements domain.ServiceBroker
// (GET /v2/service_instances/:id/last_operation).
func (b *Broker) LastOperation(ctx context.Context, instanceID string, details domain.PollDetails) (domain.LastOperation, error) {
	op, err := b.lastOperation(ctx, instanceID, "", details.OperationData)
	return op, b.fail(ctx, "last-operation", err)
}

// LastOperationAnswer is LastOperation with the answer already encoded
// (httpapi.PollAnswerer): the common poll, for the instance's latest
// operation, returns the body stored with the operation's state, with
// neither a decode nor an encode. Its errors are LastOperation's.
func (b *Broker) LastOperationAnswer(ctx context.Context, instanceID, operationID string) ([]byte, error) {
	st, err := b.state.Status(ctx, instanceID)
	if a := b.storedAnswer(st, err, operationID); a != nil {
		if st.Deleted {
			return nil, b.fail(ctx, "last-operation", apiresponses.ErrInstanceDoesNotExist)
		}
		return a.Body, nil
	}
	op, err := b.pollRecords(ctx, instanceID, "", operationID, &st, err)
	if err != nil {
		return nil, b.fail(ctx, "last-operation", err)
	}
	return EncodeLastOperation(op), nil
}

// LastBindingOperation implements domain.ServiceBroker
// (GET /v2/service_instances/:id/service_bindings/:binding_id/last_operation).
func (b *Broker) LastBindingOperation(ctx context.Context, instanceID, bindingID string, details domain.PollDetails) (domain.LastOperation, error) {
	op, err := b.lastOperation(ctx, instanceID, bindingID, details.OperationData)
	return op, b.fail(ctx, "last-binding-operation", err)
}

func (b *Broker) lastOperation(ctx context.Context, instanceID, bindingID, operationID string) (domain.LastOperation, error) {
	if bindingID != "" {
		return b.pollRecords(ctx, instanceID, bindingID, operationID, nil, nil)
	}
	// The common poll, for the instance's latest operation, reads one
	// small key; anything else falls through to the full read.
	st, err := b.state.Status(ctx, instanceID)
	if a := b.storedAnswer(st, err, operationID); a != nil {
		if st.Deleted {
			return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
		}
		var lo apiresponses.LastOperationResponse
		if json.Unmarshal(a.Body, &lo) == nil {
			return domain.LastOperation{State: lo.State, Description: lo.Description}, nil
		}
	}
	return b.pollRecords(ctx, instanceID, "", operationID, &st, err)
}

// storedAnswer is the status's ready-made answer when it answers this
// poll: it is for the asked-for operation and not overdue.
func (b *Broker) storedAnswer(st InstanceStatus, err error, operationID string) *PollAnswer {
	a := st.Answer
	if err != nil || a == nil || (operationID != "" && operationID != a.OperationID) || !a.Holds(b.now()) {
		return nil
	}
	return a
}

// pollRecords answers a poll from the instance's status (st and statusErr
// as Status returned them; nil for a binding's poll) or, when that does
// not decide it, from the full records.
func (b *Broker) pollRecords(ctx context.Context, instanceID, bindingID, operationID string, st *InstanceStatus, statusErr error) (domain.LastOperation, error) {
	if st != nil {
		switch {
		case statusErr != nil && !errors.Is(statusErr, ErrNotFound):
			return domain.LastOperation{}, stateErr(statusErr)
		case statusErr == nil && st.Operation != nil && (operationID == "" || operationID == st.Operation.ID):
			if st.Deleted {
				return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
			}
			return b.report(st.Operation), nil
		}
	}
	snap, err := b.state.Load(ctx, LoadRequest{InstanceID: instanceID, BindingID: bindingID, OperationID: operationID, OperationUnlessLatest: true})
	if err != nil {
		return domain.LastOperation{}, stateErr(err)
	}
	var summary *OperationSummary
	switch {
	case bindingID == "" && snap.Instance == nil:
		if snap.Tombstone != "" && (operationID == "" || operationID == snap.Tombstone) {
			// The async delete finished: 410 tells the platform to forget it.
			return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
		}
		return domain.LastOperation{}, notFound("service instance %q does not exist", instanceID)
	case bindingID == "":
		summary = snap.Instance.LastOp
	case snap.Binding == nil:
		if snap.BindingTombstone != "" && (operationID == "" || operationID == snap.BindingTombstone) {
			return domain.LastOperation{}, apiresponses.ErrBindingDoesNotExist
		}
		return domain.LastOperation{}, notFound("service binding %q does not exist", bindingID)
	default:
		summary = snap.Binding.LastOp
	}
	if operationID != "" && (summary == nil || summary.ID != operationID) {
		if snap.Operation == nil {
			return domain.LastOperation{}, badRequest("operation %s is not known for this resource", requestinfo.Quote(operationID))
		}
		summary = snap.Operation.Summary()
	}
	if summary == nil {
		return domain.LastOperation{}, notFound("no operation recorded")
	}
	return b.report(summary), nil
}

// overdueGrace is how long past its deadline an operation may still show
// "in progress" before last_operation calls it failed, giving the worker
// that enforces the deadline time to record it properly.
const overdueGrace = 2 * time.Minute

// report turns a summary into the OSB answer. An operation whose deadline
// has long passed is reported failed even if no worker recorded it (every
// replica down, say), so nothing polls "in progress" forever.
func (b *Broker) report(s *OperationSummary) domain.LastOperation {
	return reportAt(s, b.now())
}

func reportAt(s *OperationSummary, now time.Time) domain.LastOperation {
	state := domain.LastOperationState(s.State)
	desc := s.Description
	if s.State == OpInProgress {
		desc = fmt.Sprintf("%s in progress", s.Kind)
		if now.After(s.Deadline.Add(overdueGrace)) {
			state = domain.Failed
			desc = fmt.Sprintf("%s did not finish by its deadline (%s); retry the request", s.Kind, s.Deadline.UTC().Format(time.RFC3339))
		}
	}
	return domain.LastOperation{State: state, Description: desc}
}

// NewPollAnswer is the answer a poll for s gets until s changes: the
// store keeps it beside the status, so polls need not build it. An
// operation in progress gets its answer until it is overdue, when
// report's verdict takes over.
func NewPollAnswer(s *OperationSummary) *PollAnswer {
	a := &PollAnswer{OperationID: s.ID, Body: EncodeLastOperation(reportAt(s, time.Time{}))}
	if s.State == OpInProgress {
		a.Until = s.Deadline.Add(overdueGrace)
	}
	return a
}

// EncodeLastOperation encodes a last_operation answer byte for byte as
// brokerapi's handler does (no HTML escaping, a trailing newline), so
// the fast path and brokerapi's answer alike.
func EncodeLastOperation(lo domain.LastOperation) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// A struct of two strings cannot fail to encode.
	_ = enc.Encode(apiresponses.LastOperationResponse{State: lo.State, Description: lo.Description})
	return buf.Bytes()
}
