package secrets

import (
	"context"
	"errors"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Binding records: what lets Deprovision find an instance's bindings
// without listing every AppRole role in Vault (issue 10: that scan took
// 0.46 ms per role, seconds at a few thousand).
//
// Bind writes one KV v2 metadata entry per binding at
// <kv_mount>/<path>.bindings/<role>, its custom_metadata holding the
// role's mount and entity; Unbind and Deprovision delete it. Metadata
// only, with no secret version: the adapter's token then needs no access
// to the data/ side, where the apps' secrets are. The folder sits next to the
// instance's, not in it: the instance's policy grants "<path>" and
// "<path>/*" only, so apps can neither read nor remove the records, and
// no instance can own "<path>.bindings" because vaultName never yields a
// '.'. One entry per binding, not one list per instance, so concurrent
// binds of one instance never race on a read-modify-write.

// recordsVersion is the value of the "records" receipt key.
const recordsVersion = "1"

func withRecords(r map[string]string) map[string]string {
	r[receiptRecords] = recordsVersion
	return r
}

func (s space) recordsPath() string { return s.path + ".bindings" }

type bindingRecord struct{ role, mount, entity string }

func (a *Adapter) recordBinding(ctx context.Context, sp space, mount, role, entity string) error {
	path := sp.recordsPath() + "/" + role
	if err := a.client.KVv2(sp.kvMount).PutMetadata(ctx, path, api.KVMetadataPutInput{
		CustomMetadata: map[string]any{receiptApproleMount: mount, receiptEntity: entity},
	}); err != nil {
		return a.vaultError("record binding "+sp.kvMount+"/"+path, err)
	}
	return nil
}

func (a *Adapter) forgetBinding(ctx context.Context, sp space, role string) error {
	path := sp.recordsPath() + "/" + role
	if err := a.client.KVv2(sp.kvMount).DeleteMetadata(ctx, path); err != nil && !isNotFound(err) {
		return a.vaultError("delete binding record "+sp.kvMount+"/"+path, err)
	}
	return nil
}

// bindingRecords reads the records of the instance's bindings: one LIST,
// then one read per binding still recorded.
func (a *Adapter) bindingRecords(ctx context.Context, sp space) ([]bindingRecord, error) {
	dir := sp.kvMount + "/metadata/" + sp.recordsPath()
	sec, err := a.client.Logical().ListWithContext(ctx, dir)
	if err != nil && !isNotFound(err) {
		return nil, a.vaultError("list "+dir, err)
	}
	var out []bindingRecord
	for _, role := range listKeys(sec) {
		if strings.HasSuffix(role, "/") {
			continue // Bind writes no folders here
		}
		md, err := a.client.KVv2(sp.kvMount).GetMetadata(ctx, sp.recordsPath()+"/"+role)
		if err != nil && !isNotFound(err) && !errors.Is(err, api.ErrSecretNotFound) {
			return nil, a.vaultError("read binding record "+role, err)
		}
		r := bindingRecord{role: role, mount: a.settings.ApproleMount, entity: role}
		if md != nil {
			if m, _ := md.CustomMetadata[receiptApproleMount].(string); m != "" {
				r.mount = m
			}
			if e, _ := md.CustomMetadata[receiptEntity].(string); e != "" {
				r.entity = e
			}
		}
		out = append(out, r)
	}
	return out, nil
}
