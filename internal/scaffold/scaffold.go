// Package scaffold makes a new remote adapter project for `agora adapter
// init`: a small, real, working service in Python, Node or Go, its
// catalog slice, a README and an executable ./run, which passes the
// conformance kit as it is written.
//
// The templates are the repository's example adapters, embedded by the
// root package (agora.Sources): a project is an example directory, plus
// the SDK file the example links to, plus a handful of substitutions
// declared below (the offering's name, a fresh secret, the Go module
// path) and, for Go, a go.mod. So examples and generated projects cannot
// drift: they are the same files, and a substitution whose text left its
// example fails Render instead of being skipped.
//
// What it must never do: write a file before it has checked every file
// it will write, replace an existing file without --force or without
// saying so, write anywhere outside the project directory, or put the
// secret anywhere but slice.yml (Agora's slice format carries it there,
// and Agora moves it into its Vault on apply).
package scaffold

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Languages are the values of --lang, in the order usage lists them.
func Languages() []string { return []string{"python", "node", "go"} }

// template says where a language's project comes from.
type template struct {
	example string // the example directory in the sources: the template itself
	sdk     string // the SDK file the example links to, written beside it; "" for Go (remote.Handler is its SDK)
	listen  string // the example's default address, used in the next steps
	// substitutions turn the example into the producer's project.
	substitutions func(p params) []substitution
}

// params are the values a project is rendered with.
type params struct {
	offering, secret, module string
}

// substitution replaces every occurrence of old in file. old must occur:
// an example edited without its substitution is a bug to report, not a
// project to write half-rendered.
type substitution struct {
	file, old, new string
}

// The placeholders the examples carry, which a project replaces.
const (
	exampleOffering = "team-x-files"
	exampleSecret   = "replace-with-the-secret-you-give-run"
	exampleModule   = "github.com/agora-osb/agora/examples/remote-adapter-go"
	agoraModule     = "github.com/agora-osb/agora"
)

func sliceSubstitutions(p params) []substitution {
	return []substitution{
		{"slice.yml", exampleOffering, p.offering},
		{"slice.yml", exampleSecret, p.secret},
	}
}

func templates() map[string]template {
	return map[string]template{
		"python": {example: "examples/remote-adapter-python", sdk: "sdk/python/agora_adapter.py", listen: "127.0.0.1:9091", substitutions: sliceSubstitutions},
		"node":   {example: "examples/remote-adapter-node", sdk: "sdk/node/agora-adapter.js", listen: "127.0.0.1:9093", substitutions: sliceSubstitutions},
		"go": {example: "examples/remote-adapter-go", listen: "127.0.0.1:9092", substitutions: func(p params) []substitution {
			// The example's packages are in Agora's module; the project's
			// are in its own.
			return append(sliceSubstitutions(p), substitution{"main.go", exampleModule, p.module})
		}},
	}
}

// Options say what project to make.
type Options struct {
	// Lang is python, node or go.
	Lang string
	// Dir is where the project goes; its base name names the offering and
	// the Go module unless Offering and Module say otherwise.
	Dir string
	// Offering is the offering's name in slice.yml. Default: Producer,
	// "-", and Dir's base name; without Producer, Dir's base name and a
	// note that it must start with the producer's namespace.
	Offering string
	// Producer is the producer's name, her namespace's default prefix.
	Producer string
	// Secret is the protocol secret written into slice.yml; default 32
	// random bytes in hex.
	Secret string
	// Module is the Go project's module path; default Dir's base name.
	Module string
	// AgoraCheckout is a local checkout of Agora for go.mod's replace
	// directive; empty writes none (then AgoraVersion must be a release).
	AgoraCheckout string
	// AgoraVersion is the version of Agora go.mod requires; default v0.0.0,
	// which only a replace directive makes resolvable.
	AgoraVersion string
}

// File is one file of a project.
type File struct {
	Path string // slash-separated, relative to the project directory
	Data []byte
	Mode fs.FileMode
}

// Project is a rendered project, not yet written.
type Project struct {
	Lang     string
	Offering string
	Listen   string // the address the README's commands use
	Files    []File
	// Notes are what the producer must know before the project works
	// for her, such as an offering name outside her namespace.
	Notes []string
}

