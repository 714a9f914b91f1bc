package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/secrets"
)

// These tests run against the real dev Vault (see main_test.go) and look
// at Vault the way an app or an operator would: plain vault/api clients.

func vaultAdapter(t *testing.T, extra map[string]any) adapters.Adapter {
	t.Helper()
	srv := needVault(t)
	settings := map[string]any{"vault_addr": srv.Addr, "token": srv.RootToken}
	for k, v := range extra {
		settings[k] = v
	}
	return newAdapter(t, settings)
}

// plainClient is a vault/api client as an app would build it, with token
// (possibly "") and no retries, so a refusal shows at once.
func plainClient(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: needVault(t).Addr, MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

func rootClient(t *testing.T) *api.Client { return plainClient(t, needVault(t).RootToken) }

// uniqueID makes IDs unique per test run, with characters Vault paths
// cannot take as is, so the safe-name mapping is exercised everywhere.
func uniqueID(t *testing.T, what string) string {
	return fmt.Sprintf("%s/%s:%d", t.Name(), what, time.Now().UnixNano())
}

// login does what an app does with the credentials: an AppRole login.
func login(ctx context.Context, t *testing.T, creds map[string]any) (string, error) {
	t.Helper()
	c := plainClient(t, "")
	sec, err := c.Logical().WriteWithContext(ctx, creds["auth_path"].(string), map[string]any{
		"role_id": creds["role_id"], "secret_id": creds["secret_id"],
	})
	if err != nil {
		return "", err
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return "", errors.New("login answered without a token")
	}
	return sec.Auth.ClientToken, nil
}

func mustLogin(ctx context.Context, t *testing.T, creds map[string]any) *api.Client {
	t.Helper()
	token, err := login(ctx, t, creds)
	if err != nil {
		t.Fatalf("AppRole login with the binding's credentials: %v", err)
	}
	return plainClient(t, token)
}

func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != status {
		t.Errorf("%s: got %v, want HTTP %d", what, err, status)
	}
}

