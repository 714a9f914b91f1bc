// Package vaultstore keeps Agora's secrets in Vault's KV v2 engine, so
// that Redis only ever holds a reference to them: binding credentials and
// async request parameters (Store), producers' protocol secrets
// (ProducerSecrets), and the reading of catalog vault: references
// (Resolver). Every one of them shares the process's one client, made and
// logged in by Connect: a Session that renews its token, logs in again
// (AppRole, Kubernetes auth) and tells readiness when the token is dead.
// No token or secret_id is ever logged.
//
// # Path scheme
//
// With mount "secret" and prefix "agora" (the defaults):
//
//	secret/data/agora/instances/<iid>/bindings/<bid>      a binding's credentials
//	secret/data/agora/instances/<iid>/operations/<opid>   an async operation's request parameters, until it finishes
//	secret/data/agora/instances/<iid>/parameters/<opid>   the parameters an instance or binding has since operation <opid> succeeded
//	secret/data/agora/producers/<name>/secret             a producer's protocol secrets, key "v<version>.<offering>"
//
// IDs that are not plain [A-Za-z0-9._-] are hex-encoded with an "x-"
// prefix, so no ID can escape its segment. The reference the broker stores
// in Redis is the path below the mount ("agora/instances/...").
//
// Deleting removes the secret's metadata, which destroys every version.
package vaultstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	vault "github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/broker"
)

// Config is set explicitly from Agora's own configuration. It never comes
// silently from VAULT_* environment variables.
type Config struct {
	// Client is the process's one Vault client (NewClient); when nil, one
	// is made from Address and Token.
	Client  *vault.Client
	Address string
	Token   string
	// Mount is the KV v2 mount (default "secret").
	Mount string
	// Prefix is the path below the mount that Agora owns (default "agora").
	Prefix string
	// Timeout bounds each Vault request (default 10s).
	Timeout time.Duration
}

// Store implements broker.CredentialStore.
type Store struct {
	client *vault.Client
	kv     *vault.KVv2
	mount  string
	addr   string
	prefix string
}

// NewClient returns a vault/api client configured from address and token
// only. vault/api's DefaultConfig and NewClient read VAULT_* variables;
// this undoes that so the environment cannot redirect Agora's secrets.
// `agora serve` uses Connect, which also logs in and keeps the token
// alive.
func NewClient(address, token string, timeout time.Duration) (*vault.Client, error) {
	return buildClient(address, token, timeout, nil)
}

// buildClient is NewClient with a hook on the HTTP transport (Vault's CA).
func buildClient(address, token string, timeout time.Duration, configure func(*http.Transport)) (*vault.Client, error) {
	if address == "" {
		return nil, errors.New("vault: address is required")
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = timeout
	if configure != nil {
		configure(hc.Transport.(*http.Transport))
	}
	hc.Transport = &observedTransport{next: hc.Transport}
	client, err := vault.NewClient(&vault.Config{
		Address:    address,
		HttpClient: hc,
		Timeout:    timeout,
		// One quick retry covers a blip; more would turn "Vault is down"
		// into a long hang for the platform.
		MaxRetries:   1,
		MinRetryWait: 100 * time.Millisecond,
		MaxRetryWait: 500 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: client for %s: %w", address, err)
	}
	client.SetToken(token)
	client.ClearNamespace()
	return client, nil
}

// New returns a credential store.
func New(cfg Config) (*Store, error) {
	if cfg.Mount == "" {
		cfg.Mount = "secret"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "agora"
	}
	client := cfg.Client
	if client == nil {
		if cfg.Token == "" {
			return nil, errors.New("vault: token is required")
		}
		var err error
		if client, err = NewClient(cfg.Address, cfg.Token, cfg.Timeout); err != nil {
			return nil, err
		}
	}
	return &Store{client: client, kv: client.KVv2(cfg.Mount), mount: strings.Trim(cfg.Mount, "/"), addr: client.Address(), prefix: strings.Trim(cfg.Prefix, "/")}, nil
}

// Segment makes an ID safe as one path segment.
func Segment(id string) string {
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return "x-" + hex.EncodeToString([]byte(id))
		}
	}
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, "x-") {
		// Hex-encode these too, so no plain ID collides with an encoded one.
		return "x-" + hex.EncodeToString([]byte(id))
	}
	return id
}

