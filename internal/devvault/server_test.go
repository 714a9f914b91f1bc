package devvault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// testLogWriter forwards build progress to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type vaultClient struct {
	t     *testing.T
	addr  string
	token string
}

// do sends a request and decodes the JSON response body (if any) into a map.
func (c vaultClient) do(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.addr+"/v1/"+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("X-Vault-Token", c.token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			c.t.Fatalf("%s %s: HTTP %d, bad JSON %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, out
}

// must is do, failing the test unless the status is one of want.
func (c vaultClient) must(method, path string, body any, want ...int) map[string]any {
	c.t.Helper()
	code, out := c.do(method, path, body)
	for _, w := range want {
		if code == w {
			return out
		}
	}
	c.t.Fatalf("%s %s: HTTP %d, want %v: %v", method, path, code, want, out)
	return nil
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func TestStartRealVault(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real dev Vault (first build takes minutes)")
	}
	root, err := FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	buildCtx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bin, err := EnsureBinary(buildCtx, root, testLogWriter{t})
	if err != nil {
		t.Fatal(err)
	}

	var stderr io.Writer = io.Discard
	if testing.Verbose() {
		stderr = os.Stderr
	}
	start := time.Now()
	srv, err := Start(context.Background(), bin, Options{RootToken: "agora-test-root", Stderr: stderr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Kill() })
	t.Logf("dev Vault ready at %s in %s", srv.Addr, time.Since(start).Round(time.Millisecond))
	if !strings.HasPrefix(srv.Addr, "http://127.0.0.1:") || srv.RootToken != "agora-test-root" {
		t.Fatalf("unexpected server %q / %q", srv.Addr, srv.RootToken)
	}
	vc := vaultClient{t: t, addr: srv.Addr, token: srv.RootToken}

	// Health: initialised, unsealed, active.
	health := vc.must("GET", "sys/health", nil, 200)
	if health["initialized"] != true || health["sealed"] != false {
		t.Fatalf("health = %v", health)
	}

	// KV v2 at secret/: write and read back.
	vc.must("POST", "secret/data/test", map[string]any{"data": map[string]any{"password": "s3cret", "user": "agora"}}, 200)
	got := vc.must("GET", "secret/data/test", nil, 200)
	if pw := dig(got, "data", "data", "password"); pw != "s3cret" {
		t.Fatalf("read back password = %v; response %v", pw, got)
	}
	if v := dig(got, "data", "metadata", "version"); v != float64(1) {
		t.Fatalf("kv v2 metadata version = %v, want 1", v)
	}

	// AppRole: enable it unless already mounted (devvault mounts it at startup).
	auths := vc.must("GET", "sys/auth", nil, 200)
	if dig(auths, "data", "approle/") == nil {
		vc.must("POST", "sys/auth/approle", map[string]any{"type": "approle"}, 204)
	} else if typ := dig(auths, "data", "approle/", "type"); typ != "approle" {
		t.Fatalf("approle/ has type %v", typ)
	}

	// Policy allowing to read the secret.
	vc.must("PUT", "sys/policies/acl/agora-test", map[string]any{
		"policy": `path "secret/data/test" { capabilities = ["read"] }`,
	}, 204)
	pol := vc.must("GET", "sys/policies/acl/agora-test", nil, 200)
	if !strings.Contains(fmt.Sprint(dig(pol, "data", "policy")), "secret/data/test") {
		t.Fatalf("policy read back = %v", pol)
	}

	// Role + login through AppRole, then use the policy.
	vc.must("POST", "auth/approle/role/agora", map[string]any{"token_policies": []string{"agora-test"}, "token_ttl": "10m"}, 204)
	roleID := dig(vc.must("GET", "auth/approle/role/agora/role-id", nil, 200), "data", "role_id")
	secretID := dig(vc.must("POST", "auth/approle/role/agora/secret-id", nil, 200), "data", "secret_id")
	login := vaultClient{t: t, addr: srv.Addr}.must("POST", "auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": secretID}, 200)
	appToken, _ := dig(login, "auth", "client_token").(string)
	if appToken == "" {
		t.Fatalf("approle login: %v", login)
	}
	app := vaultClient{t: t, addr: srv.Addr, token: appToken}
	if pw := dig(app.must("GET", "secret/data/test", nil, 200), "data", "data", "password"); pw != "s3cret" {
		t.Fatalf("approle token read password = %v", pw)
	}
	app.must("POST", "secret/data/test", map[string]any{"data": map[string]any{"x": "y"}}, 403)

	// Stop: the process goes away and the port is closed. Stop is idempotent.
	u, err := url.Parse(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-srv.Done():
	default:
		t.Fatal("process still running after Stop")
	}
	if conn, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		conn.Close()
		t.Fatalf("port %s still open after Stop", u.Host)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// Kill (simulated crash) on a second instance.
	srv2, err := Start(context.Background(), bin, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if srv2.RootToken != "root" {
		t.Fatalf("default root token = %q", srv2.RootToken)
	}
	vaultClient{t: t, addr: srv2.Addr, token: "root"}.must("GET", "auth/token/lookup-self", nil, 200)
	if err := srv2.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	<-srv2.Done()
	if err := srv2.Stop(); err != nil {
		t.Fatalf("Stop after Kill: %v", err)
	}
}

func TestStartFailsWithStderrTail(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a subprocess")
	}
	sh := "/bin/sh"
	if _, err := os.Stat(sh); err != nil {
		t.Skip("no /bin/sh")
	}
	script := t.TempDir() + "/fake-devvault"
	writeFile(t, script, "#!/bin/sh\necho 'boom: cannot listen' >&2\nexit 3\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), script, Options{})
	if err == nil || !strings.Contains(err.Error(), "boom: cannot listen") {
		t.Fatalf("Start error = %v, want it to include the stderr tail", err)
	}
}