func TestLifecycle(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	instA, instB := uniqueID(t, "Instance-A"), uniqueID(t, "instance-b")

	provA, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: instA, Offering: "secrets-test", Plan: plan})
	if err != nil {
		t.Fatalf("Provision A: %v", err)
	}
	provB, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: instB, Offering: "secrets-test", Plan: plan})
	if err != nil {
		t.Fatalf("Provision B: %v", err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: instB, Plan: plan, Receipt: provB.Receipt})
	})

	bindA, err := a.Bind(ctx, adapters.BindRequest{InstanceID: instA, BindingID: uniqueID(t, "Bind-A"), Plan: plan, InstanceReceipt: provA.Receipt})
	if err != nil {
		t.Fatalf("Bind A: %v", err)
	}
	bindB, err := a.Bind(ctx, adapters.BindRequest{InstanceID: instB, BindingID: uniqueID(t, "bind-b"), Plan: plan, InstanceReceipt: provB.Receipt})
	if err != nil {
		t.Fatalf("Bind B: %v", err)
	}
	credsA, credsB := bindA.Credentials, bindB.Credentials

	// What the credentials hold, and that the receipt (kept in Redis) holds
	// none of the secret parts.
	for _, k := range []string{"type", "provider", "vault_addr", "role_id", "secret_id", "auth_path", "kv_mount", "path", "policy"} {
		if s, _ := credsA[k].(string); s == "" {
			t.Errorf("credentials lack %q: %v", k, keysOf(credsA))
		}
	}
	if len(credsA) != 9 {
		t.Errorf("credentials have keys %v, want exactly the 9 documented ones", keysOf(credsA))
	}
	if credsA["vault_addr"] != needVault(t).Addr || credsA["auth_path"] != "auth/approle/login" || credsA["kv_mount"] != "secret" {
		t.Errorf("credentials: vault_addr %v auth_path %v kv_mount %v", credsA["vault_addr"], credsA["auth_path"], credsA["kv_mount"])
	}
	if credsA["path"] != "agora-secrets/"+secrets.VaultName(instA) || credsA["policy"] != secrets.PolicyName(instA) {
		t.Errorf("credentials: path %v policy %v", credsA["path"], credsA["policy"])
	}
	for _, r := range []adapters.Receipt{provA.Receipt, bindA.Receipt} {
		for k, v := range r {
			if v == credsA["secret_id"] || v == credsA["role_id"] {
				t.Errorf("receipt[%q] holds a credential", k)
			}
		}
	}

	// The app logs in and uses its folder, at any depth and at the base.
	appA := mustLogin(ctx, t, credsA)
	pathA, pathB := credsA["path"].(string), credsB["path"].(string)
	kvA := appA.KVv2("secret")
	for _, p := range []string{pathA + "/db", pathA + "/app/nested/api-key", pathA} {
		if _, err := kvA.Put(ctx, p, map[string]any{"password": "s3cret-" + p}); err != nil {
			t.Fatalf("app A writes %s: %v", p, err)
		}
		got, err := kvA.Get(ctx, p)
		if err != nil || got.Data["password"] != "s3cret-"+p {
			t.Fatalf("app A reads %s: %v %v", p, got, err)
		}
	}
	// A second version, so Deprovision has to remove every version.
	if _, err := kvA.Put(ctx, pathA+"/db", map[string]any{"password": "v2"}); err != nil {
		t.Fatal(err)
	}
	if keys, err := appA.Logical().ListWithContext(ctx, "secret/metadata/"+pathA); err != nil || keys == nil {
		t.Errorf("app A lists its folder: %v %v", keys, err)
	}

	// Isolation: nothing outside its folder, however close the path.
	if _, err := root.KVv2("secret").Put(ctx, pathB+"/db", map[string]any{"password": "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "other", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pathB + "/db", "other", pathA + "-sibling/x", "agora-secrets/x", pathB} {
		_, err := kvA.Get(ctx, p)
		wantStatus(t, "app A reads "+p, err, http.StatusForbidden)
		_, err = kvA.Put(ctx, p, map[string]any{"k": "v"})
		wantStatus(t, "app A writes "+p, err, http.StatusForbidden)
	}
	_, err = appA.Logical().ListWithContext(ctx, "secret/metadata/"+pathB)
	wantStatus(t, "app A lists B's folder", err, http.StatusForbidden)
	_, err = appA.Logical().ListWithContext(ctx, "secret/metadata/agora-secrets")
	wantStatus(t, "app A lists all instances", err, http.StatusForbidden)
	err = appA.KVv2("secret").DeleteMetadata(ctx, pathB+"/db")
	wantStatus(t, "app A deletes B's secret", err, http.StatusForbidden)
	if _, err := root.KVv2("secret").Get(ctx, pathB+"/db"); err != nil {
		t.Errorf("B's secret was touched by app A: %v", err)
	}
	_, err = appA.Logical().WriteWithContext(ctx, "auth/approle/role/"+bindB.Receipt["role"]+"/secret-id", nil)
	wantStatus(t, "app A mints a secret_id for B's role", err, http.StatusForbidden)

	// Unbind: the secret_id no longer logs in, and the token from before
	// is refused at once, not at the end of its TTL.
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: instA, BindingID: "ignored: the receipt names the role", Plan: plan,
		InstanceReceipt: provA.Receipt, Receipt: bindA.Receipt}); err != nil {
		t.Fatalf("Unbind A: %v", err)
	}
	if _, err := login(ctx, t, credsA); err == nil {
		t.Error("the unbound secret_id still logs in")
	}
	_, err = kvA.Get(ctx, pathA+"/db")
	wantStatus(t, "the unbound binding's token reads its secret", err, http.StatusForbidden)
	_, err = appA.Auth().Token().LookupSelfWithContext(ctx)
	wantStatus(t, "the unbound binding's token looks itself up", err, http.StatusForbidden)
	// B's binding is unaffected.
	appB := mustLogin(ctx, t, credsB)
	if _, err := appB.KVv2("secret").Get(ctx, pathB+"/db"); err != nil {
		t.Errorf("app B after A's unbind: %v", err)
	}

	// Deprovision: secrets (every version), the policy, gone.
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: instA, Plan: plan, Receipt: provA.Receipt}); err != nil {
		t.Fatalf("Deprovision A: %v", err)
	}
	assertSpaceGone(ctx, t, root, pathA, credsA["policy"].(string))
	if _, err := root.KVv2("secret").Get(ctx, pathB+"/db"); err != nil {
		t.Errorf("B's secret after A's deprovision: %v", err)
	}
	if _, err := root.KVv2("secret").Get(ctx, "other"); err != nil {
		t.Errorf("secret/other after A's deprovision: %v", err)
	}
}

