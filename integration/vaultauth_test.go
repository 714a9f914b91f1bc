package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/internal/devvault"
)

// agoraPolicy is deploy/vault/agora-policy.hcl, the policy the operations
// guide tells platform teams to give Agora, read as it is shipped.
func agoraPolicy() string {
	GinkgoHelper()
	root, err := devvault.FindRepoRoot(".")
	Expect(err).NotTo(HaveOccurred())
	policy, err := os.ReadFile(filepath.Join(root, "deploy", "vault", "agora-policy.hcl"))
	Expect(err).NotTo(HaveOccurred())
	return string(policy)
}

// osbLifecycle runs what a platform does with one instance of each plan:
// a sync provision, bind, fetch and unbind, a deprovision that removes a
// binding's credentials from Vault, and an async provision and
// deprovision. vaultAddr and vaultPrefix are where the broker keeps
// credentials.
func osbLifecycle(ctx context.Context, b *Broker, vaultAddr, vaultPrefix string) {
	GinkgoHelper()
	osb := b.OSB
	iid, bid := newGUID(), newGUID()
	resp := osb.Provision(iid, standardPlanID, false)
	Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
	resp = osb.Bind(iid, bid, standardPlanID, false)
	Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
	Expect(resp.Credentials()).To(HaveKey("secret_id"))
	resp = osb.GetBinding(iid, bid)
	Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
	Expect(vaultStatus(ctx, vaultAddr, "secret/data/"+bindingSecretPathUnder(vaultPrefix, iid, bid))).To(Equal(http.StatusOK))
	resp = osb.Unbind(iid, bid, standardPlanID, false)
	Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
	Expect(vaultStatus(ctx, vaultAddr, "secret/data/"+bindingSecretPathUnder(vaultPrefix, iid, bid))).To(Equal(http.StatusNotFound))

	bid2 := newGUID()
	resp = osb.Bind(iid, bid2, standardPlanID, false)
	Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
	resp = osb.Deprovision(iid, standardPlanID, false)
	Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
	Expect(vaultStatus(ctx, vaultAddr, "secret/metadata/"+bindingSecretPathUnder(vaultPrefix, iid, bid2))).To(Equal(http.StatusNotFound))

	async := newGUID()
	resp = osb.Provision(async, asyncPlanID, true)
	Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
	last := osb.AwaitOperation(async, resp.Str("operation"), time.Minute)
	Expect(last.Str("state")).To(Equal("succeeded"), last.String())
	resp = osb.Deprovision(async, asyncPlanID, true)
	Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
	last = osb.AwaitOperation(async, resp.Str("operation"), time.Minute)
	Expect(last.Status).To(Equal(http.StatusGone), last.String())
}

