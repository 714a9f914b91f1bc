package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// backendCase is one backend adapter of the repository's catalog.yml, and
// how a test sees its real server.
type backendCase struct {
	offering            string
	syncPlan, asyncPlan string
	// badParams are provision parameters the offering refuses, each with
	// the word the 400's description must contain.
	badParams []badParam
	// names checks the credentials name what the adapter's README says
	// it creates for instance iid.
	names func(iid string, creds map[string]any)
	// work does real work with a binding's credentials, as an app would.
	work func(ctx context.Context, creds map[string]any) error
	// rejected returns nil when the server refuses the credentials.
	rejected func(ctx context.Context, creds map[string]any) error
	// leftovers lists what of instance iid exists on the server.
	leftovers func(ctx context.Context, iid string) []string
	// isolated returns nil when credsA cannot reach credsB's instance.
	isolated func(ctx context.Context, credsA, credsB map[string]any) error
}

type badParam struct {
	params map[string]any
	named  string
}

func credString(creds map[string]any, key string) string {
	GinkgoHelper()
	s, ok := creds[key].(string)
	Expect(ok).To(BeTrue(), "credentials have no string %q: %v", key, credKeys(creds))
	Expect(s).NotTo(BeEmpty(), "credentials' %q is empty", key)
	return s
}

func credKeys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

var unknownParam = badParam{params: map[string]any{"colour": "red"}, named: "colour"}

var backendCases = []backendCase{
	{
		offering: "postgres", syncPlan: "small", asyncPlan: "large",
		badParams: []badParam{unknownParam, {params: map[string]any{"extensions": []string{"postgis"}}, named: "extensions[0]"}},
		names: func(iid string, creds map[string]any) {
			Expect(credString(creds, "database")).To(HavePrefix(pgInstancePrefix(iid) + "_"))
			Expect(credString(creds, "username")).To(HavePrefix(pgInstancePrefix(iid) + "_b_"))
			Expect(credString(creds, "uri")).To(HavePrefix("postgres://"))
		},
		work: pgWork, rejected: pgRejected, leftovers: pgLeftovers,
		isolated: func(ctx context.Context, credsA, credsB map[string]any) error {
			userA, dbB := credString(credsA, "username"), credString(credsB, "database")
			// Trust auth lets any password in, so CONNECT is the whole
			// barrier: revoked from PUBLIC, granted to nobody but the owner.
			var can, canOwn bool
			Expect(pgAdmin(ctx).QueryRow(ctx, `SELECT has_database_privilege($1, $2, 'CONNECT'), has_database_privilege($1, $3, 'CONNECT')`,
				userA, dbB, credString(credsA, "database")).Scan(&can, &canOwn)).To(Succeed())
			if !canOwn {
				return fmt.Errorf("%s lacks CONNECT on its own database: the check proves nothing", userA)
			}
			if can {
				return fmt.Errorf("%s has CONNECT on %s, another instance's database", userA, dbB)
			}
			c, err := pgConnect(ctx, uriWithPath(credString(credsA, "uri"), dbB))
			if err == nil {
				_ = c.Close(ctx)
				return fmt.Errorf("%s connected to %s, another instance's database", userA, dbB)
			}
			if !strings.Contains(err.Error(), "permission denied") {
				return fmt.Errorf("connecting to %s failed, but not for lack of permission: %w", dbB, err)
			}
			return nil
		},
	},
	{
		offering: "mysql", syncPlan: "small", asyncPlan: "async",
		badParams: []badParam{unknownParam},
		names: func(iid string, creds map[string]any) {
			Expect(credString(creds, "database")).To(HavePrefix(mysqlInstancePrefix(iid)))
			Expect(credString(creds, "username")).To(HavePrefix(mysqlInstancePrefix(iid)))
			Expect(credString(creds, "uri")).To(HavePrefix("mysql://"))
		},
		work: mysqlWork, rejected: mysqlRejected, leftovers: mysqlLeftovers,
		isolated: func(ctx context.Context, credsA, credsB map[string]any) error {
			dbB := credString(credsB, "database")
			_, done, err := mysqlSession(ctx, uriWithPath(credString(credsA, "uri"), dbB))
			if err == nil {
				done()
				return fmt.Errorf("%s opened %s, another instance's database", credsA["username"], dbB)
			}
			if !strings.Contains(err.Error(), "1044") { // ER_DBACCESS_DENIED_ERROR
				return fmt.Errorf("opening %s failed, but not with access denied: %w", dbB, err)
			}
			return nil
		},
	},
	{
		offering: "redis", syncPlan: "small", asyncPlan: "async",
		badParams: []badParam{unknownParam},
		names: func(iid string, creds map[string]any) {
			Expect(credString(creds, "key_prefix")).To(Equal(redisKeyPrefix(iid)))
			Expect(credString(creds, "username")).To(HavePrefix(redisUserPrefix(iid)))
			Expect(credString(creds, "password")).NotTo(BeEmpty())
		},
		work: redisWork, rejected: redisRejected, leftovers: redisLeftovers,
		isolated: func(ctx context.Context, credsA, credsB map[string]any) error {
			keyB := credString(credsB, "key_prefix") + "private"
			b := redisClientFor(credsB)
			defer b.Close()
			if err := b.Set(ctx, keyB, "b-only", 0).Err(); err != nil {
				return fmt.Errorf("B writes its own key: %w", err)
			}
			a := redisClientFor(credsA)
			defer a.Close()
			if err := a.Get(ctx, keyB).Err(); !isNoPerm(err) {
				return fmt.Errorf("A reads B's key: want NOPERM, got %v", err)
			}
			if err := a.Set(ctx, keyB, "a-was-here", 0).Err(); !isNoPerm(err) {
				return fmt.Errorf("A writes B's key: want NOPERM, got %v", err)
			}
			if err := a.Del(ctx, keyB).Err(); !isNoPerm(err) {
				return fmt.Errorf("A deletes B's key: want NOPERM, got %v", err)
			}
			if got, err := b.Get(ctx, keyB).Result(); err != nil || got != "b-only" {
				return fmt.Errorf("B's key after A's attempts = %q, %v", got, err)
			}
			return nil
		},
	},
	{
		offering: "rabbitmq", syncPlan: "standard", asyncPlan: "async",
		badParams: []badParam{unknownParam},
		names: func(iid string, creds map[string]any) {
			Expect(credString(creds, "vhost")).To(Equal(rabbitVhost(iid)))
			Expect(credString(creds, "username")).To(HavePrefix(rabbitVhost(iid) + "-"))
			Expect(credString(creds, "uri")).To(HavePrefix("amqp://"))
		},
		work: rabbitWork, rejected: rabbitRejected, leftovers: rabbitLeftovers,
		isolated: func(ctx context.Context, credsA, credsB map[string]any) error {
			vhostB := credString(credsB, "vhost")
			if err := rabbitRejected(ctx, map[string]any{"uri": uriWithPath(credString(credsA, "uri"), vhostB), "username": credsA["username"]}); err != nil {
				return fmt.Errorf("A on B's vhost %s: %w", vhostB, err)
			}
			return nil
		},
	},
}

