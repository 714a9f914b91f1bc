package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/producers"
)

// ProducerSecrets is producers.SecretStore over Agora's own Vault (KV v2). A
// producer's protocol secrets live in one secret, one key per offering
// and version:
//
//	<mount>/data/<prefix>/producers/<name>/secret   key "v<version>.<offering>"
//
// and the stored slice says vault:<mount>/<prefix>/producers/<name>/secret#<key>,
// which the catalog build resolves like any catalog.yml reference.
type ProducerSecrets struct {
	kv     *vault.KVv2
	mount  string
	prefix string
}

// NewProducerSecrets uses client (NewClient: the one Vault client of the
// process) on the KV v2 mount, below prefix.
func NewProducerSecrets(client *vault.Client, mount, prefix string) *ProducerSecrets {
	if mount == "" {
		mount = "secret"
	}
	if prefix == "" {
		prefix = "agora"
	}
	return &ProducerSecrets{kv: client.KVv2(mount), mount: strings.Trim(mount, "/"), prefix: strings.Trim(prefix, "/")}
}

func (v *ProducerSecrets) path(producer string) string {
	return v.prefix + "/producers/" + producer + "/secret"
}

func (v *ProducerSecrets) refPrefix(producer string) string {
	return "vault:" + v.mount + "/" + v.path(producer) + "#"
}

// PutProducerSecret implements producers.SecretStore. It adds the key with
// check-and-set, so two versions stored at once cannot drop each other's
// key.
func (v *ProducerSecrets) PutProducerSecret(ctx context.Context, producer, key, value string) (string, error) {
	path := v.path(producer)
	for range 5 {
		data := map[string]any{}
		cas := 0
		secret, err := v.kv.Get(ctx, path)
		switch {
		case errors.Is(err, vault.ErrSecretNotFound):
		case err != nil:
			return "", fmt.Errorf("vault: read %s: %w", path, err)
		default:
			for k, val := range secret.Data {
				data[k] = val
			}
			if secret.VersionMetadata != nil {
				cas = secret.VersionMetadata.Version
			}
		}
		data[key] = value
		_, err = v.kv.Put(ctx, path, data, vault.WithCheckAndSet(cas))
		if err == nil {
			return v.refPrefix(producer) + key, nil
		}
		var re *vault.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
			return "", fmt.Errorf("vault: write %s: %w", path, err)
		}
		// Someone else wrote in between: read again and retry.
	}
	return "", fmt.Errorf("vault: write %s: too many concurrent writers", path)
}

// OwnsRef implements producers.SecretStore.
func (v *ProducerSecrets) OwnsRef(producer, ref string) bool {
	key, ok := strings.CutPrefix(ref, v.refPrefix(producer))
	return ok && key != "" && !strings.Contains(key, "#")
}

var _ producers.SecretStore = (*ProducerSecrets)(nil)