var _ = Describe("Agora's own Vault login", func() {
	var (
		v    *devvault.Server
		root *vaultapi.Client
	)

	BeforeEach(func(ctx SpecContext) {
		// A Vault of the spec's own: Agora keeps its secrets under the
		// policy's own prefix, "agora", as a platform team would.
		v = startVault(ctx)
		root = rootClient(v.Addr)
		Expect(root.Sys().PutPolicyWithContext(ctx, "agora", agoraPolicy())).To(Succeed())
	})

	It("works with a token holding exactly the documented policy, and that token reaches nothing else", func(ctx SpecContext) {
		renewable := true
		secret, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
			Policies: []string{"agora"}, NoDefaultPolicy: true, TTL: "1h", Renewable: &renewable,
		})
		Expect(err).NotTo(HaveOccurred())
		token := secret.Auth.ClientToken
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), VaultAddr: v.Addr, AdapterVaultAddr: v.Addr, VaultPrefix: "agora",
			VaultAuth: "  token: " + token})

		By("the whole OSB lifecycle")
		osbLifecycle(ctx, b, v.Addr, "agora")

		By("the orphan sweep lists Agora's folders with it")
		page, err := adminClient(b).Sweep(ctx, "vault", "", 100, false)
		Expect(err).NotTo(HaveOccurred())
		Expect(page.Orphans).To(BeEmpty())

		By("readiness looks the token up")
		status, body := b.Readyz()
		Expect(status).To(Equal(http.StatusOK), body)

		By("and the token cannot read or write outside Agora's paths")
		limited, err := rootClient(v.Addr).Clone()
		Expect(err).NotTo(HaveOccurred())
		limited.SetToken(token)
		_, err = limited.KVv2("secret").Put(ctx, "other-team/db", map[string]any{"password": "x"})
		Expect(err).To(MatchError(ContainSubstring("403")))
		_, err = limited.Logical().ReadWithContext(ctx, "sys/policies/acl/agora")
		Expect(err).To(MatchError(ContainSubstring("403")))
	})

	It("runs the OSB lifecycle logged in with AppRole, past its tokens' max TTL", func(ctx SpecContext) {
		Expect(root.Sys().EnableAuthWithOptionsWithContext(ctx, "agora-approle", &vaultapi.EnableAuthOptions{Type: "approle"})).To(Succeed())
		_, err := root.Logical().WriteWithContext(ctx, "auth/agora-approle/role/agora", map[string]any{
			"token_policies": "agora", "token_no_default_policy": true, "token_ttl": "3s", "token_max_ttl": "6s",
		})
		Expect(err).NotTo(HaveOccurred())
		rid, err := root.Logical().ReadWithContext(ctx, "auth/agora-approle/role/agora/role-id")
		Expect(err).NotTo(HaveOccurred())
		sid, err := root.Logical().WriteWithContext(ctx, "auth/agora-approle/role/agora/secret-id", nil)
		Expect(err).NotTo(HaveOccurred())
		secretID := sid.Data["secret_id"].(string)
		secretIDFile := filepath.Join(workDir, "secret-id-"+randomHex(4))
		Expect(os.WriteFile(secretIDFile, []byte(secretID+"\n"), 0o600)).To(Succeed())

		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), VaultAddr: v.Addr, AdapterVaultAddr: v.Addr, VaultPrefix: "agora",
			VaultAuth: fmt.Sprintf("  auth: approle\n  approle:\n    role_id: %s\n    secret_id_file: %s\n    mount: agora-approle", rid.Data["role_id"], secretIDFile)})
		Expect(b.LogRecords("agora serving")).To(ContainElement(HaveKeyWithValue("vault_auth", ContainSubstring("AppRole"))))

		By("the OSB lifecycle")
		osbLifecycle(ctx, b, v.Addr, "agora")

		By("again after the first token's max TTL: Agora logged in again")
		time.Sleep(7 * time.Second)
		osbLifecycle(ctx, b, v.Addr, "agora")
		status, body := b.Readyz()
		Expect(status).To(Equal(http.StatusOK), body)
		Expect(b.LogRecords("vault: logged in again")).NotTo(BeEmpty())
		Expect(b.Log()).NotTo(ContainSubstring(secretID))
	})

	It("turns /readyz not-ready, naming Vault, when Agora's token is revoked", func(ctx SpecContext) {
		secret, err := root.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{"agora"}, TTL: "1h"})
		Expect(err).NotTo(HaveOccurred())
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), VaultAddr: v.Addr, AdapterVaultAddr: v.Addr, VaultPrefix: "agora",
			VaultAuth: "  token: " + secret.Auth.ClientToken})
		Expect(root.Auth().Token().RevokeOrphanWithContext(ctx, secret.Auth.ClientToken)).To(Succeed())

		status, body := b.Readyz()
		Expect(status).To(Equal(http.StatusServiceUnavailable), body)
		Expect(body).To(ContainSubstring(`"vault":"error: vault at ` + v.Addr))
		Expect(body).To(ContainSubstring("no longer works"))
		Expect(body).NotTo(ContainSubstring(secret.Auth.ClientToken))

		By("a bind says Vault is the owner of the fault")
		iid := newGUID()
		Expect(b.OSB.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		resp := b.OSB.Bind(iid, newGUID(), standardPlanID, false)
		Expect(resp.Status).To(BeNumerically(">=", 500), resp.String())
		Expect(strings.ToLower(resp.Str("description"))).To(ContainSubstring("vault"))
	})

	It("refuses to start with a bad token, saying so", func(ctx SpecContext) {
		cfg := filepath.Join(workDir, "bad-token-"+randomHex(4)+".yml")
		Expect(os.WriteFile(cfg, []byte(fmt.Sprintf("credentials: [{username: a, password: b}]\nvault: {addr: %q, token: not-a-token}\n", v.Addr)), 0o600)).To(Succeed())
		out := newCLIUser().Run(ctx, "", "serve", "-config", cfg)
		Expect(out.Code).To(Equal(1), out.String())
		Expect(out.Stderr).To(ContainSubstring("vault at " + v.Addr))
		Expect(out.Stderr).To(ContainSubstring("lookup-self"))
		Expect(out.Stderr).NotTo(ContainSubstring("not-a-token"))
	})
})

