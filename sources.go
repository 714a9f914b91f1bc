// Package agora carries files of this repository inside the agora binary,
// by their paths in the repository: the adapter SDKs (sdk/), the example
// remote adapters (examples/), which are also the templates of `agora
// adapter init`, and go.mod, whose go directive a generated Go adapter
// must meet. It lives at the root because go:embed reaches only below
// the embedding package, and these files live in several top-level
// directories; one copy of each file is what keeps the examples and the
// generated projects from drifting apart.
//
// What it must never do: hold logic (internal/scaffold decides what to
// write where), or embed a whole directory (a directory pattern would
// pick up whatever lies there when the binary is built, such as an
// example's data/).
package agora

import (
	"embed"
	"io/fs"
)

//go:embed go.mod
//go:embed sdk/python/agora_adapter.py sdk/node/agora-adapter.js
//go:embed examples/remote-adapter-python/adapter.py examples/remote-adapter-python/run examples/remote-adapter-python/slice.yml
//go:embed examples/remote-adapter-python/README.md examples/remote-adapter-python/.gitignore
//go:embed examples/remote-adapter-node/adapter.js examples/remote-adapter-node/run examples/remote-adapter-node/slice.yml
//go:embed examples/remote-adapter-node/README.md examples/remote-adapter-node/.gitignore
//go:embed examples/remote-adapter-go/main.go examples/remote-adapter-go/files/files.go examples/remote-adapter-go/run
//go:embed examples/remote-adapter-go/slice.yml examples/remote-adapter-go/README.md examples/remote-adapter-go/.gitignore
var sources embed.FS

// Sources returns the embedded files; read-only, like every embed.FS.
func Sources() fs.FS { return sources }
