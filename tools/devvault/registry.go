package main

import (
	"sort"

	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault/plugincatalog"
)

// builtinRegistry is a minimal implementation of Vault's
// plugincatalog.BuiltinRegistry offering only the plugins devvault links in:
// the "kv" secrets engine and the "approle" auth method. (Vault's full
// registry, helper/builtinplugins, would pull in every plugin Vault ships.)
type builtinRegistry struct {
	credential map[string]logical.Factory
	secrets    map[string]logical.Factory
}

var _ plugincatalog.BuiltinRegistry = (*builtinRegistry)(nil)

func newBuiltinRegistry() *builtinRegistry {
	return &builtinRegistry{
		credential: map[string]logical.Factory{"approle": approle.Factory},
		secrets:    map[string]logical.Factory{"kv": kv.Factory},
	}
}

func (r *builtinRegistry) table(t consts.PluginType) map[string]logical.Factory {
	switch t {
	case consts.PluginTypeCredential:
		return r.credential
	case consts.PluginTypeSecrets:
		return r.secrets
	default:
		return nil
	}
}

func (r *builtinRegistry) Contains(name string, t consts.PluginType) bool {
	_, ok := r.table(t)[name]
	return ok
}

func (r *builtinRegistry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	f, ok := r.table(t)[name]
	if !ok {
		return nil, false
	}
	return func() (interface{}, error) { return f, nil }, true
}

func (r *builtinRegistry) Keys(t consts.PluginType) []string {
	tbl := r.table(t)
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (r *builtinRegistry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if r.Contains(name, t) {
		return consts.Supported, true
	}
	return consts.Unknown, false
}

func (r *builtinRegistry) IsBuiltinEntPlugin(string, consts.PluginType) bool { return false }
