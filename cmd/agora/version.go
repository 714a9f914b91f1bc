package main

import (
	"cmp"
	"io"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// version overrides the build info's version when set at build time with
// -ldflags "-X main.version=v1.2.3" (a release pipeline that builds from a
// tarball has no VCS information to read).
var version string

// buildVersion is what `agora version` reports: which code this binary is.
type buildVersion struct {
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from; Modified
	// says the work tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"commit_time,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

// readBuildVersion reads the version from the build info the Go toolchain
// embeds (the module version and the vcs.* settings of `go build` in a
// checkout), with -ldflags taking precedence for the version.
func readBuildVersion() buildVersion {
	info, ok := debug.ReadBuildInfo()
	return versionOf(info, ok, version)
}

func versionOf(info *debug.BuildInfo, ok bool, override string) buildVersion {
	v := buildVersion{Go: runtime.Version()}
	if ok {
		if info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified, _ = strconv.ParseBool(s.Value)
			}
		}
	}
	v.Version = cmp.Or(override, v.Version, "dev")
	return v
}

func printVersion(args []string, w io.Writer) error {
	fs := newFlagSet("version")
	output := outputFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("version takes no arguments, got %q", fs.Args())
	}
	v := readBuildVersion()
	return emit(w, *output, v, func(w io.Writer) { _, _ = io.WriteString(w, v.String()+"\n") })
}

// String is the line agora version prints.
func (v buildVersion) String() string {
	var b strings.Builder
	b.WriteString("agora " + v.Version)
	if v.Commit != "" {
		b.WriteString(" (commit " + v.Commit)
		if v.Modified {
			b.WriteString(", modified")
		}
		if v.Time != "" {
			b.WriteString(", " + v.Time)
		}
		b.WriteString(")")
	} else {
		// Say why, so "dev" is not mistaken for a broken build.
		b.WriteString(" (no commit recorded: built outside a git clone, or with -buildvcs=false)")
	}
	b.WriteString(", built with " + v.Go)
	return b.String()
}