func assertSpaceGone(ctx context.Context, t *testing.T, root *api.Client, path, policy string) {
	t.Helper()
	list, err := root.Logical().ListWithContext(ctx, "secret/metadata/"+path)
	if err != nil || list != nil {
		t.Errorf("LIST secret/metadata/%s after deprovision: %v %v, want nothing", path, list, err)
	}
	for _, p := range []string{path + "/db", path + "/app/nested/api-key", path} {
		_, err := root.KVv2("secret").GetMetadata(ctx, p)
		if !errors.Is(err, api.ErrSecretNotFound) {
			t.Errorf("metadata of %s after deprovision: %v, want not found", p, err)
		}
	}
	raw, err := root.Logical().ReadRawWithContext(ctx, "sys/policies/acl/"+policy)
	if raw != nil {
		defer raw.Body.Close()
	}
	if raw == nil || raw.StatusCode != http.StatusNotFound {
		t.Errorf("policy %s read after deprovision: %v %v, want 404", policy, raw, err)
	}
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestIdempotency(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	inst, bind := uniqueID(t, "inst"), uniqueID(t, "bind")

	p1, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatalf("repeated Provision: %v", err)
	}
	if fmt.Sprint(p1.Receipt) != fmt.Sprint(p2.Receipt) {
		t.Errorf("repeated Provision changed the receipt: %v then %v", p1.Receipt, p2.Receipt)
	}

	b1, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: bind, Plan: plan, InstanceReceipt: p1.Receipt})
	if err != nil {
		t.Fatal(err)
	}
	app1 := mustLogin(ctx, t, b1.Credentials)
	b2, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: bind, Plan: plan, InstanceReceipt: p1.Receipt})
	if err != nil {
		t.Fatalf("repeated Bind: %v", err)
	}
	if b1.Credentials["role_id"] != b2.Credentials["role_id"] || b1.Receipt["role"] != b2.Receipt["role"] {
		t.Errorf("repeated Bind made another role: %v / %v", b1.Receipt, b2.Receipt)
	}
	// Whichever answer the platform kept, it works, and the earlier login
	// token still works too (a repeat must not break a live binding).
	app2 := mustLogin(ctx, t, b2.Credentials)
	if _, err := login(ctx, t, b1.Credentials); err != nil {
		t.Errorf("the first Bind's secret_id after a repeat: %v", err)
	}
	path := b1.Credentials["path"].(string)
	if _, err := app1.KVv2("secret").Put(ctx, path+"/x", map[string]any{"k": "v"}); err != nil {
		t.Errorf("first token after a repeated Bind: %v", err)
	}

	// Unbind twice; and a repeat that finds the role already gone (a crash
	// after the first step) still finishes the job: the tokens die.
	if _, err := root.Logical().DeleteWithContext(ctx, "auth/approle/role/"+b1.Receipt["role"]); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: inst, BindingID: bind, Plan: plan, Receipt: b1.Receipt}); err != nil {
			t.Fatalf("Unbind #%d: %v", i+1, err)
		}
	}
	_, err = app2.KVv2("secret").Get(ctx, path+"/x")
	wantStatus(t, "token after unbind", err, http.StatusForbidden)

	// Deprovision after a crash that removed only the policy.
	if err := root.Sys().DeletePolicyWithContext(ctx, p1.Receipt["policy"]); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p1.Receipt}); err != nil {
			t.Fatalf("Deprovision #%d: %v", i+1, err)
		}
	}
	assertSpaceGone(ctx, t, root, path, p1.Receipt["policy"])

	// Never-created IDs, with and without receipts.
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: uniqueID(t, "never"), BindingID: uniqueID(t, "never"), Plan: plan}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Unbind of a never-created binding: %v", err)
	}
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: uniqueID(t, "never"), Plan: plan}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Deprovision of a never-created instance: %v", err)
	}
}