var _ = Describe("agora catalog check and Vault", func() {
	It("resolves every vault: reference of catalog.yml when it can reach Vault, and says when it could not check them", func(ctx SpecContext) {
		v := startVault(ctx) // holds only the secrets adapter's token
		root, err := devvault.FindRepoRoot(".")
		Expect(err).NotTo(HaveOccurred())
		catalogPath := filepath.Join(root, "catalog.yml")
		cfg := filepath.Join(workDir, "check-"+randomHex(4)+".yml")
		Expect(os.WriteFile(cfg, []byte(fmt.Sprintf("vault: {addr: %q, token: root}\n", v.Addr)), 0o600)).To(Succeed())
		user := newCLIUser()

		By("offline, the references are reported as not checked")
		out := user.Run(ctx, "", "catalog", "check", "-catalog", catalogPath)
		Expect(out.Code).To(BeZero(), out.String())
		Expect(out.Stdout).To(ContainSubstring("5 vault: references were NOT checked"))
		Expect(out.Stdout).NotTo(ContainSubstring("is valid"))

		By("with Vault, each missing secret is named at its field path")
		out = user.Run(ctx, "", "catalog", "check", "-catalog", catalogPath, "-config", cfg)
		Expect(out.Code).To(Equal(1), out.String())
		for _, adapter := range []string{"postgres", "mysql", "redis", "rabbitmq"} {
			Expect(out.Stderr).To(MatchRegexp(`producers\[\d+\]\.offerings\[\d+\]\.config\.admin_password: resolve vault reference "vault:secret/agora-config/%s#admin_password"`, adapter))
		}
		Expect(out.Stderr).NotTo(ContainSubstring("secrets-adapter"), "a reference that resolves is no problem")

		By("once the platform team stored them, the catalog is valid")
		for _, adapter := range []string{"postgres", "mysql", "redis", "rabbitmq"} {
			_, err := rootClient(v.Addr).KVv2("secret").Put(ctx, "agora-config/"+adapter, map[string]any{"admin_password": "pw-" + adapter})
			Expect(err).NotTo(HaveOccurred())
		}
		out = user.Run(ctx, "", "catalog", "check", "-catalog", catalogPath, "-config", cfg)
		Expect(out.Code).To(BeZero(), out.String())
		Expect(out.Stdout).To(ContainSubstring("is valid; its 5 vault: references resolve in Vault at " + v.Addr))
		Expect(out.String()).NotTo(ContainSubstring("pw-postgres"))

		By("a Vault that does not answer: the check says it could not check them")
		dead := filepath.Join(workDir, "dead-"+randomHex(4)+".yml")
		Expect(os.WriteFile(dead, []byte(fmt.Sprintf("vault: {addr: \"http://127.0.0.1:%d\", token: root}\n", freePort())), 0o600)).To(Succeed())
		out = user.Run(ctx, "", "catalog", "check", "-catalog", catalogPath, "-config", dead)
		Expect(out.Code).To(Equal(1), out.String())
		Expect(out.Stderr).To(ContainSubstring("could not check the 5 vault: references"))
	})
})
