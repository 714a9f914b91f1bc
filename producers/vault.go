package producers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// VaultSecrets is the SecretStore over Agora's own Vault (KV v2). A
// producer's protocol secrets live in one secret, one key per offering
// and version:
//
//	<mount>/data/<prefix>/producers/<name>/secret   key "v<version>.<offering>"
//
// and the stored slice says vault:<mount>/<prefix>/producers/<name>/secret#<key>,
// which the catalog build resolves like any catalog.yml reference.
type VaultSecrets struct {
	kv     *vault.KVv2
	mount  string
	prefix string
}

// NewVaultSecrets uses client (vaultstore.NewClient, configured explicitly
// from Agora's config) on the KV v2 mount, below prefix.
func NewVaultSecrets(client *vault.Client, mount, prefix string) *VaultSecrets {
	if mount == "" {
		mount = "secret"
	}
	if prefix == "" {
		prefix = "agora"
	}
	return &VaultSecrets{kv: client.KVv2(mount), mount: strings.Trim(mount, "/"), prefix: strings.Trim(prefix, "/")}
}

func (v *VaultSecrets) path(producer string) string {
	return v.prefix + "/producers/" + producer + "/secret"
}

func (v *VaultSecrets) refPrefix(producer string) string {
	return "vault:" + v.mount + "/" + v.path(producer) + "#"
}

// PutProducerSecret implements SecretStore. It adds the key with
// check-and-set, so two versions stored at once cannot drop each other's
// key.
func (v *VaultSecrets) PutProducerSecret(ctx context.Context, producer, key, value string) (string, error) {
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

// OwnsRef implements SecretStore.
func (v *VaultSecrets) OwnsRef(producer, ref string) bool {
	key, ok := strings.CutPrefix(ref, v.refPrefix(producer))
	return ok && key != "" && !strings.Contains(key, "#")
}

var _ SecretStore = (*VaultSecrets)(nil)