func TestDeprovisionRemovesLeftoverBindings(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	inst, other := uniqueID(t, "inst"), uniqueID(t, "other")

	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	po, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: other, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: other, Plan: plan, Receipt: po.Receipt})
	})
	var apps []*api.Client
	var binds []adapters.BindResult
	for i := range 2 {
		b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, fmt.Sprint("b", i)), Plan: plan, InstanceReceipt: p.Receipt})
		if err != nil {
			t.Fatal(err)
		}
		binds = append(binds, b)
		apps = append(apps, mustLogin(ctx, t, b.Credentials))
	}
	bo, err := a.Bind(ctx, adapters.BindRequest{InstanceID: other, BindingID: uniqueID(t, "bo"), Plan: plan, InstanceReceipt: po.Receipt})
	if err != nil {
		t.Fatal(err)
	}

	// The platform never unbound; Deprovision must not leave working
	// credentials behind.
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt}); err != nil {
		t.Fatal(err)
	}
	for i, b := range binds {
		if _, err := login(ctx, t, b.Credentials); err == nil {
			t.Errorf("binding %d still logs in after deprovision", i)
		}
		_, err := apps[i].Auth().Token().LookupSelfWithContext(ctx)
		wantStatus(t, fmt.Sprint("binding ", i, " token after deprovision"), err, http.StatusForbidden)
		if sec, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/"+b.Receipt["role"]); err != nil || sec != nil {
			t.Errorf("role %s after deprovision: %v %v", b.Receipt["role"], sec, err)
		}
		if sec, err := root.Logical().ReadWithContext(ctx, "identity/entity/name/"+b.Receipt["entity"]); err != nil || sec != nil {
			t.Errorf("entity %s after deprovision: %v %v", b.Receipt["entity"], sec, err)
		}
	}
	// The other instance's binding survives.
	if _, err := login(ctx, t, bo.Credentials); err != nil {
		t.Errorf("another instance's binding after deprovision: %v", err)
	}
}

func TestBindingIDReusedForAnotherInstance(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	i1, i2, bind := uniqueID(t, "i1"), uniqueID(t, "i2"), uniqueID(t, "bind")
	var receipts []adapters.Receipt
	for _, inst := range []string{i1, i2} {
		p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, p.Receipt)
		t.Cleanup(func() {
			_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt})
		})
	}
	b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: i1, BindingID: bind, Plan: plan, InstanceReceipt: receipts[0]})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: i2, BindingID: bind, Plan: plan, InstanceReceipt: receipts[1]})
	if !errors.Is(err, adapters.ErrAlreadyExists) {
		t.Fatalf("Bind of a binding ID taken by another instance: %v, want ErrAlreadyExists", err)
	}
	// ... and the first binding still reaches its own instance only.
	app := mustLogin(ctx, t, b.Credentials)
	if _, err := app.KVv2("secret").Put(ctx, b.Credentials["path"].(string)+"/x", map[string]any{"k": "v"}); err != nil {
		t.Errorf("first binding after the refused re-bind: %v", err)
	}
}

func TestBindEnablesApprole(t *testing.T) {
	mount := fmt.Sprintf("approle-test-%d", time.Now().UnixNano())
	a := vaultAdapter(t, map[string]any{"approle_mount": mount})
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	t.Cleanup(func() { _ = root.Sys().DisableAuthWithContext(context.Background(), mount) })
	inst := uniqueID(t, "inst")
	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt})
	})
	b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, "b"), Plan: plan, InstanceReceipt: p.Receipt})
	if err != nil {
		t.Fatalf("Bind with approle not yet enabled: %v", err)
	}
	if b.Credentials["auth_path"] != "auth/"+mount+"/login" {
		t.Errorf("auth_path %v", b.Credentials["auth_path"])
	}
	mustLogin(ctx, t, b.Credentials)
	auths, err := root.Sys().ListAuthWithContext(ctx)
	if err != nil || auths[mount+"/"] == nil || auths[mount+"/"].Type != "approle" {
		t.Errorf("approle at %s/ after Bind: %v %v", mount, auths[mount+"/"], err)
	}
}

func TestProvisionChecksKVMount(t *testing.T) {
	root := rootClient(t)
	ctx := t.Context()
	v1 := fmt.Sprintf("kv1-%d", time.Now().UnixNano())
	if err := root.Sys().MountWithContext(ctx, v1, &api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = root.Sys().UnmountWithContext(context.Background(), v1) })
	for _, mount := range []string{"no-such-mount", v1} {
		a := vaultAdapter(t, map[string]any{"kv_mount": mount})
		_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: uniqueID(t, "i"), Plan: defaultPlans()[0].Plan})
		if err == nil || !adapters.IsTerminal(err) || !strings.Contains(err.Error(), mount) {
			t.Errorf("Provision on kv_mount %s: %v, want a terminal error naming it", mount, err)
		}
	}
}

