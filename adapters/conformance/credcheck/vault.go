package credcheck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"
)

// vaultVerifier uses `vault` credentials (the secrets adapter's): an
// AppRole login whose space is KV v2 under path in kv_mount.
type vaultVerifier struct{ dial Dialer }

type vaultLogin struct {
	addr, authPath, roleID, secretID, mount, path string
}

func (v vaultVerifier) parse(creds map[string]any) (vaultLogin, error) {
	l := vaultLogin{addr: str(creds, "vault_addr"), authPath: str(creds, "auth_path"), roleID: str(creds, "role_id"),
		secretID: str(creds, "secret_id"), mount: str(creds, "kv_mount"), path: strings.Trim(str(creds, "path"), "/")}
	var missing []string
	for _, f := range []struct{ key, val string }{{"vault_addr", l.addr}, {"auth_path", l.authPath}, {"role_id", l.roleID},
		{"secret_id", l.secretID}, {"kv_mount", l.mount}, {"path", l.path}} {
		if f.val == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 {
		return l, fmt.Errorf("the credentials lack %s", strings.Join(missing, ", "))
	}
	return l, nil
}

func (v vaultVerifier) client(addr string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	tr := cfg.HttpClient.Transport.(*http.Transport).Clone()
	tr.DialContext = v.dial
	tr.Proxy = nil // the dialer decides where the kit connects
	cfg.HttpClient = &http.Client{Transport: tr, Timeout: dialTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault_addr: %w", err)
	}
	c.ClearNamespace()
	c.SetToken("")
	return c, nil
}

// login does what an application does first: the AppRole login.
func (v vaultVerifier) login(ctx context.Context, l vaultLogin) (*api.Client, error) {
	c, err := v.client(l.addr)
	if err != nil {
		return nil, err
	}
	sec, err := c.Logical().WriteWithContext(ctx, l.authPath, map[string]any{"role_id": l.roleID, "secret_id": l.secretID})
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return nil, fmt.Errorf("login at %s answered without a token", l.authPath)
	}
	c.SetToken(sec.Auth.ClientToken)
	return c, nil
}

// revokeSelf ends a token the verifier obtained, so a check leaves no
// live token behind.
func revokeSelf(ctx context.Context, c *api.Client) {
	_ = c.Auth().Token().RevokeSelfWithContext(context.WithoutCancel(ctx), "")
}

func vaultStatus(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

func (v vaultVerifier) Works(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	c, err := v.login(ctx, l)
	if err != nil {
		return fmt.Errorf("AppRole login at %s/v1/%s: %w", l.addr, l.authPath, err)
	}
	defer revokeSelf(ctx, c)
	p, want := l.path+"/"+probeName, probeValue()
	kv := c.KVv2(l.mount)
	if _, err := kv.Put(ctx, p, map[string]any{"v": want}); err != nil {
		return fmt.Errorf("write %s in %s: %w", p, l.mount, err)
	}
	got, err := kv.Get(ctx, p)
	if err != nil {
		return fmt.Errorf("read %s in %s: %w", p, l.mount, err)
	}
	if got == nil || got.Data["v"] != want {
		return fmt.Errorf("read %s in %s: not what was written", p, l.mount)
	}
	return nil
}

func (v vaultVerifier) Revoked(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	c, err := v.login(ctx, l)
	switch s := vaultStatus(err); {
	case err == nil:
		revokeSelf(ctx, c)
		return fmt.Errorf("the AppRole login at %s still succeeds", l.authPath)
	case s == http.StatusBadRequest || s == http.StatusForbidden:
		return nil
	case isNetError(err):
		return unreachable("log in at "+l.addr, err)
	}
	return fmt.Errorf("AppRole login at %s: want it refused (400 or 403), got: %w", l.authPath, err)
}

func (v vaultVerifier) Isolated(ctx context.Context, a, b map[string]any) error {
	la, lb, err := isolationPair(ctx, v.Works, v.parse, a, b)
	if err != nil {
		return err
	}
	if la.addr != lb.addr {
		return nil // A's token means nothing on another Vault
	}
	c, err := v.login(ctx, la)
	if err != nil {
		return fmt.Errorf("AppRole login with the first instance's credentials: %w", err)
	}
	defer revokeSelf(ctx, c)
	p := lb.path + "/" + probeName
	kv := c.KVv2(lb.mount)
	if _, err := kv.Get(ctx, p); vaultStatus(err) != http.StatusForbidden {
		if err == nil {
			return fmt.Errorf("the first instance's token read %s in %s, which the other instance's credentials wrote", p, lb.mount)
		}
		return fmt.Errorf("read %s in %s with the first instance's token: want 403, got: %w", p, lb.mount, err)
	}
	if _, err := kv.Put(ctx, p, map[string]any{"v": "intruder"}); vaultStatus(err) != http.StatusForbidden {
		if err == nil {
			return fmt.Errorf("the first instance's token overwrote %s in %s", p, lb.mount)
		}
		return fmt.Errorf("write %s in %s with the first instance's token: want 403, got: %w", p, lb.mount, err)
	}
	return nil
}
