// Package devvault builds and runs the real, in-memory Vault server from
// tools/devvault for `agora dev` and for integration tests.
//
// tools/devvault is a separate Go module (it links Vault's core, whose
// dependency tree must stay out of Agora's main module), so it is compiled
// on first use with the local `go` toolchain and cached; see EnsureBinary.
// Start then runs it as a child process; see Start.
//
// At startup the dev Vault has these mounts:
//
//	secret/    kv, version 2
//	approle/   auth method approle
//
// plus Vault's defaults (sys/, identity/, cubbyhole/, auth token/). Code
// that enables approle itself should treat "path is already in use at
// approle/" as success, or check GET /v1/sys/auth first.
//
// This package uses the standard library only.
package devvault

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// ToolDir is the location of the devvault module relative to the repo root.
const ToolDir = "tools/devvault"

// Environment variables understood by EnsureBinary.
const (
	// EnvBin names a prebuilt devvault binary to use instead of building one.
	EnvBin = "AGORA_DEVVAULT_BIN"
	// EnvCacheDir overrides the cache directory (default: os.UserCacheDir()/agora).
	EnvCacheDir = "AGORA_CACHE_DIR"
)

// progressInterval is how often EnsureBinary reports that a build is still
// running.
const progressInterval = 15 * time.Second

// FindRepoRoot walks up from dir until it finds a directory containing
// tools/devvault/go.mod and returns that directory (as an absolute path).
func FindRepoRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, filepath.FromSlash(ToolDir), "go.mod")); err == nil && fi.Mode().IsRegular() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("devvault: no %s/go.mod found in %s or any parent directory", ToolDir, abs)
		}
		d = parent
	}
}

// CacheDir returns the directory the built binary is cached in:
// $AGORA_CACHE_DIR if set, else os.UserCacheDir()/agora.
func CacheDir() (string, error) {
	if d := os.Getenv(EnvCacheDir); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("devvault: no cache directory (set %s): %w", EnvCacheDir, err)
	}
	return filepath.Join(d, "agora"), nil
}