// offeringNameRE is the catalog's rule for offering names (what app
// developers type in `cf create-service`); the slice is checked again
// on apply, but a project should not start with a name it will refuse.
var offeringNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// modulePathRE is a conservative module path: what `go mod init`
// accepts for a project's own module, without the oddities.
var modulePathRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9][A-Za-z0-9._~-]*)*$`)

// Render makes the project from sources (agora.Sources()) without
// touching the disk, and reports every problem with opts at once.
func Render(sources fs.FS, opts Options) (Project, error) {
	tmpl, ok := templates()[opts.Lang]
	if !ok {
		return Project{}, fmt.Errorf("--lang %q: must be one of %s", opts.Lang, strings.Join(Languages(), ", "))
	}
	p := Project{Lang: opts.Lang, Listen: tmpl.listen}
	var errs []error
	base := nameFrom(filepath.Base(filepath.Clean(opts.Dir)))
	p.Offering = opts.Offering
	if p.Offering == "" {
		if opts.Producer != "" {
			p.Offering = opts.Producer + "-" + strings.TrimPrefix(base, opts.Producer+"-")
		} else {
			p.Offering = base
			p.Notes = append(p.Notes, fmt.Sprintf("slice.yml names the offering %q: it must start with your namespace (your producer name and \"-\"); "+
				"edit it, or run init again with --offering", p.Offering))
		}
	}
	if !offeringNameRE.MatchString(p.Offering) {
		errs = append(errs, fmt.Errorf("offering name %q: use lowercase letters, digits and inner hyphens (--offering)", p.Offering))
	}
	secret := opts.Secret
	if secret == "" {
		secret = newSecret()
	}
	module := opts.Module
	if module == "" {
		module = base
	}
	if opts.Lang == "go" && !modulePathRE.MatchString(module) {
		errs = append(errs, fmt.Errorf("module path %q: use letters, digits, ., _, ~, - and / between elements (--module)", module))
	}
	if err := errors.Join(errs...); err != nil {
		return Project{}, err
	}

	files, err := exampleFiles(sources, tmpl)
	if err != nil {
		return Project{}, err
	}
	for _, s := range tmpl.substitutions(params{offering: p.Offering, secret: secret, module: module}) {
		i := slices.IndexFunc(files, func(f File) bool { return f.Path == s.file })
		if i < 0 || !strings.Contains(string(files[i].Data), s.old) {
			// A bug in this package or its example, never the user's.
			return Project{}, fmt.Errorf("scaffold: the %s template's %s no longer holds %q to replace", opts.Lang, s.file, s.old)
		}
		files[i].Data = []byte(strings.ReplaceAll(string(files[i].Data), s.old, s.new))
	}
	if opts.Lang == "go" {
		gomod, notes, err := goMod(sources, module, opts)
		if err != nil {
			return Project{}, err
		}
		files = append(files, File{Path: "go.mod", Data: gomod, Mode: 0o644})
		p.Notes = append(p.Notes, notes...)
	}
	p.Files = files
	return p, nil
}

// exampleFiles reads a template's example directory and its SDK file.
func exampleFiles(sources fs.FS, tmpl template) ([]File, error) {
	var files []File
	err := fs.WalkDir(sources, tmpl.example, func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sources, name)
		if err != nil {
			return err
		}
		files = append(files, File{Path: strings.TrimPrefix(name, tmpl.example+"/"), Data: data, Mode: fileMode(path.Base(name))})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scaffold: read the %s template: %w", tmpl.example, err)
	}
	if tmpl.sdk != "" {
		data, err := fs.ReadFile(sources, tmpl.sdk)
		if err != nil {
			return nil, fmt.Errorf("scaffold: read the SDK: %w", err)
		}
		files = append(files, File{Path: path.Base(tmpl.sdk), Data: data, Mode: 0o644})
	}
	return files, nil
}

// fileMode: run is what the producer executes; slice.yml holds the
// shared secret, so only its owner reads it.
func fileMode(base string) fs.FileMode {
	switch base {
	case "run":
		return 0o755
	case "slice.yml":
		return 0o600
	}
	return 0o644
}

// nameFrom makes a directory's base name fit for an offering or module
// name: lowercase letters, digits and single inner hyphens.
func nameFrom(base string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(base) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	if b.Len() == 0 {
		return "adapter"
	}
	return b.String()
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}

// goMod writes the Go project's go.mod: Agora's go directive (a module
// must meet its dependencies'), a require of Agora, and a replace with
// a local checkout while Agora is not a released module for it. No
// go.sum is needed: the project imports nothing outside Agora and the
// standard library.
func goMod(sources fs.FS, module string, opts Options) ([]byte, []string, error) {
	agoraMod, err := fs.ReadFile(sources, "go.mod")
	if err != nil {
		return nil, nil, fmt.Errorf("scaffold: read Agora's go.mod: %w", err)
	}
	goVersion := ""
	for line := range strings.SplitSeq(string(agoraMod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			goVersion = strings.TrimSpace(v)
		}
	}
	if goVersion == "" {
		return nil, nil, errors.New("scaffold: Agora's go.mod has no go directive")
	}
	version := opts.AgoraVersion
	if version == "" {
		version = "v0.0.0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo %s\n\nrequire %s %s\n", module, goVersion, agoraModule, version)
	var notes []string
	switch {
	case opts.AgoraCheckout != "":
		checkout, err := filepath.Abs(opts.AgoraCheckout)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&b, "\n// Built against a local checkout of Agora: drop this line once you require a released version.\nreplace %s => %s\n", agoraModule, checkout)
		notes = append(notes, fmt.Sprintf("go.mod builds against the Agora checkout at %s (--agora-module to choose another)", checkout))
	case version == "v0.0.0":
		fmt.Fprintf(&b, "\n// Point this at a checkout of Agora until you require a released version:\n// replace %s => /path/to/agora\n", agoraModule)
		notes = append(notes, "go.mod needs a checkout of Agora: no checkout was found around the current directory and this agora is not a release; "+
			"run init again with --agora-module /path/to/agora, or edit the replace line in go.mod")
	}
	return []byte(b.String()), notes, nil
}

// Result is what Write did.
type Result struct {
	Written  []string // every file, in the order written
	Replaced []string // the ones that existed before (only with force)
}

// Write writes the project into dir, creating it. A non-empty dir (a
// lone .git does not count) is refused unless force is set, with the
// files it would replace named; with force, Result.Replaced names them.
// Every file is written to a temporary name and renamed into place, so
// none is ever half-written.
func (p Project) Write(dir string, force bool) (Result, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, err
	}
	var present, clashes []string
	for _, e := range entries {
		if e.Name() != ".git" {
			present = append(present, e.Name())
		}
	}
	for _, f := range p.Files {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(f.Path))); err == nil {
			clashes = append(clashes, f.Path)
		}
	}
	if len(present) > 0 && !force {
		what := "it would replace none of them"
		if len(clashes) > 0 {
			what = "it would replace " + strings.Join(clashes, ", ")
		}
		return Result{}, fmt.Errorf("%s is not empty (it holds %s): init writes into an empty directory only; --force writes into it anyway, and %s",
			dir, strings.Join(present, ", "), what)
	}
	var res Result
	for _, f := range p.Files {
		target := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := writeFile(target, f.Data, f.Mode); err != nil {
			return res, fmt.Errorf("write %s: %w", target, err)
		}
		res.Written = append(res.Written, f.Path)
		if slices.Contains(clashes, f.Path) {
			res.Replaced = append(res.Replaced, f.Path)
		}
	}
	return res, nil
}

func writeFile(target string, data []byte, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), target)
}

// NextSteps are the commands that run, test and register the project
// written in dir, as its README gives them.
func (p Project) NextSteps(dir string) []string {
	url := "http://" + p.Listen
	return []string{
		"cd " + dir,
		`export AGORA_ADAPTER_SECRET=$(awk '$1 == "secret:" {print $2}' slice.yml)   # the secret init wrote into slice.yml`,
		`./run --listen ` + p.Listen + ` --secret "$AGORA_ADAPTER_SECRET"   # 1. run: stays in the foreground`,
		`agora adapter test --url ` + url + ` --secret "$AGORA_ADAPTER_SECRET"   # 2. test, in a second shell (same export)`,
		`agora producer apply -f slice.yml   # 3. register, after agora producer login`,
	}
}
