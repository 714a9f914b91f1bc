package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/internal/devvault"
	"github.com/agora-osb/agora/internal/syncbuf"
)

// redisAddr is the shared Redis every suite runs against. Other test runs
// use it at the same time: everything here stays under runPrefix.
const redisAddr = "127.0.0.1:6379"

// Suite-wide fixtures, set once in BeforeSuite.
var (
	// agoraBin is the freshly built `agora` binary.
	agoraBin string
	// devvaultBin is the dev Vault server binary (built once, cached).
	devvaultBin string
	// vault is the suite's main dev Vault; specs that kill a Vault start
	// their own.
	vault *devvault.Server
	// vaultProxy sits in front of vault; specs route the secrets adapter
	// through it to hold chosen requests (a slow backend, on demand).
	vaultProxy *gateProxy
	// rdb talks to the shared Redis, for inspecting (never flushing) it.
	rdb *redis.Client
	// runPrefix starts every Redis key and Vault path this run creates.
	runPrefix string
	// workDir holds per-run files: configs, catalogs.
	workDir string
)

func TestIntegration(t *testing.T) {
	if testing.Short() {
		// make unit is the fast loop; these suites need real Redis, a
		// built binary and a real Vault (make test, make integration).
		t.Skip("integration suites skipped with -short")
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, "Agora integration")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	rdb = redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: 2 * time.Second})
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := rdb.Ping(pingCtx).Err()
	cancel()
	Expect(err).NotTo(HaveOccurred(),
		"Redis at %s does not answer: the integration suite needs a real Redis there (for example `redis-server --port 6379`); it never skips", redisAddr)

	runPrefix = "agora-it-" + randomHex(6)
	fmt.Fprintf(GinkgoWriter, "run prefix (Redis keys, Vault paths): %s\n", runPrefix)
	DeferCleanup(func(ctx SpecContext) {
		n, err := deleteKeys(ctx, runPrefix+"*")
		fmt.Fprintf(GinkgoWriter, "deleted %d Redis keys under %s\n", n, runPrefix)
		Expect(err).NotTo(HaveOccurred())
		Expect(rdb.Close()).To(Succeed())
	}, NodeTimeout(30*time.Second))

	workDir, err = os.MkdirTemp("", "agora-integration-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, workDir)

	root, err := devvault.FindRepoRoot(".")
	Expect(err).NotTo(HaveOccurred())

	By("building the agora binary")
	agoraBin = filepath.Join(workDir, "agora")
	build := exec.CommandContext(ctx, "go", "build", "-o", agoraBin, "./cmd/agora")
	build.Dir = root
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build ./cmd/agora:\n%s", out)

	By("building (or reusing) and starting the dev Vault")
	devvaultBin, err = devvault.EnsureBinary(ctx, root, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	vault = startVault(ctx)
	vaultProxy = newGateProxy(vault.Addr)
	DeferCleanup(vaultProxy.Close)
}, NodeTimeout(10*time.Minute))

// startVault starts a dev Vault holding what every Agora catalog here
// references (the secrets adapter's token), stopped when the current node
// ends. Its log is shown when the spec fails.
func startVault(ctx context.Context) *devvault.Server {
	GinkgoHelper()
	return startVaultAt(ctx, "")
}

// startVaultAt is startVault on a given listen address ("" for a free port).
func startVaultAt(ctx context.Context, addr string) *devvault.Server {
	GinkgoHelper()
	log := &syncbuf.Buffer{}
	srv, err := devvault.Start(ctx, devvaultBin, devvault.Options{Addr: addr, RootToken: "root", Stderr: log})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		_ = srv.Stop()
		if CurrentSpecReport().Failed() {
			fmt.Fprintf(GinkgoWriter, "---- dev Vault %s log ----\n%s\n", srv.Addr, log.String())
		}
	})
	seedAdapterToken(ctx, srv.Addr)
	return srv
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newGUID returns a random RFC 4122 version 4 GUID, like the IDs platforms send.
func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