// BindingRef returns the reference of a binding's credentials.
func (s *Store) BindingRef(instanceID, bindingID string) string {
	return s.prefix + "/instances/" + Segment(instanceID) + "/bindings/" + Segment(bindingID)
}

// ParametersRef returns the reference of an operation's parameters.
func (s *Store) ParametersRef(instanceID, operationID string) string {
	return s.prefix + "/instances/" + Segment(instanceID) + "/operations/" + Segment(operationID)
}

// CurrentParametersRef returns the reference of the parameters an
// instance or binding has since operationID succeeded.
func (s *Store) CurrentParametersRef(instanceID, operationID string) string {
	return s.prefix + "/instances/" + Segment(instanceID) + "/parameters/" + Segment(operationID)
}

// PutCurrentParameters implements broker.CredentialStore.
func (s *Store) PutCurrentParameters(ctx context.Context, instanceID, operationID string, params map[string]any) (string, error) {
	ref := s.CurrentParametersRef(instanceID, operationID)
	return ref, s.put(ctx, ref, params)
}

// PutBinding implements broker.CredentialStore.
func (s *Store) PutBinding(ctx context.Context, instanceID, bindingID string, creds map[string]any) (string, error) {
	ref := s.BindingRef(instanceID, bindingID)
	return ref, s.put(ctx, ref, creds)
}

// GetBinding implements broker.CredentialStore.
func (s *Store) GetBinding(ctx context.Context, ref string) (map[string]any, error) {
	return s.get(ctx, ref)
}

// PutParameters implements broker.CredentialStore.
func (s *Store) PutParameters(ctx context.Context, instanceID, operationID string, params map[string]any) (string, error) {
	ref := s.ParametersRef(instanceID, operationID)
	return ref, s.put(ctx, ref, params)
}

// GetParameters implements broker.CredentialStore.
func (s *Store) GetParameters(ctx context.Context, ref string) (map[string]any, error) {
	return s.get(ctx, ref)
}

func (s *Store) put(ctx context.Context, ref string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	if _, err := s.kv.Put(ctx, ref, data); err != nil {
		return s.wrap("write", ref, err)
	}
	return nil
}

func (s *Store) get(ctx context.Context, ref string) (map[string]any, error) {
	secret, err := s.kv.Get(ctx, ref)
	if errors.Is(err, vault.ErrSecretNotFound) {
		return nil, fmt.Errorf("vault: read %s: %w", ref, broker.ErrNotFound)
	}
	if err != nil {
		return nil, s.wrap("read", ref, err)
	}
	if secret == nil || secret.Data == nil {
		return nil, fmt.Errorf("vault: read %s: %w", ref, broker.ErrNotFound)
	}
	return secret.Data, nil
}

// Delete implements broker.CredentialStore.
func (s *Store) Delete(ctx context.Context, ref string) error {
	if ref == "" {
		return nil
	}
	if err := s.kv.DeleteMetadata(ctx, ref); err != nil {
		var re *vault.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
			return nil
		}
		return s.wrap("delete", ref, err)
	}
	return nil
}

// Ping implements broker.CredentialStore: Vault must be reachable,
// initialised and unsealed.
func (s *Store) Ping(ctx context.Context) error {
	h, err := s.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("vault at %s: %w", s.addr, err)
	}
	if !h.Initialized || h.Sealed {
		return fmt.Errorf("vault at %s: initialized=%t sealed=%t", s.addr, h.Initialized, h.Sealed)
	}
	return nil
}

func (s *Store) wrap(op, ref string, err error) error {
	return fmt.Errorf("vault at %s: %s %s: %w", s.addr, op, ref, err)
}

var _ broker.CredentialStore = (*Store)(nil)
