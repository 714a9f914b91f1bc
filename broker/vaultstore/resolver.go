package vaultstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/broker/catalog"
)

// Resolver resolves catalog references of the form
// vault:<mount>/<path>#<key> against KV v2 with client, the process's one
// Vault client.
func Resolver(client *vault.Client) catalog.SecretResolver {
	return func(ctx context.Context, path, key string) (string, error) {
		mount, rest, ok := strings.Cut(strings.Trim(path, "/"), "/")
		if !ok {
			return "", fmt.Errorf("vault reference %q: want <mount>/<path>", path)
		}
		rest = strings.TrimPrefix(rest, "data/")
		secret, err := client.KVv2(mount).Get(ctx, rest)
		if err != nil {
			return "", fmt.Errorf("vault at %s: read %s: %w", client.Address(), path, err)
		}
		v, ok := secret.Data[key]
		if !ok {
			return "", fmt.Errorf("vault at %s: %s has no key %q", client.Address(), path, key)
		}
		s, ok := v.(string)
		if !ok {
			return "", errors.New("vault reference " + path + "#" + key + " is not a string")
		}
		return s, nil
	}
}