var _ = Describe("every backend adapter through Agora, against the real servers", Ordered, ContinueOnFailure, func() {
	var (
		b         *Broker
		offerings = map[string]*OfferingClient{}
	)

	BeforeAll(func(ctx SpecContext) {
		By("seeding the adapters' admin passwords where catalog.yml's vault: references point")
		seedBackendSecrets(ctx, vault.Addr)
		By("serving the repository's catalog.yml")
		b = StartBroker(ctx, BrokerOptions{Name: "backends", Prefix: specPrefix(), Catalog: repoCatalog()})
		for _, c := range backendCases {
			offerings[c.offering] = offeringFromCatalog(b.OSB, c.offering)
		}
	}, NodeTimeout(60*time.Second))

	for _, c := range backendCases {
		Context(c.offering, func() {
			It("provisions, binds twice with distinct working credentials, revokes them at unbind and leaves nothing after deprovision", func(ctx SpecContext) {
				o := offerings[c.offering]
				iid, bid1, bid2 := newGUID(), newGUID(), newGUID()
				Expect(c.leftovers(ctx, iid)).To(BeEmpty(), "a fresh instance ID already has things on the server")

				By("provision on the sync plan: 201")
				o.DeprovisionLater(iid, c.syncPlan)
				resp := o.Provision(iid, c.syncPlan, nil, false)
				Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())

				By("bind: 201 with credentials that name the instance's objects and do real work")
				resp = o.Bind(iid, bid1, c.syncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
				creds1 := resp.Credentials()
				c.names(iid, creds1)
				Expect(c.work(ctx, creds1)).To(Succeed())
				Expect(c.leftovers(ctx, iid)).NotTo(BeEmpty(), "the leftover check sees nothing of a live instance: it would prove nothing")

				By("a second binding: 201 with other credentials, which work too")
				resp = o.Bind(iid, bid2, c.syncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
				creds2 := resp.Credentials()
				c.names(iid, creds2)
				Expect(creds2["username"]).NotTo(Equal(creds1["username"]))
				Expect(creds2["password"]).NotTo(Equal(creds1["password"]))
				Expect(c.work(ctx, creds2)).To(Succeed())
				expectNoSecretsInRedis(ctx, b.Prefix, credString(creds1, "password"), credString(creds2, "password"))

				By("unbind the first: 200; its credentials are refused, the second's still work")
				resp = o.Unbind(iid, bid1, c.syncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
				Expect(c.rejected(ctx, creds1)).To(Succeed())
				Expect(c.work(ctx, creds2)).To(Succeed())

				By("unbind the second: 200; refused too")
				resp = o.Unbind(iid, bid2, c.syncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
				Expect(c.rejected(ctx, creds2)).To(Succeed())

				By("deprovision: 200, and nothing of the instance is left on the server")
				resp = o.Deprovision(iid, c.syncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
				Expect(c.leftovers(ctx, iid)).To(BeEmpty())
				Expect(instanceKeys(ctx, b.Prefix, iid)).To(BeEmpty(), "Agora still holds state of the deleted instance")
			}, SpecTimeout(60*time.Second))

			It("runs the async plan in the background: 202, polled to succeeded, bind, async deprovision to 410, nothing left", func(ctx SpecContext) {
				o := offerings[c.offering]
				iid, bid := newGUID(), newGUID()

				By("provision with accepts_incomplete: 202, last_operation reaches succeeded")
				o.DeprovisionLater(iid, c.asyncPlan)
				resp := o.Provision(iid, c.asyncPlan, nil, true)
				Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
				resp = b.OSB.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
				Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
				Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())

				By("bind: 201 with working credentials")
				resp = o.Bind(iid, bid, c.asyncPlan, false)
				Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
				creds := resp.Credentials()
				c.names(iid, creds)
				Expect(c.work(ctx, creds)).To(Succeed())

				By("deprovision with accepts_incomplete (the binding still in place): 202, then last_operation 410")
				resp = o.Deprovision(iid, c.asyncPlan, true)
				Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
				resp = b.OSB.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
				Expect(resp.Status).To(Equal(http.StatusGone), resp.String())

				By("the binding's credentials are refused and nothing of the instance is left")
				Expect(c.rejected(ctx, creds)).To(Succeed())
				Expect(c.leftovers(ctx, iid)).To(BeEmpty())
			}, SpecTimeout(60*time.Second))

			It("refuses bad parameters with a 400 that names them, creating nothing", func(ctx SpecContext) {
				o := offerings[c.offering]
				for _, bad := range c.badParams {
					for _, plan := range []string{c.syncPlan, c.asyncPlan} {
						iid := newGUID()
						o.DeprovisionLater(iid, plan)
						resp := o.Provision(iid, plan, bad.params, true)
						Expect(resp.Status).To(Equal(http.StatusBadRequest), "plan %s, parameters %v: %s", plan, bad.params, resp)
						fmt.Fprintf(GinkgoWriter, "%s %s %v: %s\n", c.offering, plan, bad.params, resp)
						Expect(resp.Str("description")).To(ContainSubstring(bad.named), "plan %s: the description does not name the offending parameter: %s", plan, resp)
						Expect(b.OSB.GetInstance(iid).Status).To(Equal(http.StatusNotFound))
						Expect(instanceKeys(ctx, b.Prefix, iid)).To(BeEmpty(), "Agora recorded a refused instance")
						Expect(c.leftovers(ctx, iid)).To(BeEmpty(), "a refused provision created something on the server")
					}
				}
			}, SpecTimeout(30*time.Second))

			It("keeps one instance's binding out of another instance", func(ctx SpecContext) {
				o := offerings[c.offering]
				iid1, iid2 := newGUID(), newGUID()
				creds := map[string]map[string]any{}
				for _, iid := range []string{iid1, iid2} {
					o.DeprovisionLater(iid, c.syncPlan)
					resp := o.Provision(iid, c.syncPlan, nil, false)
					Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
					resp = o.Bind(iid, newGUID(), c.syncPlan, false)
					Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
					creds[iid] = resp.Credentials()
					Expect(c.work(ctx, creds[iid])).To(Succeed())
				}

				By("instance 1's binding cannot reach instance 2, nor the other way round")
				Expect(c.isolated(ctx, creds[iid1], creds[iid2])).To(Succeed())
				Expect(c.isolated(ctx, creds[iid2], creds[iid1])).To(Succeed())
				Expect(c.work(ctx, creds[iid2])).To(Succeed())

				By("deprovision both, bindings still in place: nothing left of either")
				for _, iid := range []string{iid1, iid2} {
					resp := o.Deprovision(iid, c.syncPlan, false)
					Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
					Expect(c.rejected(ctx, creds[iid])).To(Succeed())
					Expect(c.leftovers(ctx, iid)).To(BeEmpty())
				}
			}, SpecTimeout(60*time.Second))
		})
	}
})
