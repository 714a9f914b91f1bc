package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker/vaultstore"
)

// ---- Redis: what an operator would see with redis-cli ----

// scanKeys returns the keys matching pattern (SCAN, never KEYS), sorted.
func scanKeys(ctx context.Context, pattern string) []string {
	GinkgoHelper()
	var keys []string
	iter := rdb.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	Expect(iter.Err()).NotTo(HaveOccurred())
	sort.Strings(keys)
	return keys
}

// prefixKeys returns every key under a broker's Redis prefix.
func prefixKeys(ctx context.Context, prefix string) []string {
	GinkgoHelper()
	return scanKeys(ctx, prefix+":*")
}

// instanceKeys returns the keys of one instance under prefix.
func instanceKeys(ctx context.Context, prefix, iid string) []string {
	GinkgoHelper()
	return scanKeys(ctx, prefix+":{"+iid+"}:*")
}

// deleteKeys deletes every key matching pattern, in batches.
func deleteKeys(ctx context.Context, pattern string) (int, error) {
	n := 0
	iter := rdb.Scan(ctx, 0, pattern, 500).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := rdb.Del(ctx, batch...).Err()
		n += len(batch)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 200 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

// dumpValues returns the whole content of every key under prefix, one
// string per key, whatever the key's type.
func dumpValues(ctx context.Context, prefix string) map[string]string {
	GinkgoHelper()
	out := map[string]string{}
	for _, k := range prefixKeys(ctx, prefix) {
		typ, err := rdb.Type(ctx, k).Result()
		Expect(err).NotTo(HaveOccurred())
		var v string
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			var h map[string]string
			h, err = rdb.HGetAll(ctx, k).Result()
			v = fmt.Sprint(h)
		case "set":
			var m []string
			m, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(m)
			v = fmt.Sprint(m)
		case "list":
			var l []string
			l, err = rdb.LRange(ctx, k, 0, -1).Result()
			v = fmt.Sprint(l)
		case "zset":
			var z []redis.Z
			z, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
			v = fmt.Sprint(z)
		case "stream":
			var msgs []redis.XMessage
			msgs, err = rdb.XRange(ctx, k, "-", "+").Result()
			v = fmt.Sprint(msgs)
		case "none":
			continue // expired between SCAN and TYPE
		default:
			Fail(fmt.Sprintf("unexpected Redis type %s of %s", typ, k))
		}
		if errors.Is(err, redis.Nil) {
			continue
		}
		Expect(err).NotTo(HaveOccurred())
		out[k] = v
	}
	return out
}

// expectNoSecretsInRedis fails when any value under prefix contains one of
// secrets (credential values that must live in Vault only).
func expectNoSecretsInRedis(ctx context.Context, prefix string, secrets ...string) {
	GinkgoHelper()
	values := dumpValues(ctx, prefix)
	for k, v := range values {
		for _, s := range secrets {
			Expect(s).NotTo(BeEmpty())
			Expect(v).NotTo(ContainSubstring(s), "Redis key %s holds a credential value", k)
		}
	}
}

// bindingRecord reads the stored binding (nil when there is none).
func bindingRecord(ctx context.Context, prefix, iid, bid string) *string {
	GinkgoHelper()
	v, err := rdb.HGet(ctx, prefix+":{"+iid+"}:bindings", bid).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	Expect(err).NotTo(HaveOccurred())
	return &v
}

// jobStream is the job queue's stream, jobConsumers the set of its live
// consumers (broker/redisstore/doc.go).
func jobStream(prefix string) string    { return prefix + ":{jobs}:stream" }
func jobConsumers(prefix string) string { return prefix + ":{jobs}:consumers" }

// pendingJobs is XPENDING of the job stream's consumer group.
func pendingJobs(ctx context.Context, prefix string) []redis.XPendingExt {
	GinkgoHelper()
	p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: jobStream(prefix), Group: "agora-workers", Start: "-", End: "+", Count: 1000,
	}).Result()
	Expect(err).NotTo(HaveOccurred())
	return p
}

// ---- Vault: what an operator (root token) or an app would see ----

// rootClient is a vault/api client with the root token, configured
// explicitly (never from VAULT_* in the environment).
func rootClient(addr string) *vaultapi.Client {
	GinkgoHelper()
	c, err := vaultstore.NewClient(addr, "root", 10*time.Second)
	Expect(err).NotTo(HaveOccurred())
	return c
}

// appClient is a client without a token, like an app before it logs in.
func appClient(addr string) *vaultapi.Client {
	GinkgoHelper()
	c, err := vaultstore.NewClient(addr, "", 10*time.Second)
	Expect(err).NotTo(HaveOccurred())
	c.ClearToken()
	return c
}

func seedAdapterToken(ctx context.Context, addr string) {
	GinkgoHelper()
	_, err := rootClient(addr).KVv2("secret").Put(ctx, "agora-config/secrets-adapter", map[string]any{"token": "root"})
	Expect(err).NotTo(HaveOccurred(), "seed the secrets adapter's token into Vault at %s", addr)
}

// bindingSecretPath is where vaultstore keeps a binding's credentials,
// below the KV v2 mount "secret".
func bindingSecretPath(iid, bid string) string {
	return bindingSecretPathUnder(vaultPrefix(), iid, bid)
}