func TestTokenWithoutPolicyIsTerminal(t *testing.T) {
	root := rootClient(t)
	ctx := t.Context()
	tok, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"default"}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	a := vaultAdapter(t, map[string]any{"token": tok.Auth.ClientToken})
	_, err = a.Provision(ctx, adapters.ProvisionRequest{InstanceID: uniqueID(t, "i"), Plan: defaultPlans()[0].Plan})
	if err == nil || !adapters.IsTerminal(err) {
		t.Fatalf("Provision with a powerless token: %v, want a terminal error", err)
	}
	for _, w := range []string{"vault at " + needVault(t).Addr, "permission denied", "adapter's token"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), tok.Auth.ClientToken) {
		t.Error("the error message holds the adapter's token")
	}
	if err := a.(adapters.Pinger).Ping(ctx); err != nil {
		t.Errorf("Ping needs no permission: %v", err)
	}
}

// TestReadmePolicyIsEnough runs the whole lifecycle with a token that holds
// only the policy README.md documents, so the documentation cannot drift
// from what the adapter really needs. Run again with listing AppRole roles
// denied, it proves Deprovision is O(the instance): a scan of every role
// would fail with 403, and the leftover binding must still go, found
// through the instance's own records.
func TestReadmePolicyIsEnough(t *testing.T) {
	for name, extra := range map[string]string{
		"the README's policy":           "",
		"without listing AppRole roles": "\npath \"auth/approle/role\" { capabilities = [\"deny\"] }\n",
	} {
		t.Run(name, func(t *testing.T) { lifecycleWithPolicy(t, readmePolicy(t)+extra) })
	}
}

func lifecycleWithPolicy(t *testing.T, hcl string) {
	root := rootClient(t)
	ctx := t.Context()
	tok := tokenWithPolicy(ctx, t, root, hcl)
	a := vaultAdapter(t, map[string]any{"token": tok})
	plan := defaultPlans()[0].Plan
	inst := uniqueID(t, "inst")
	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	var binds []adapters.BindResult
	for i := range 2 {
		b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, fmt.Sprint("b", i)), Plan: plan, InstanceReceipt: p.Receipt})
		if err != nil {
			t.Fatalf("Bind: %v", err)
		}
		binds = append(binds, b)
	}
	app := mustLogin(ctx, t, binds[0].Credentials)
	path := binds[0].Credentials["path"].(string)
	if _, err := app.KVv2("secret").Put(ctx, path+"/a/b", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: inst, BindingID: "x", Plan: plan, InstanceReceipt: p.Receipt, Receipt: binds[0].Receipt}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	// binds[1] is left for Deprovision to find.
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt}); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	assertSpaceGone(ctx, t, root, path, p.Receipt["policy"])
	if _, err := login(ctx, t, binds[1].Credentials); err == nil {
		t.Error("a leftover binding still logs in after Deprovision")
	}
	role := binds[1].Receipt["role"]
	if sec, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/"+role); err != nil || sec != nil {
		t.Errorf("leftover role %s after Deprovision: %v %v", role, sec, err)
	}
	// No record outlives its instance.
	if sec, err := root.Logical().ListWithContext(ctx, "secret/metadata/"+path+".bindings"); err != nil || len(keysOfList(sec)) != 0 {
		t.Errorf("binding records after Deprovision: %v %v", sec, err)
	}
}

// TestDeprovisionOfInstanceFromBeforeRecords: an instance provisioned by an
// older Agora has no "records" in its receipt and its bindings no records
// in Vault; Deprovision falls back to scanning the roles and still removes
// its leftover binding, and only its own.
func TestDeprovisionOfInstanceFromBeforeRecords(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	inst, other := uniqueID(t, "inst"), uniqueID(t, "other")
	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	if p.Receipt["records"] == "" {
		t.Fatalf("a new instance's receipt %v does not say its bindings are recorded", p.Receipt)
	}
	po, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: other, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: other, Plan: plan, Receipt: po.Receipt})
	})
	b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, "b"), Plan: plan, InstanceReceipt: p.Receipt})
	if err != nil {
		t.Fatal(err)
	}
	bo, err := a.Bind(ctx, adapters.BindRequest{InstanceID: other, BindingID: uniqueID(t, "bo"), Plan: plan, InstanceReceipt: po.Receipt})
	if err != nil {
		t.Fatal(err)
	}
	// Make it look old: no receipt key, no record.
	old := adapters.Receipt{}
	for k, v := range p.Receipt {
		if k != "records" {
			old[k] = v
		}
	}
	record := "secret/metadata/" + b.Credentials["path"].(string) + ".bindings/" + b.Receipt["role"]
	if _, err := root.Logical().DeleteWithContext(ctx, record); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: old}); err != nil {
		t.Fatal(err)
	}
	if _, err := login(ctx, t, b.Credentials); err == nil {
		t.Error("an unrecorded leftover binding still logs in after Deprovision")
	}
	if _, err := login(ctx, t, bo.Credentials); err != nil {
		t.Errorf("another instance's binding after deprovision: %v", err)
	}
}

