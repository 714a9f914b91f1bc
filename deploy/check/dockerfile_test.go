package check

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// The Dockerfile cannot be built where the tests run (no Docker engine),
// so its properties are asserted on its text: multi-stage, a static
// binary, a final image without a shell that runs as a non-root user.
func TestDockerfile(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, err := ParseDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	t.Run("the build stage's Go is go.mod's", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		mod, err := modfile.ParseLax("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := "golang:" + mod.Go.Version; !strings.HasPrefix(build.Base, want) {
			t.Errorf("build stage FROM %s, want %s (go.mod's go line)", build.Base, want)
		}
	})

	t.Run("a static binary", func(t *testing.T) {
		var goBuild string
		for _, run := range build.Find("RUN") {
			if strings.Contains(run.Args, "go build") {
				goBuild = run.Args
			}
		}
		if goBuild == "" {
			t.Fatal("no RUN go build in the build stage")
		}
		for _, want := range []string{"CGO_ENABLED=0", "./cmd/agora", "-o /out/agora"} {
			if !strings.Contains(goBuild, want) {
				t.Errorf("the go build %q lacks %q", goBuild, want)
			}
		}
	})

	t.Run("the final stage has no shell and needs none", func(t *testing.T) {
		if final.Base != "scratch" && !strings.HasPrefix(final.Base, "gcr.io/distroless/static") {
			t.Errorf("final stage FROM %s: want scratch or distroless static, images without a shell", final.Base)
		}
		if runs := final.Find("RUN"); len(runs) > 0 {
			t.Errorf("RUN at line %d needs a shell in the final image", runs[0].Line)
		}
		for _, cmd := range []string{"ENTRYPOINT", "CMD"} {
			ins := final.Find(cmd)
			if len(ins) != 1 {
				t.Errorf("%d %s instructions, want 1", len(ins), cmd)
				continue
			}
			var exec []string
			if err := json.Unmarshal([]byte(ins[0].Args), &exec); err != nil {
				t.Errorf("%s %s is in shell form, which runs /bin/sh: use the JSON (exec) form", cmd, ins[0].Args)
			}
		}
	})

	t.Run("a non-root user", func(t *testing.T) {
		users := final.Find("USER")
		if len(users) == 0 {
			t.Fatal("no USER in the final stage: the image would run as root")
		}
		user := users[len(users)-1].Args
		uid, _, _ := strings.Cut(user, ":")
		if !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
			t.Errorf("USER %s: want a numeric non-zero uid (scratch has no /etc/passwd, and Kubernetes' runAsNonRoot checks numbers)", user)
		}
	})

	t.Run("copies come from earlier stages, and the binary is the entrypoint", func(t *testing.T) {
		names := map[string]bool{}
		for _, st := range stages[:len(stages)-1] {
			names[st.Name] = true
		}
		copiesBinary := false
		for _, c := range final.Find("COPY") {
			if from, ok := strings.CutPrefix(c.Args, "--from="); ok {
				stage, rest, _ := strings.Cut(from, " ")
				if !names[stage] {
					t.Errorf("COPY --from=%s at line %d: no such earlier stage", stage, c.Line)
				}
				copiesBinary = copiesBinary || rest == "/out/agora /agora"
			}
		}
		if !copiesBinary {
			t.Error("the final stage does not copy /out/agora to /agora")
		}
		if ep := final.Find("ENTRYPOINT"); len(ep) == 1 && ep[0].Args != `["/agora"]` {
			t.Errorf("ENTRYPOINT %s, want [\"/agora\"]", ep[0].Args)
		}
	})
}

func TestParseDockerfile(t *testing.T) {
	stages, err := ParseDockerfile(strings.NewReader("ARG V=1\n# c\nFROM golang:1 AS build\nRUN a \\\n  b\nFROM scratch\nUSER 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != 2 || stages[0].Name != "build" || stages[1].Base != "scratch" {
		t.Fatalf("stages %+v", stages)
	}
	if run := stages[0].Find("RUN"); len(run) != 1 || run[0].Args != "a  b" || run[0].Line != 4 {
		t.Errorf("RUN %+v", run)
	}
	if _, err := ParseDockerfile(strings.NewReader("RUN x\n")); err == nil {
		t.Error("an instruction before FROM passed")
	}
}
