package vaultstore

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/broker"
)

// The inventory of what Agora keeps in Vault, for the orphan sweep: it
// lists (which no request path ever does), so it is for the platform
// engineer's occasional sweep only.

// InstanceFolders lists the instances that have secrets under Agora's
// prefix, sorted.
func (s *Store) InstanceFolders(ctx context.Context) ([]string, error) {
	keys, err := s.list(ctx, s.prefix+"/instances/")
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		if id, ok := unsegment(strings.TrimSuffix(k, "/")); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// InstanceSecrets lists one instance's secrets, by ID, with their
// references: binding credentials, operation parameters, and the
// parameters instances and bindings have now.
func (s *Store) InstanceSecrets(ctx context.Context, instanceID string) (broker.InstanceSecrets, error) {
	base := s.prefix + "/instances/" + Segment(instanceID) + "/"
	read := func(kind string) (map[string]string, error) {
		keys, err := s.list(ctx, base+kind+"/")
		out := map[string]string{}
		for _, k := range keys {
			if id, ok := unsegment(k); ok && !strings.HasSuffix(k, "/") {
				out[id] = base + kind + "/" + k
			}
		}
		return out, err
	}
	var found broker.InstanceSecrets
	var err error
	if found.Bindings, err = read("bindings"); err != nil {
		return broker.InstanceSecrets{}, err
	}
	if found.Operations, err = read("operations"); err != nil {
		return broker.InstanceSecrets{}, err
	}
	if found.Parameters, err = read("parameters"); err != nil {
		return broker.InstanceSecrets{}, err
	}
	return found, nil
}

// Exists reports whether the secret at ref exists.
func (s *Store) Exists(ctx context.Context, ref string) (bool, error) {
	_, err := s.kv.GetMetadata(ctx, ref)
	var re *vault.ResponseError
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, vault.ErrSecretNotFound), errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return false, nil
	}
	return false, s.wrap("read metadata of", ref, err)
}

// list returns the keys below path in the KV v2 mount's metadata; none
// when the path does not exist.
func (s *Store) list(ctx context.Context, path string) ([]string, error) {
	secret, err := s.client.Logical().ListWithContext(ctx, s.mount+"/metadata/"+path)
	if err != nil {
		return nil, s.wrap("list", path, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, nil
	}
	raw, _ := secret.Data["keys"].([]any)
	out := make([]string, 0, len(raw))
	for _, k := range raw {
		if s, ok := k.(string); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// unsegment reverses Segment.
func unsegment(seg string) (string, bool) {
	if rest, ok := strings.CutPrefix(seg, "x-"); ok {
		raw, err := hex.DecodeString(rest)
		if err != nil {
			return "", false
		}
		return string(raw), true
	}
	return seg, seg != ""
}