// bindingSecretPathUnder is bindingSecretPath for a broker whose
// vault.prefix is prefix.
func bindingSecretPathUnder(prefix, iid, bid string) string {
	return prefix + "/instances/" + vaultstore.Segment(iid) + "/bindings/" + vaultstore.Segment(bid)
}

// vaultStatus returns the HTTP status of a root GET of /v1/<path>.
func vaultStatus(ctx context.Context, addr, path string) int {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v1/"+path, nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("X-Vault-Token", "root")
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	return resp.StatusCode
}

// expectBindingSecret checks the binding's credentials in the broker's
// Vault: present (data and metadata) or completely gone (metadata too).
func expectBindingSecret(ctx context.Context, addr, iid, bid string, present bool) map[string]any {
	GinkgoHelper()
	path := bindingSecretPath(iid, bid)
	if !present {
		Expect(vaultStatus(ctx, addr, "secret/data/"+path)).To(Equal(http.StatusNotFound), "secret/data/%s still exists", path)
		Expect(vaultStatus(ctx, addr, "secret/metadata/"+path)).To(Equal(http.StatusNotFound), "secret/metadata/%s still exists (versions not destroyed)", path)
		return nil
	}
	Expect(vaultStatus(ctx, addr, "secret/metadata/"+path)).To(Equal(http.StatusOK))
	s, err := rootClient(addr).KVv2("secret").Get(ctx, path)
	Expect(err).NotTo(HaveOccurred(), "read secret/data/%s", path)
	return s.Data
}

// appLogin logs in with a binding's AppRole credentials and returns the
// token, or the error Vault answered.
func appLogin(ctx context.Context, creds map[string]any) (string, error) {
	GinkgoHelper()
	c := appClient(creds["vault_addr"].(string))
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

// appWriteRead writes and reads back a secret in the binding's folder with
// token, as an app would.
func appWriteRead(ctx context.Context, creds map[string]any, token, name, value string) error {
	c := appClient(creds["vault_addr"].(string))
	c.SetToken(token)
	kv := c.KVv2(creds["kv_mount"].(string))
	path := creds["path"].(string) + "/" + name
	if _, err := kv.Put(ctx, path, map[string]any{"value": value}); err != nil {
		return err
	}
	s, err := kv.Get(ctx, path)
	if err != nil {
		return err
	}
	if s.Data["value"] != value {
		return fmt.Errorf("read back %v, wrote %q", s.Data["value"], value)
	}
	return nil
}

// ---- gateProxy: a Vault that is slow on demand ----

// gateProxy is a reverse proxy in front of a Vault that can hold requests
// whose path contains a chosen string until released: an adapter call that
// takes as long as a spec needs, without changing the adapter.
type gateProxy struct {
	URL    string
	server *http.Server
	proxy  *httputil.ReverseProxy
	done   chan struct{}

	mu    sync.Mutex
	gates []*gate
}

type gate struct {
	match   string
	reached chan struct{}
	once    sync.Once
	release chan struct{}
	relOnce sync.Once
	hits    atomic.Int32
}

// Hits is how many matching requests arrived so far.
func (g *gate) Hits() int { return int(g.hits.Load()) }

// Reached is closed once a request matching the gate arrived.
func (g *gate) Reached() <-chan struct{} { return g.reached }

// Release lets held and later matching requests through.
func (g *gate) Release() { g.relOnce.Do(func() { close(g.release) }) }

func newGateProxy(target string) *gateProxy {
	GinkgoHelper()
	u, err := url.Parse(target)
	Expect(err).NotTo(HaveOccurred())
	p := &gateProxy{proxy: httputil.NewSingleHostReverseProxy(u), done: make(chan struct{})}
	p.proxy.ErrorLog = nil
	ln := listenLocal()
	p.URL = "http://" + ln.Addr().String()
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		_ = p.server.Serve(ln)
		close(p.done)
	}()
	return p
}

// Hold makes requests whose path contains match wait until the returned
// gate is released (at the latest when the spec ends).
func (p *gateProxy) Hold(match string) *gate {
	g := &gate{match: match, reached: make(chan struct{}), release: make(chan struct{})}
	p.mu.Lock()
	p.gates = append(p.gates, g)
	p.mu.Unlock()
	DeferCleanup(func() {
		g.Release()
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range p.gates {
			if x == g {
				p.gates = append(p.gates[:i], p.gates[i+1:]...)
				break
			}
		}
	})
	return g
}

func (p *gateProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	var held []*gate
	for _, g := range p.gates {
		if strings.Contains(r.URL.Path, g.match) {
			held = append(held, g)
		}
	}
	p.mu.Unlock()
	for _, g := range held {
		g.hits.Add(1)
		g.once.Do(func() { close(g.reached) })
		select {
		case <-g.release:
		case <-r.Context().Done():
			// The caller went away (a killed broker): drop the request,
			// as a connection reset would.
			return
		}
	}
	p.proxy.ServeHTTP(w, r)
}

func (p *gateProxy) Close() {
	p.mu.Lock()
	for _, g := range p.gates {
		g.Release()
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.server.Shutdown(ctx)
	<-p.done
}
