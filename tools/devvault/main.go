package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("devvault", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8200", "TCP address to listen on (port 0 picks a free port)")
	rootToken := fs.String("root-token", "root", "ID of the root token to create")
	parentPID := fs.Int("parent-pid", 0, "if > 0, exit once this process is gone")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "devvault: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if *rootToken == "" {
		fmt.Fprintln(os.Stderr, "devvault: -root-token must not be empty")
		return 2
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if *parentPID > 0 {
		go watchParent(ctx, *parentPID, cancel)
	}

	if err := serve(ctx, *addr, *rootToken); err != nil {
		fmt.Fprintf(os.Stderr, "devvault: %v\n", err)
		return 1
	}
	return 0
}

// serve starts Vault and blocks until ctx is cancelled. A cancellation during
// start-up is a clean shutdown, not an error.
func serve(ctx context.Context, addr, rootToken string) error {
	logger := hclog.New(&hclog.LoggerOptions{
		Name:   "vault",
		Level:  hclog.Warn,
		Output: os.Stderr,
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	baseURL := "http://" + advertisedAddr(ln.Addr().(*net.TCPAddr))
	fmt.Fprintf(os.Stderr, "devvault: listening on %s, starting Vault core\n", baseURL)

	backend, err := inmem.NewInmem(nil, logger.Named("storage"))
	if err != nil {
		return fmt.Errorf("in-memory storage: %w", err)
	}

	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:        backend,
		StorageType:     "inmem",
		Logger:          logger,
		DisableMlock:    true,
		RedirectAddr:    baseURL,
		BuiltinRegistry: newBuiltinRegistry(),
		// Like `vault server -dev`: kv is also a logical backend factory so
		// it can be mounted without going through the plugin catalog.
		LogicalBackends: map[string]logical.Factory{"kv": kv.Factory},
	})
	if err != nil {
		return fmt.Errorf("create core: %w", err)
	}
	defer func() {
		if err := core.Shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "devvault: core shutdown: %v\n", err)
		}
	}()

	handler := vaulthttp.Handler.Handler(&vault.HandlerProperties{
		Core:           core,
		ListenerConfig: &configutil.Listener{Type: "tcp", Address: ln.Addr().String()},
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          logger.StandardLogger(nil),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	if err := bootstrap(ctx, core, rootToken); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := selfCheck(ctx, baseURL, rootToken); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("self-check over HTTP: %w", err)
	}

	fmt.Fprintf(os.Stdout, "devvault ready addr=%s\n", baseURL)

	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "devvault: shutting down")
		return nil
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}
}

// bootstrap does what `vault server -dev` does after creating the core:
// initialise with a single key share, unseal, replace the generated root
// token with one of the chosen ID, mount KV v2 at secret/ and (unlike -dev)
// enable AppRole at approle/.
func bootstrap(ctx context.Context, core *vault.Core, rootToken string) error {
	ctx = namespace.ContextWithNamespace(ctx, namespace.RootNamespace)

	init, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{
			Type:            "shamir",
			SecretShares:    1,
			SecretThreshold: 1,
		},
	})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	unsealed, err := core.Unseal(init.SecretShares[0])
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if !unsealed {
		return errors.New("unseal: still sealed after providing the only key share")
	}
	// Without HA the core becomes active as part of unsealing; wait for it
	// defensively anyway.
	for i := 0; ; i++ {
		if core.Sealed() {
			return errors.New("core sealed itself again")
		}
		if isLeader, _, _, err := core.Leader(); err == vault.ErrHANotEnabled || (err == nil && isLeader) {
			break
		} else if i >= 100 {
			return fmt.Errorf("core did not become active: leader=%v err=%v", isLeader, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}

	token := init.RootToken
	if rootToken != token {
		resp, err := handle(ctx, core, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: token,
			Path:        "auth/token/create",
			Data: map[string]interface{}{
				"id":                rootToken,
				"policies":          []string{"root"},
				"no_parent":         true,
				"no_default_policy": true,
				"display_name":      "devvault-root",
			},
		})
		if err != nil {
			return fmt.Errorf("create root token %q: %w", rootToken, err)
		}
		if resp == nil || resp.Auth == nil || resp.Auth.ClientToken != rootToken {
			return fmt.Errorf("create root token %q: unexpected response %#v", rootToken, resp)
		}
		if _, err := handle(ctx, core, &logical.Request{
			Operation:   logical.UpdateOperation,
			ClientToken: token,
			Path:        "auth/token/revoke-self",
		}); err != nil {
			return fmt.Errorf("revoke generated root token: %w", err)
		}
		token = rootToken
	}

	if _, err := handle(ctx, core, &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: token,
		Path:        "sys/mounts/secret",
		Data: map[string]interface{}{
			"type":        "kv",
			"description": "key/value secret storage (KV v2)",
			"options":     map[string]string{"version": "2"},
		},
	}); err != nil {
		return fmt.Errorf("mount kv v2 at secret/: %w", err)
	}

	if _, err := handle(ctx, core, &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: token,
		Path:        "sys/auth/approle",
		Data: map[string]interface{}{
			"type":        "approle",
			"description": "AppRole auth method",
		},
	}); err != nil {
		return fmt.Errorf("enable approle at approle/: %w", err)
	}
	return nil
}

// handle runs a request against the core and folds error responses into err.
func handle(ctx context.Context, core *vault.Core, req *logical.Request) (*logical.Response, error) {
	resp, err := core.HandleRequest(ctx, req)
	if err != nil {
		return resp, err
	}
	if resp != nil && resp.IsError() {
		return resp, resp.Error()
	}
	return resp, nil
}

// selfCheck proves readiness through the real listener: the root token
// works, and KV v2 at secret/ answers reads (a fresh KV v2 mount can briefly
// reject requests while it finishes its version upgrade check).
func selfCheck(ctx context.Context, baseURL, token string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+path, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("X-Vault-Token", token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.StatusCode, string(body), nil
	}

	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		ok, msg := func() (bool, string) {
			code, body, err := get("/v1/auth/token/lookup-self")
			if err != nil {
				return false, err.Error()
			}
			if code != http.StatusOK {
				return false, fmt.Sprintf("token lookup-self: HTTP %d: %s", code, body)
			}
			var lookup struct {
				Data struct {
					Policies []string `json:"policies"`
				} `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &lookup); err != nil {
				return false, "token lookup-self: " + err.Error()
			}
			if len(lookup.Data.Policies) != 1 || lookup.Data.Policies[0] != "root" {
				return false, fmt.Sprintf("token has policies %v, want [root]", lookup.Data.Policies)
			}
			// A missing secret must give a clean 404 once KV v2 is serving.
			code, body, err = get("/v1/secret/data/devvault-readiness-probe")
			if err != nil {
				return false, err.Error()
			}
			if code != http.StatusNotFound {
				return false, fmt.Sprintf("kv v2 read: HTTP %d: %s", code, body)
			}
			code, body, err = get("/v1/auth/approle/role?list=true")
			if err != nil {
				return false, err.Error()
			}
			if code != http.StatusNotFound && code != http.StatusOK {
				return false, fmt.Sprintf("approle list roles: HTTP %d: %s", code, body)
			}
			return true, ""
		}()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New(msg)
		}
		if msg != last {
			fmt.Fprintf(os.Stderr, "devvault: not ready yet: %s\n", msg)
			last = msg
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// advertisedAddr turns the listener address into one a client can dial:
// an unspecified IP (0.0.0.0 / ::) is reported as loopback.
func advertisedAddr(a *net.TCPAddr) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		if ip.To4() == nil && ip != nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}
