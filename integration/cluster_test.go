package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/internal/syncbuf"
)

// ---- a Redis Cluster of the spec's own ----

// redisCluster is three redis-server masters on free loopback ports,
// joined with `redis-cli --cluster create`, that only these specs use.
// Agora promises to run on a Cluster (every key of one operation shares a
// hash tag); this keeps that promise tested.
type redisCluster struct {
	Addrs  []string
	Client *redis.ClusterClient
}

// startRedisCluster starts the masters and creates the cluster; all of it
// is torn down when the current node ends (BeforeAll: the container).
func startRedisCluster(ctx context.Context) *redisCluster {
	GinkgoHelper()
	server, err := exec.LookPath("redis-server")
	Expect(err).NotTo(HaveOccurred(), "the Cluster specs start their own Redis Cluster: redis-server must be on PATH")
	cli, err := exec.LookPath("redis-cli")
	Expect(err).NotTo(HaveOccurred(), "the Cluster specs create their Redis Cluster with redis-cli, which must be on PATH")
	dir, err := os.MkdirTemp(workDir, "redis-cluster-")
	Expect(err).NotTo(HaveOccurred())

	c := &redisCluster{}
	for i := range 3 {
		c.Addrs = append(c.Addrs, startClusterNode(ctx, server, filepath.Join(dir, strconv.Itoa(i))))
	}
	create := exec.CommandContext(ctx, cli, append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	out, err := create.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "redis-cli --cluster create:\n%s", out)

	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, DialTimeout: time.Second})
	DeferCleanup(c.Client.Close)
	// Every node must agree that all 16384 slots are served before Agora
	// connects, or its first commands meet CLUSTERDOWN.
	Eventually(func() error {
		for _, addr := range c.Addrs {
			n := redis.NewClient(&redis.Options{Addr: addr})
			info, err := n.ClusterInfo(ctx).Result()
			_ = n.Close()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return fmt.Errorf("%s: %s", addr, info)
			}
		}
		return c.Client.Ping(ctx).Err()
	}).WithContext(ctx).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	return c
}

// startClusterNode starts one cluster-enabled redis-server keeping its
// nodes.conf (and nothing else) in dir, and returns its address.
func startClusterNode(ctx context.Context, bin, dir string) string {
	GinkgoHelper()
	Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
	for attempt := 0; attempt < 3; attempt++ {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort())
		_, port, _ := strings.Cut(addr, ":")
		log := &syncbuf.Buffer{}
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", dir,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+port+".conf",
			"--save", "", "--appendonly", "no")
		cmd.Stdout, cmd.Stderr = log, log
		cmd.SysProcAttr = childProcAttr()
		Expect(cmd.Start()).To(Succeed())
		exited := make(chan struct{})
		go func() {
			_ = cmd.Wait()
			close(exited)
		}()
		DeferCleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			if CurrentSpecReport().Failed() {
				fmt.Fprintf(GinkgoWriter, "---- log of cluster node %s ----\n%s\n", addr, log.String())
			}
		})
		n := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second})
		ok := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !ok; {
			select {
			case <-exited:
				deadline = time.Now()
			case <-ctx.Done():
				Fail("interrupted while starting a cluster node")
			default:
				ok = n.Ping(ctx).Err() == nil
				if !ok {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		_ = n.Close()
		if ok {
			return addr
		}
		if !strings.Contains(log.String(), "Address already in use") {
			Fail("cluster node did not answer on " + addr + ":\n" + log.String())
		}
	}
	Fail("a cluster node found no free port in three tries")
	return ""
}

// mastersHolding counts the masters that hold keys under prefix: more
// than one proves the state really is spread over the Cluster.
func (c *redisCluster) mastersHolding(ctx context.Context, prefix string) int {
	GinkgoHelper()
	var mu sync.Mutex
	n := 0
	Expect(c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, _, err := m.Scan(ctx, 0, prefix+":*", 1000).Result()
		if err == nil && len(keys) > 0 {
			mu.Lock()
			n++
			mu.Unlock()
		}
		return err
	})).To(Succeed())
	return n
}

var _ = Describe("Agora on a three-master Redis Cluster", Ordered, func() {
	var cluster *redisCluster
	BeforeAll(func(ctx SpecContext) {
		cluster = startRedisCluster(ctx)
	}, NodeTimeout(60*time.Second))

	start := func(ctx SpecContext, name, prefix string) *Broker {
		return StartBroker(ctx, BrokerOptions{Name: name, Prefix: prefix, RedisClusterAddrs: cluster.Addrs})
	}

	It("runs the synchronous lifecycle: provision, bind (working credentials), unbind, deprovision", func(ctx SpecContext) {
		b := start(ctx, "cluster", specPrefix())
		osb := b.OSB
		iids := []string{newGUID(), newGUID(), newGUID(), newGUID()}
		for _, iid := range iids {
			resp := osb.Provision(iid, standardPlanID, false)
			Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		}
		Expect(cluster.mastersHolding(ctx, b.Prefix)).To(BeNumerically(">", 1), "the instances' keys all landed on one master")

		iid, bid := iids[0], newGUID()
		resp := osb.GetInstance(iid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		resp = osb.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds := resp.Credentials()
		token, err := appLogin(ctx, creds)
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, creds, token, "db", "s3cret")).To(Succeed())
		Expect(osb.Bind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusOK), "an identical repeat")
		Expect(osb.GetBinding(iid, bid).Credentials()).To(Equal(creds))

		resp = osb.Unbind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		_, err = appLogin(ctx, creds)
		Expect(err).To(HaveOccurred(), "the secret_id still logs in after unbind")
		for _, iid := range iids {
			resp = osb.Deprovision(iid, standardPlanID, false)
			Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
			Expect(osb.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusGone))
			Expect(osb.GetInstance(iid).Status).To(Equal(http.StatusNotFound))
		}
	}, SpecTimeout(90*time.Second))

	It("runs the asynchronous lifecycle: 202s, last_operation to succeeded, and 410 after the deprovision", func(ctx SpecContext) {
		b := start(ctx, "cluster", specPrefix())
		osb := b.OSB
		iid, bid := newGUID(), newGUID()
		resp := osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		resp = osb.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
		Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())

		resp = osb.Bind(iid, bid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		resp = osb.AwaitBindingOperation(iid, bid, resp.Str("operation"), 30*time.Second)
		Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())
		resp = osb.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		creds := resp.Credentials()
		_, err := appLogin(ctx, creds)
		Expect(err).NotTo(HaveOccurred())

		resp = osb.Deprovision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		resp = osb.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
		Expect(resp.Status).To(Equal(http.StatusGone), resp.String())
		_, err = appLogin(ctx, creds)
		Expect(err).To(HaveOccurred(), "the binding's credentials outlived its instance")
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)
	}, SpecTimeout(90*time.Second))

	It("lets two replicas run 20 async provisions and their deprovisions, each job exactly once", func(ctx SpecContext) {
		prefix := specPrefix()
		replicas := []*Broker{start(ctx, "replica-1", prefix), start(ctx, "replica-2", prefix)}
		jobsExactlyOnce(ctx, replicas, prefix, cluster.Client)
		Expect(cluster.mastersHolding(ctx, prefix)).To(BeNumerically(">", 1), "the tombstones all landed on one master")
	}, SpecTimeout(3*time.Minute))
})