// sourceHash hashes the inputs of the devvault build found in toolDir:
// go.mod, go.sum and every *.go file (recursively; hidden, "_"-prefixed and
// testdata directories are skipped, as the go tool does). File names are
// part of the hash, so adding, removing or renaming a file changes it.
func sourceHash(toolDir string) (string, error) {
	var files []string
	err := filepath.WalkDir(toolDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != toolDir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".go") {
			rel, err := filepath.Rel(toolDir, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("devvault: hashing %s: %w", toolDir, err)
	}
	if !containsString(files, "go.mod") {
		return "", fmt.Errorf("devvault: %s has no go.mod", toolDir)
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "devvault-cache-v1 %s/%s\n", runtime.GOOS, runtime.GOARCH)
	for _, rel := range files {
		data, err := os.ReadFile(filepath.Join(toolDir, filepath.FromSlash(rel)))
		if err != nil {
			return "", fmt.Errorf("devvault: hashing %s: %w", toolDir, err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// binaryName is the cached binary's file name for a given source hash.
func binaryName(hash string) string {
	name := "devvault-" + hash[:16]
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	return name
}

// CachedBinaryPath returns where EnsureBinary keeps (or would build) the
// binary for the current tools/devvault sources under repoRoot.
func CachedBinaryPath(repoRoot string) (string, error) {
	hash, err := sourceHash(filepath.Join(repoRoot, filepath.FromSlash(ToolDir)))
	if err != nil {
		return "", err
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, binaryName(hash)), nil
}

// buildMu serialises builds within this process; buildLock (a file lock)
// does the same across processes, e.g. parallel `go test` packages.
var buildMu sync.Mutex

// EnsureBinary builds tools/devvault (found under repoRoot) into the cache
// directory on first use and returns the binary path.
//
// The cache directory is $AGORA_CACHE_DIR if set, else
// os.UserCacheDir()/agora. The binary name includes a hash of tools/devvault's
// go.mod, go.sum and *.go files, so any change causes a rebuild; an existing
// binary is reused. The build goes to a temporary file that is renamed into
// place, so a killed build never leaves a broken cached binary. Progress
// messages are written to progress (may be nil). If $AGORA_DEVVAULT_BIN is
// set, it is returned without building.
func EnsureBinary(ctx context.Context, repoRoot string, progress io.Writer) (string, error) {
	if bin := os.Getenv(EnvBin); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("devvault: %s: %w", EnvBin, err)
		}
		return bin, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	binPath, err := CachedBinaryPath(repoRoot)
	if err != nil {
		return "", err
	}
	if isExecutableFile(binPath) {
		touch(binPath)
		return binPath, nil
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	cacheDir := filepath.Dir(binPath)
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("devvault: %w", err)
	}
	unlock, err := buildLock(ctx, binPath+".lock", progressInterval, func(waited time.Duration) {
		if waited == 0 {
			fmt.Fprintf(progress, "waiting for another process that is building dev Vault into %s (a first build takes ~4 minutes on 2 cores)...\n", binPath)
			return
		}
		fmt.Fprintf(progress, "still waiting for the other dev Vault build (%s so far)...\n", waited.Round(time.Second))
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutableFile(binPath) { // built by someone else meanwhile
		return binPath, nil
	}
	if err := build(ctx, filepath.Join(repoRoot, filepath.FromSlash(ToolDir)), binPath, progress); err != nil {
		return "", err
	}
	pruneCache(cacheDir, filepath.Base(binPath), time.Now().Add(-pruneAge))
	return binPath, nil
}

// pruneAge is how long a cached binary of other sources (~150 MB each) may
// go unused before a new build deletes it.
const pruneAge = 7 * 24 * time.Hour

// touch marks a cached binary as recently used (best effort).
func touch(path string) {
	now := time.Now()
	_ = os.Chtimes(path, now, now)
}

// pruneCache removes devvault binaries (and their lock and leftover temp
// files) other than keep that were last used before cutoff. Best effort.
func pruneCache(dir, keep string, cutoff time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "devvault-") || strings.HasPrefix(name, keep) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

func build(ctx context.Context, toolDir, binPath string, progress io.Writer) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("devvault: building %s needs the go toolchain on PATH: %w", ToolDir, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(binPath), filepath.Base(binPath)+"-*.tmp")
	if err != nil {
		return fmt.Errorf("devvault: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // no-op after a successful rename

	fmt.Fprintf(progress, "building dev Vault into %s (first run takes ~4 minutes on 2 cores)\n", binPath)
	start := time.Now()

	var out tailBuffer
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmpPath, ".")
	cmd.Dir = toolDir
	// tools/devvault is its own module; never let a go.work redirect it.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout = &out
	cmd.Stderr = &out
	// On cancellation interrupt the go command so it stops its compilers.
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("devvault: go build: %w", err)
	}

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	ticker := time.NewTicker(progressInterval)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-ticker.C:
			fmt.Fprintf(progress, "still building dev Vault (%s)...\n", time.Since(start).Round(time.Second))
		case err = <-done:
			break wait
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("devvault: build of %s cancelled: %w", ToolDir, ctx.Err())
		}
		return fmt.Errorf("devvault: go build in %s failed: %w\n%s", toolDir, err, out.String())
	}
	if err := os.Chmod(tmpPath, 0o755); err != nil {
		return fmt.Errorf("devvault: %w", err)
	}
	if err := os.Rename(tmpPath, binPath); err != nil {
		return fmt.Errorf("devvault: %w", err)
	}
	fmt.Fprintf(progress, "built dev Vault in %s\n", time.Since(start).Round(time.Second))
	return nil
}

func isExecutableFile(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return false
	}
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// tailBuffer is a concurrency-safe writer that keeps the last tailMax bytes.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 16 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - tailMax; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
