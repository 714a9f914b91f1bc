package adapters

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// builtins are the adapters in this repository that producers copy. Each
// must keep the template's shape (see doc.go): a drift spreads to every
// adapter copied from it.
var builtins = []string{"mysql", "postgres", "redis", "rabbitmq", "secrets", "osb"}

// capabilities maps each optional capability to the method that makes an
// adapter implement it.
var capabilities = map[string]string{"Updater": "Update", "Poller": "Poll", "Pinger": "Ping", "Closer": "Close"}

// TestBuiltinsFollowTheTemplate reads each built-in's source: doc.go,
// adapter.go and settings.go exist; adapter.go holds Factory, the Adapter
// type and New returning *Adapter; it ends with one compile-time guard for
// Adapter and one for each capability whose method the package defines,
// and no other.
func TestBuiltinsFollowTheTemplate(t *testing.T) {
	for _, name := range builtins {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(".", name)
			for _, f := range []string{"doc.go", "adapter.go", "settings.go"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("missing %s: %v", f, err)
				}
			}
			files := parsePackage(t, dir)
			adapterFile := files["adapter.go"]
			if adapterFile == nil {
				t.Fatal("no adapter.go")
			}
			checkDecls(t, adapterFile)

			var want []string
			for capability, method := range capabilities {
				if definesMethod(files, method) {
					want = append(want, capability)
				}
			}
			want = append(want, "Adapter")
			slices.Sort(want)
			got := guards(adapterFile)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("adapter.go ends with guards for %v; the package implements %v", got, want)
			}
		})
	}
}

// parsePackage parses the package's non-test files, by base name.
func parsePackage(t *testing.T, dir string) map[string]*ast.File {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = f
	}
	return files
}

// checkDecls looks for Factory, the Adapter type and New(ctx, cfg)
// returning (*Adapter, error).
func checkDecls(t *testing.T, f *ast.File) {
	t.Helper()
	var factory, adapterType, newFunc bool
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil {
				continue
			}
			switch d.Name.Name {
			case "Factory":
				factory = true
			case "New":
				res := d.Type.Results
				if res != nil && len(res.List) == 2 {
					if star, ok := res.List[0].Type.(*ast.StarExpr); ok {
						if id, ok := star.X.(*ast.Ident); ok && id.Name == "Adapter" {
							newFunc = true
						}
					}
				}
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				if ts, ok := s.(*ast.TypeSpec); ok && ts.Name.Name == "Adapter" {
					adapterType = true
				}
			}
		}
	}
	if !factory || !adapterType || !newFunc {
		t.Errorf("adapter.go: Factory %v, type Adapter %v, New returning (*Adapter, error) %v; want all three", factory, adapterType, newFunc)
	}
}

// guards returns the interfaces named by the `_ adapters.X =
// (*Adapter)(nil)` lines of the file's last declaration.
func guards(f *ast.File) []string {
	last, ok := f.Decls[len(f.Decls)-1].(*ast.GenDecl)
	if !ok || last.Tok != token.VAR {
		return nil
	}
	var out []string
	for _, s := range last.Specs {
		vs, ok := s.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "_" {
			continue
		}
		if sel, ok := vs.Type.(*ast.SelectorExpr); ok {
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "adapters" {
				out = append(out, sel.Sel.Name)
			}
		}
	}
	return out
}

// definesMethod reports whether the files declare name on *Adapter.
func definesMethod(files map[string]*ast.File, name string) bool {
	for _, f := range files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Name.Name != name {
				continue
			}
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok && id.Name == "Adapter" {
					return true
				}
			}
		}
	}
	return false
}