func keysOfList(sec *api.Secret) []any {
	if sec == nil {
		return nil
	}
	keys, _ := sec.Data["keys"].([]any)
	return keys
}

// readmePolicy is the adapter token's policy as README.md documents it.
func readmePolicy(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "```hcl\n")
	hcl, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```hcl block with the adapter's policy")
	}
	return hcl
}

// tokenWithPolicy writes hcl as a fresh policy and returns a token holding
// only that policy.
func tokenWithPolicy(ctx context.Context, t *testing.T, root *api.Client, hcl string) string {
	t.Helper()
	policy := fmt.Sprintf("agora-secrets-adapter-test-%d", time.Now().UnixNano())
	if err := root.Sys().PutPolicyWithContext(ctx, policy, hcl); err != nil {
		t.Fatalf("the policy does not parse: %v", err)
	}
	t.Cleanup(func() { _ = root.Sys().DeletePolicyWithContext(context.Background(), policy) })
	tok, err := root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{policy}, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Auth.ClientToken
}

// TestBindAfterTheApproleMountWasReplaced: bind caches the AppRole mount's
// accessor rather than listing sys/auth every time; when an operator
// disables the mount and enables it again (a new accessor), the next bind
// must notice and still hand out credentials that log in.
func TestBindAfterTheApproleMountWasReplaced(t *testing.T) {
	mount := fmt.Sprintf("approle-remount-%d", time.Now().UnixNano())
	a := vaultAdapter(t, map[string]any{"approle_mount": mount})
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)
	t.Cleanup(func() { _ = root.Sys().DisableAuthWithContext(context.Background(), mount) })
	inst := uniqueID(t, "inst")
	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt})
	})
	if _, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, "b1"), Plan: plan, InstanceReceipt: p.Receipt}); err != nil {
		t.Fatal(err)
	}
	before, err := root.Sys().ListAuthWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().DisableAuthWithContext(ctx, mount); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	after, err := root.Sys().ListAuthWithContext(ctx)
	if err != nil || after[mount+"/"].Accessor == before[mount+"/"].Accessor {
		t.Fatalf("the remounted approle kept its accessor %v (%v)", after[mount+"/"], err)
	}
	b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, "b2"), Plan: plan, InstanceReceipt: p.Receipt})
	if err != nil {
		t.Fatalf("Bind after the approle mount was replaced: %v", err)
	}
	mustLogin(ctx, t, b.Credentials)
}

// Without Provision's receipt Bind asks Vault whether the instance exists,
// and on one that was never provisioned creates nothing.
func TestBindWithoutReceiptLooksTheInstanceUp(t *testing.T) {
	a := vaultAdapter(t, nil)
	ctx := t.Context()
	plan := defaultPlans()[0].Plan
	root := rootClient(t)

	missing, bid := uniqueID(t, "never"), uniqueID(t, "b")
	_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: missing, BindingID: bid, Plan: plan})
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Fatalf("Bind on a never-provisioned instance: %v, want ErrNotFound", err)
	}
	role, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/"+secrets.RoleName(bid))
	if err != nil || role != nil {
		t.Errorf("the refused Bind left role %v (%v)", role, err)
	}
	entity, err := root.Logical().ReadWithContext(ctx, "identity/entity/name/"+secrets.RoleName(bid))
	if err != nil || entity != nil {
		t.Errorf("the refused Bind left entity %v (%v)", entity, err)
	}

	inst := uniqueID(t, "inst")
	p, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: p.Receipt})
	})
	b, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: uniqueID(t, "b2"), Plan: plan})
	if err != nil {
		t.Fatalf("Bind without a receipt on a provisioned instance: %v", err)
	}
	mustLogin(ctx, t, b.Credentials)
}
