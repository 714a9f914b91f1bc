package devvault

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindRepoRoot(t *testing.T) {
	base := t.TempDir()
	repo := filepath.Join(base, "repo")
	writeFile(t, filepath.Join(repo, "tools", "devvault", "go.mod"), "module x\n")
	writeFile(t, filepath.Join(repo, "internal", "devvault", "x.go"), "package devvault\n")
	// A tools/devvault without go.mod deeper down must not stop the walk.
	writeFile(t, filepath.Join(repo, "sub", "tools", "devvault", "README.md"), "not a module\n")
	if err := os.MkdirAll(filepath.Join(repo, "sub", "deep", "er"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "elsewhere"), 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		start   string
		want    string
		wantErr bool
	}{
		{"repo root itself", repo, repo, false},
		{"package dir", filepath.Join(repo, "internal", "devvault"), repo, false},
		{"tool dir", filepath.Join(repo, "tools", "devvault"), repo, false},
		{"skips tools/devvault without go.mod", filepath.Join(repo, "sub", "deep", "er"), repo, false},
		{"not inside a repo", filepath.Join(base, "elsewhere"), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FindRepoRoot(tc.start)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("FindRepoRoot(%q) = %q, want error", tc.start, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindRepoRoot(%q): %v", tc.start, err)
			}
			if got != tc.want {
				t.Fatalf("FindRepoRoot(%q) = %q, want %q", tc.start, got, tc.want)
			}
		})
	}

	t.Run("relative path", func(t *testing.T) {
		t.Chdir(filepath.Join(repo, "internal"))
		got, err := FindRepoRoot(".")
		if err != nil || got != repo {
			t.Fatalf("FindRepoRoot(.) = %q, %v; want %q", got, err, repo)
		}
	})

	t.Run("this repository", func(t *testing.T) {
		root, err := FindRepoRoot(".")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "tools", "devvault", "main.go")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSourceHash(t *testing.T) {
	baseFiles := map[string]string{
		"go.mod":      "module example.com/devvault\n",
		"go.sum":      "example.com/x v1.0.0 h1:abc\n",
		"main.go":     "package main\n",
		"registry.go": "package main\n// registry\n",
		"README.md":   "# readme\n",
	}
	tests := []struct {
		name     string
		mutate   func(dir string)
		wantSame bool
	}{
		{"unchanged", func(string) {}, true},
		{"README change ignored", func(d string) { writeFile(t, filepath.Join(d, "README.md"), "changed\n") }, true},
		{"non-go file added ignored", func(d string) { writeFile(t, filepath.Join(d, "notes.txt"), "x") }, true},
		{"testdata ignored", func(d string) { writeFile(t, filepath.Join(d, "testdata", "x.go"), "package x\n") }, true},
		{"hidden dir ignored", func(d string) { writeFile(t, filepath.Join(d, ".cache", "x.go"), "package x\n") }, true},
		{"go.mod change", func(d string) { writeFile(t, filepath.Join(d, "go.mod"), "module example.com/devvault\n\ngo 1.26\n") }, false},
		{"go.sum change", func(d string) { writeFile(t, filepath.Join(d, "go.sum"), "example.com/x v1.0.1 h1:def\n") }, false},
		{"go file change", func(d string) { writeFile(t, filepath.Join(d, "main.go"), "package main\n\nfunc main() {}\n") }, false},
		{"go file added", func(d string) { writeFile(t, filepath.Join(d, "extra.go"), "package main\n") }, false},
		{"go file in subpackage added", func(d string) { writeFile(t, filepath.Join(d, "sub", "x.go"), "package sub\n") }, false},
		{"go file removed", func(d string) { os.Remove(filepath.Join(d, "registry.go")) }, false},
		{"go file renamed", func(d string) {
			os.Rename(filepath.Join(d, "registry.go"), filepath.Join(d, "reg.go"))
		}, false},
		{"content moved between files", func(d string) {
			writeFile(t, filepath.Join(d, "main.go"), "package main\n// registry\n")
			writeFile(t, filepath.Join(d, "registry.go"), "package main\n")
		}, false},
	}

	mk := func(t *testing.T) string {
		dir := t.TempDir()
		for name, content := range baseFiles {
			writeFile(t, filepath.Join(dir, name), content)
		}
		return dir
	}
	ref, err := sourceHash(mk(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := mk(t)
			tc.mutate(dir)
			got, err := sourceHash(dir)
			if err != nil {
				t.Fatal(err)
			}
			if same := got == ref; same != tc.wantSame {
				t.Fatalf("hash same=%v, want same=%v (ref %s, got %s)", same, tc.wantSame, ref, got)
			}
		})
	}

	t.Run("missing go.mod", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "main.go"), "package main\n")
		if _, err := sourceHash(dir); err == nil {
			t.Fatal("want error for a directory without go.mod")
		}
	})

	t.Run("binary name", func(t *testing.T) {
		name := binaryName(ref)
		if !strings.HasPrefix(name, "devvault-"+ref[:16]) {
			t.Fatalf("binaryName = %q, want prefix devvault-%s", name, ref[:16])
		}
	})
}

