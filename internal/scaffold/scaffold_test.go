package scaffold

import (
	"bufio"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agora-osb/agora"
)

// TestTemplatesAreTheExamples: every file of an example directory is in
// its template, so an example cannot grow a file that generated projects
// lack; and the example's SDK is a link to the one SDK file, so the
// example runs on exactly what init copies.
func TestTemplatesAreTheExamples(t *testing.T) {
	for lang, tmpl := range templates() {
		t.Run(lang, func(t *testing.T) {
			onDisk := filepath.Join("..", "..", filepath.FromSlash(tmpl.example))
			ignored := gitignored(t, filepath.Join(onDisk, ".gitignore"))
			var disk []string
			err := filepath.WalkDir(onDisk, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(onDisk, p)
				if slices.Contains(ignored, d.Name()) {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				if !d.IsDir() {
					disk = append(disk, filepath.ToSlash(rel))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			files, err := exampleFiles(agora.Sources(), tmpl)
			if err != nil {
				t.Fatal(err)
			}
			var embedded []string
			for _, f := range files {
				embedded = append(embedded, f.Path)
			}
			slices.Sort(disk)
			slices.Sort(embedded)
			if !slices.Equal(disk, embedded) {
				t.Errorf("%s holds %q, but its template (the go:embed list in sources.go) holds %q: add the file there, or gitignore it",
					tmpl.example, disk, embedded)
			}
			if tmpl.sdk == "" {
				return
			}
			link := filepath.Join(onDisk, path.Base(tmpl.sdk))
			target, err := os.Readlink(link)
			if err != nil {
				t.Fatalf("%s must be a symbolic link to %s, the one copy of the SDK: %v", link, tmpl.sdk, err)
			}
			if got, want := filepath.Clean(filepath.Join(onDisk, target)), filepath.Join("..", "..", filepath.FromSlash(tmpl.sdk)); got != want {
				t.Errorf("%s links to %s, not %s", link, got, want)
			}
		})
	}
}

// gitignored reads the names an example's .gitignore leaves out (plain
// names and dir/ patterns: all the examples use).
func gitignored(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := []string{"__pycache__"} // the repository's own .gitignore
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, strings.TrimSuffix(line, "/"))
		}
	}
	return names
}

func fileOf(t *testing.T, p Project, name string) File {
	t.Helper()
	for _, f := range p.Files {
		if f.Path == name {
			return f
		}
	}
	t.Fatalf("the %s project has no %s", p.Lang, name)
	return File{}
}

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		lang string
		want []string // files besides the common ones
	}{
		{"python", []string{"adapter.py", "agora_adapter.py"}},
		{"node", []string{"adapter.js", "agora-adapter.js"}},
		{"go", []string{"main.go", "files/files.go", "go.mod"}},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			p, err := Render(agora.Sources(), Options{Lang: tc.lang, Dir: "/tmp/x/Files Service", Producer: "team-y",
				Secret: "the-secret", AgoraCheckout: "/src/agora"})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range p.Files {
				names = append(names, f.Path)
			}
			for _, want := range append(tc.want, "run", "slice.yml", "README.md", ".gitignore") {
				if !slices.Contains(names, want) {
					t.Errorf("no %s among %q", want, names)
				}
			}
			if p.Offering != "team-y-files-service" {
				t.Errorf("offering %q, want the producer's namespace and the directory's name", p.Offering)
			}
			slice := fileOf(t, p, "slice.yml")
			for _, want := range []string{"name: team-y-files-service ", "secret: the-secret "} {
				if !strings.Contains(string(slice.Data), want) {
					t.Errorf("slice.yml lacks %q:\n%s", want, slice.Data)
				}
			}
			for _, placeholder := range []string{exampleOffering, exampleSecret} {
				if strings.Contains(string(slice.Data), placeholder) {
					t.Errorf("slice.yml still holds the example's %q", placeholder)
				}
			}
			if slice.Mode != 0o600 || fileOf(t, p, "run").Mode != 0o755 {
				t.Errorf("modes: slice.yml %v (holds the secret: 0600), run %v (0755)", slice.Mode, fileOf(t, p, "run").Mode)
			}
			if tc.lang != "go" {
				return
			}
			if main := string(fileOf(t, p, "main.go").Data); !strings.Contains(main, `"files-service/files"`) || strings.Contains(main, exampleModule) {
				t.Errorf("main.go must import the project's own files package:\n%s", main)
			}
			gomod := string(fileOf(t, p, "go.mod").Data)
			for _, want := range []string{"module files-service\n", "\ngo 1.", "require github.com/agora-osb/agora v0.0.0\n", "replace github.com/agora-osb/agora => /src/agora\n"} {
				if !strings.Contains(gomod, want) {
					t.Errorf("go.mod lacks %q:\n%s", want, gomod)
				}
			}
		})
	}
}

