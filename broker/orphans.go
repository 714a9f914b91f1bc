package broker

import (
	"context"
	"errors"
	"fmt"
)

// SecretInventory is an optional capability of a CredentialStore: it can
// say what it holds, for the orphan sweep (vaultstore.Store implements
// it). It lists, so no request path may use it.
type SecretInventory interface {
	// InstanceFolders lists the instances that have secrets.
	InstanceFolders(ctx context.Context) ([]string, error)
	// InstanceSecrets lists what one instance has in the store.
	InstanceSecrets(ctx context.Context, instanceID string) (InstanceSecrets, error)
	// Exists reports whether the secret at ref exists.
	Exists(ctx context.Context, ref string) (bool, error)
}

// InstanceSecrets is what the credential store holds for one instance:
// IDs and the references of their secrets.
type InstanceSecrets struct {
	// Bindings: binding ID → its credentials.
	Bindings map[string]string
	// Operations: operation ID → the request parameters it keeps for
	// async work or a retry.
	Operations map[string]string
	// Parameters: operation ID → the parameters an instance or binding
	// has had since that operation succeeded (CredentialStore.
	// PutCurrentParameters).
	Parameters map[string]string
}

// Orphan kinds.
const (
	// OrphanSecret: credentials or parameters in Vault that no record
	// points to.
	OrphanSecret = "secret_without_record"
	// OrphanRecord: a bound binding whose credentials are gone from Vault.
	OrphanRecord = "record_without_secret"
)

// Orphan is one finding of the sweep.
type Orphan struct {
	Kind       string `json:"kind"`
	InstanceID string `json:"instance_id"`
	BindingID  string `json:"binding_id,omitempty"`
	// Ref is the Vault reference (for a secret without record).
	Ref string `json:"ref,omitempty"`
	// Fixed says the finding was repaired (apply): the secret deleted, or
	// the binding marked failed so that the platform's unbind cleans up.
	Fixed bool `json:"fixed"`
}

// ErrNoInventory: the credential store cannot list what it holds.
var ErrNoInventory = errors.New("the credential store cannot list its secrets")

// SecretFolders lists the instances that have secrets in Vault, for a
// sweep from that side.
func (b *Broker) SecretFolders(ctx context.Context) ([]string, error) {
	inv, ok := b.creds.(SecretInventory)
	if !ok {
		return nil, ErrNoInventory
	}
	ids, err := inv.InstanceFolders(ctx)
	return ids, credErr(err)
}

// Sweep looks for orphans of the given instances, both ways: Vault
// secrets that no record points to, and bound bindings whose credentials
// are gone from Vault. With apply it repairs what it found: an orphaned
// secret is deleted (nothing can use it), and a binding without its
// credentials is marked failed, so that the platform's unbind revokes
// what the adapter issued and removes the record. Instances locked by a
// running request are skipped this time.
func (b *Broker) Sweep(ctx context.Context, instanceIDs []string, apply bool) ([]Orphan, error) {
	return b.sweep(ctx, instanceIDs, apply, false)
}

// SweepFolders is Sweep for folders of secrets listed in Vault: it
// skips those whose instance has a record, which Sweep from the records
// covers, so that no finding is reported twice.
func (b *Broker) SweepFolders(ctx context.Context, instanceIDs []string, apply bool) ([]Orphan, error) {
	return b.sweep(ctx, instanceIDs, apply, true)
}

func (b *Broker) sweep(ctx context.Context, instanceIDs []string, apply, unrecordedOnly bool) ([]Orphan, error) {
	inv, ok := b.creds.(SecretInventory)
	if !ok {
		return nil, ErrNoInventory
	}
	var found []Orphan
	for _, iid := range instanceIDs {
		orphans, err := b.sweepInstance(ctx, inv, iid, apply, unrecordedOnly)
		if err != nil {
			return found, err
		}
		found = append(found, orphans...)
	}
	return found, nil
}

func (b *Broker) sweepInstance(ctx context.Context, inv SecretInventory, iid string, apply, unrecordedOnly bool) ([]Orphan, error) {
	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: iid, AllBindings: true})
	if errors.Is(err, ErrLocked) {
		return nil, nil // busy: the next sweep sees it
	}
	if err != nil {
		return nil, stateErr(err)
	}
	defer b.release(ctx, lock)
	if unrecordedOnly && snap.Instance != nil {
		return nil, nil
	}
	held, err := inv.InstanceSecrets(ctx, iid)
	if err != nil {
		return nil, credErr(err)
	}
	var found []Orphan
	secret := func(bid, ref string) error {
		o := Orphan{Kind: OrphanSecret, InstanceID: iid, BindingID: bid, Ref: ref}
		if apply {
			if err := b.creds.Delete(ctx, ref); err != nil {
				return credErr(err)
			}
			o.Fixed = true
		}
		found = append(found, o)
		return nil
	}
	bindings := map[string]*Binding{}
	for _, bnd := range snap.Bindings {
		bindings[bnd.ID] = bnd
	}
	for bid, ref := range held.Bindings {
		if bnd, ok := bindings[bid]; !ok || (bnd.CredentialRef != ref && bnd.State != BindingCreating) {
			if err := secret(bid, ref); err != nil {
				return found, err
			}
		}
	}
	for opID, ref := range held.Operations {
		kept, err := b.state.Load(ctx, LoadRequest{InstanceID: iid, OperationID: opID})
		if err != nil {
			return found, stateErr(err)
		}
		if kept.Operation == nil || kept.Operation.ID != opID {
			if err := secret("", ref); err != nil {
				return found, err
			}
		}
	}
	// Parameters in force are the ones a record points to. Async work
	// writes its outcome's before committing it, without the instance
	// lock, so those of an operation still in progress are not orphans.
	inForce := map[string]bool{}
	if snap.Instance != nil {
		inForce[snap.Instance.ParametersRef] = true
	}
	for _, bnd := range snap.Bindings {
		inForce[bnd.ParametersRef] = true
	}
	for opID, ref := range held.Parameters {
		if inForce[ref] {
			continue
		}
		running, err := b.state.Load(ctx, LoadRequest{InstanceID: iid, OperationID: opID})
		if err != nil {
			return found, stateErr(err)
		}
		if op := running.Operation; op != nil && op.ID == opID && op.State == OpInProgress {
			continue
		}
		if err := secret("", ref); err != nil {
			return found, err
		}
	}
	for _, bnd := range snap.Bindings {
		if bnd.State != BindingBound || bnd.CredentialRef == "" {
			continue
		}
		there, err := inv.Exists(ctx, bnd.CredentialRef)
		if err != nil {
			return found, credErr(err)
		}
		if there {
			continue
		}
		o := Orphan{Kind: OrphanRecord, InstanceID: iid, BindingID: bnd.ID}
		if apply {
			lost := *bnd
			lost.State = BindingFailed
			lost.UpdatedAt = b.now()
			if lost.LastOp != nil {
				summary := *lost.LastOp
				summary.State = OpFailed
				summary.Description = fmt.Sprintf("the credentials of binding %s are gone from Agora's Vault; unbind it and bind again", bnd.ID)
				lost.LastOp = &summary
			}
			if err := b.state.Commit(ctx, Mutation{InstanceID: iid, PutBinding: &lost}, nil); err != nil {
				return found, stateErr(err)
			}
			o.Fixed = true
		}
		found = append(found, o)
	}
	if len(found) > 0 {
		b.log.Info("orphan sweep", "instance_id", iid, "found", len(found), "apply", apply)
	}
	return found, nil
}