func TestCacheDir(t *testing.T) {
	custom := t.TempDir()
	t.Setenv(EnvCacheDir, custom)
	if got, err := CacheDir(); err != nil || got != custom {
		t.Fatalf("CacheDir() = %q, %v; want %q", got, err, custom)
	}
	t.Setenv(EnvCacheDir, "")
	got, err := CacheDir()
	if err != nil {
		t.Skipf("no user cache dir here: %v", err)
	}
	if filepath.Base(got) != "agora" {
		t.Fatalf("CacheDir() = %q, want .../agora", got)
	}
}

// fakeRepo creates a repo with a tiny tools/devvault module.
func fakeRepo(t *testing.T) string {
	repo := t.TempDir()
	tool := filepath.Join(repo, "tools", "devvault")
	writeFile(t, filepath.Join(tool, "go.mod"), "module example.com/devvault\n\ngo 1.21\n")
	writeFile(t, filepath.Join(tool, "main.go"), "package main\n\nfunc main() {}\n")
	return repo
}

func TestEnsureBinaryOverride(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "my-devvault")
	writeFile(t, bin, "#!/bin/sh\n")
	t.Setenv(EnvBin, bin)
	t.Setenv(EnvCacheDir, t.TempDir())
	got, err := EnsureBinary(context.Background(), t.TempDir() /* not a repo: must not matter */, nil)
	if err != nil || got != bin {
		t.Fatalf("EnsureBinary = %q, %v; want %q", got, err, bin)
	}
}

func TestEnsureBinaryReusesCache(t *testing.T) {
	t.Setenv(EnvBin, "")
	t.Setenv(EnvCacheDir, t.TempDir())
	repo := fakeRepo(t)
	want, err := CachedBinaryPath(repo)
	if err != nil {
		t.Fatal(err)
	}
	// A cached "binary" that is not a real build: reuse must not rebuild it.
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("cached"), 0o755); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	got, err := EnsureBinary(context.Background(), repo, &progress)
	if err != nil || got != want {
		t.Fatalf("EnsureBinary = %q, %v; want %q", got, err, want)
	}
	if progress.Len() != 0 {
		t.Fatalf("unexpected build progress: %q", progress.String())
	}
	if data, _ := os.ReadFile(want); string(data) != "cached" {
		t.Fatal("cached binary was rebuilt")
	}
}

func TestEnsureBinaryBuildsTinyModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go program")
	}
	t.Setenv(EnvBin, "")
	cache := t.TempDir()
	t.Setenv(EnvCacheDir, cache)
	repo := fakeRepo(t)
	var progress bytes.Buffer
	bin, err := EnsureBinary(context.Background(), repo, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(progress.String(), "building dev Vault into") || !strings.Contains(progress.String(), "built dev Vault in") {
		t.Fatalf("progress = %q", progress.String())
	}
	if !isExecutableFile(bin) {
		t.Fatalf("%s is not an executable file", bin)
	}
	// No temporary files may be left behind.
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left in cache: %s", e.Name())
		}
	}
	// Changing a source file yields a new binary path.
	writeFile(t, filepath.Join(repo, "tools", "devvault", "main.go"), "package main\n\nfunc main() { println() }\n")
	bin2, err := CachedBinaryPath(repo)
	if err != nil {
		t.Fatal(err)
	}
	if bin2 == bin {
		t.Fatal("source change did not change the cached binary path")
	}
}

func TestPruneCache(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-30 * 24 * time.Hour)
	files := map[string]bool{ // name -> want kept
		"devvault-aaaaaaaaaaaaaaaa":         true, // current
		"devvault-aaaaaaaaaaaaaaaa.lock":    true,
		"devvault-bbbbbbbbbbbbbbbb":         false, // old, other sources
		"devvault-bbbbbbbbbbbbbbbb.lock":    false,
		"devvault-cccccccccccccccc-123.tmp": false, // leftover from a killed build
		"devvault-dddddddddddddddd":         true,  // other sources, but recent
		"unrelated-file":                    true,
	}
	for name := range files {
		writeFile(t, filepath.Join(dir, name), "x")
		if name != "devvault-dddddddddddddddd" {
			if err := os.Chtimes(filepath.Join(dir, name), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	pruneCache(dir, "devvault-aaaaaaaaaaaaaaaa", time.Now().Add(-pruneAge))
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if exists := err == nil; exists != keep {
			t.Errorf("%s: exists=%v, want %v", name, exists, keep)
		}
	}
}

func TestEnsureBinaryCancelledLeavesNothing(t *testing.T) {
	t.Setenv(EnvBin, "")
	cache := t.TempDir()
	t.Setenv(EnvCacheDir, cache)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := EnsureBinary(ctx, fakeRepo(t), nil); err == nil {
		t.Fatal("EnsureBinary with a cancelled context succeeded")
	}
	entries, _ := os.ReadDir(cache)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind in cache: %s", e.Name())
		}
	}
}