func TestRenderDefaultsAndNotes(t *testing.T) {
	p, err := Render(agora.Sources(), Options{Lang: "python", Dir: "team-z-db/"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Offering != "team-z-db" || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "namespace") {
		t.Errorf("without a producer: offering %q, notes %q; want the directory's name and a note about the namespace", p.Offering, p.Notes)
	}
	secret := func(p Project) string {
		for line := range strings.SplitSeq(string(fileOf(t, p, "slice.yml").Data), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "secret:" {
				return f[1]
			}
		}
		return ""
	}
	q, _ := Render(agora.Sources(), Options{Lang: "python", Dir: "team-z-db", Producer: "team-z"})
	if q.Offering != "team-z-db" {
		t.Errorf("a directory already named for the namespace: offering %q, want team-z-db", q.Offering)
	}
	if s := secret(p); len(s) != 64 || s == secret(q) {
		t.Errorf("secrets %q and %q: want 32 random bytes in hex, new for every project", s, secret(q))
	}
	g, err := Render(agora.Sources(), Options{Lang: "go", Dir: "x", AgoraVersion: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if gomod := string(fileOf(t, g, "go.mod").Data); !strings.Contains(gomod, "require github.com/agora-osb/agora v1.2.3\n") || strings.Contains(gomod, "\nreplace") {
		t.Errorf("a release needs no replace:\n%s", gomod)
	}
	g, _ = Render(agora.Sources(), Options{Lang: "go", Dir: "x"})
	if !slices.ContainsFunc(g.Notes, func(n string) bool { return strings.Contains(n, "--agora-module") }) {
		t.Errorf("neither a release nor a checkout: notes %q must say how to fix go.mod", g.Notes)
	}
}

func TestRenderReportsEveryProblem(t *testing.T) {
	_, err := Render(agora.Sources(), Options{Lang: "ruby", Dir: "x"})
	if err == nil || !strings.Contains(err.Error(), "python, node, go") {
		t.Errorf("unknown language: %v", err)
	}
	_, err = Render(agora.Sources(), Options{Lang: "go", Dir: "x", Offering: "Bad_Name", Module: "/abs"})
	if err == nil || !strings.Contains(err.Error(), `"Bad_Name"`) || !strings.Contains(err.Error(), `"/abs"`) {
		t.Errorf("want both problems at once, got %v", err)
	}
}

// TestRenderRefusesAnExampleThatLostAPlaceholder: an example edited
// without its substitution must fail, not yield a project that carries
// the example's secret.
func TestRenderRefusesAnExampleThatLostAPlaceholder(t *testing.T) {
	src := fstest.MapFS{}
	for _, name := range []string{"examples/remote-adapter-python/adapter.py", "examples/remote-adapter-python/run", "sdk/python/agora_adapter.py"} {
		src[name] = &fstest.MapFile{Data: []byte("x")}
	}
	src["examples/remote-adapter-python/slice.yml"] = &fstest.MapFile{Data: []byte("name: " + exampleOffering + "\nsecret: s3cr3t\n")}
	_, err := Render(src, Options{Lang: "python", Dir: "x"})
	if err == nil || !strings.Contains(err.Error(), exampleSecret) {
		t.Fatalf("want an error naming the lost placeholder, got %v", err)
	}
}

func TestWrite(t *testing.T) {
	p, err := Render(agora.Sources(), Options{Lang: "python", Dir: "x", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "new", "project")
	res, err := p.Write(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != len(p.Files) || len(res.Replaced) != 0 {
		t.Errorf("into a new directory: %+v", res)
	}
	for _, f := range p.Files {
		fi, err := os.Stat(filepath.Join(dir, f.Path))
		if err != nil || fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: %v, mode %v, want %v", f.Path, err, fi.Mode().Perm(), f.Mode)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp")); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}

	// Not empty: refused, the clash named, nothing changed.
	mine := []byte("my own slice\n")
	if err := os.WriteFile(filepath.Join(dir, "slice.yml"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = p.Write(dir, false)
	if err == nil || !strings.Contains(err.Error(), "it would replace") || !strings.Contains(err.Error(), "slice.yml") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("a non-empty directory: want a refusal naming slice.yml and --force, got %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "slice.yml")); string(got) != string(mine) {
		t.Error("a refused init changed slice.yml")
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), mine, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(other, false); err == nil || !strings.Contains(err.Error(), "notes.txt") || !strings.Contains(err.Error(), "replace none") {
		t.Errorf("a directory with unrelated files: want a refusal that names them, got %v", err)
	}

	// --force: written, and every replaced file named.
	res, err = p.Write(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Replaced, res.Written) || len(res.Replaced) != len(p.Files) {
		t.Errorf("with force over a full project: replaced %q, written %q", res.Replaced, res.Written)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "slice.yml")); string(got) == string(mine) {
		t.Error("--force did not write slice.yml")
	}

	// A fresh git repository is empty enough.
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(repo, false); err != nil {
		t.Errorf("a directory holding only .git: %v", err)
	}
}
