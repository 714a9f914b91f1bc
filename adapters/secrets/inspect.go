package secrets

import (
	"context"

	"github.com/agora-osb/agora/adapters"
)

// Inspect implements adapters.Inspector: the instance exists while its
// policy does (Provision writes it; Deprovision deletes it last but one).
// Its secrets are the app's data, so an empty folder is still an instance.
func (a *Adapter) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	sp := a.spaceFromReceipt(req.InstanceID, req.Receipt)
	rules, err := a.client.Sys().GetPolicyWithContext(ctx, sp.policy)
	if err != nil && !isNotFound(err) {
		return adapters.InspectResult{}, a.vaultError("read policy "+sp.policy, err)
	}
	if rules == "" {
		return adapters.InspectResult{Detail: "policy " + sp.policy + " missing"}, nil
	}
	receipt := sp.receipt()
	if req.Receipt[receiptRecords] != "" {
		// Only Provision may promise that every binding is recorded.
		receipt = withRecords(receipt)
	}
	return adapters.InspectResult{
		Exists:   true,
		Detail:   "policy " + sp.policy + " exists, secrets at " + sp.kvMount + "/" + sp.path,
		Receipt:  receipt,
		Metadata: adapters.Metadata{Attributes: map[string]any{"kv_mount": sp.kvMount, "path": sp.path}},
	}, nil
}

var _ adapters.Inspector = (*Adapter)(nil)
