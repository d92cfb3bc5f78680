package deploytest

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// TestDockerfileLint runs BuildKit's Dockerfile linter (the rules behind
// `docker build --check` that need no build context or registry) with every
// rule on and every warning fatal. hadolint is not packaged in Debian and is
// not a Go module (it is Haskell); BuildKit's linter is the Go counterpart.
func TestDockerfileLint(t *testing.T) {
	for _, w := range lintDockerfile(t, readFile(t, "Dockerfile")) {
		t.Errorf("Dockerfile: %s", w)
	}
	// The linter has teeth.
	bad := []byte("FROM debian:bookworm-slim as Build\nMAINTAINER someone\nRUN true\n")
	if ws := lintDockerfile(t, bad); len(ws) < 3 {
		t.Fatalf("the linter missed known problems: %v", ws)
	}
}

func lintDockerfile(t *testing.T, dt []byte) []string {
	t.Helper()
	var warnings []string
	ast, err := parser.Parse(bytes.NewReader(dt))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ast.Warnings {
		warnings = append(warnings, fmt.Sprintf("line %d: %s", w.Location.Start.Line, w.Short))
	}
	l := linter.New(&linter.Config{ExperimentalAll: true, Warn: func(rule, _, _, msg string, loc []parser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		warnings = append(warnings, fmt.Sprintf("line %d: %s: %s", line, rule, msg))
	}})
	if _, _, err := instructions.Parse(ast.AST, l); err != nil {
		warnings = append(warnings, err.Error())
	}
	return warnings
}

// TestDockerfileStages: the targets the manifests and docs name exist, the
// node image carries the tools, the distroless one runs as non-root.
func TestDockerfileStages(t *testing.T) {
	ast, err := parser.Parse(bytes.NewReader(readFile(t, "Dockerfile")))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]instructions.Stage{}
	for _, s := range stages {
		byName[s.Name] = s
	}
	if stages[len(stages)-1].Name != "node" {
		t.Errorf("the default (last) target is %q, want node", stages[len(stages)-1].Name)
	}
	node, ok := byName["node"]
	if !ok {
		t.Fatal("no node stage")
	}
	var runs string
	for _, c := range node.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			runs += strings.Join(r.CmdLine, " ")
		}
	}
	for _, pkg := range []string{"nvme-cli", "e2fsprogs", "xfsprogs", "util-linux"} {
		if !strings.Contains(runs, pkg) {
			t.Errorf("the node image does not install %s", pkg)
		}
	}
	dl, ok := byName["distroless"]
	if !ok {
		t.Fatal("no distroless stage")
	}
	nonroot := false
	for _, c := range dl.Commands {
		if u, ok := c.(*instructions.UserCommand); ok && u.User != "0" && u.User != "root" && !strings.HasPrefix(u.User, "0:") {
			nonroot = true
		}
	}
	if !nonroot || !strings.Contains(dl.BaseName, "nonroot") {
		t.Errorf("the distroless stage must run as non-root (base %s)", dl.BaseName)
	}
	// The manifests use exactly these two images.
	for _, r := range renders(t) {
		for k, spec := range podSpecs(typed(t, r)) {
			for _, c := range spec.Containers {
				if !strings.Contains(c.Image, "/rds-csi:") {
					continue
				}
				privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
				distroless := strings.HasSuffix(c.Image, "-distroless")
				if privileged == distroless {
					t.Errorf("%s: %s %s uses %s: the node plugin needs the node image, the rest the distroless one", r.name, k, c.Name, c.Image)
				}
			}
		}
	}
}

// buildContext returns the files `docker build .` would send, after
// .dockerignore.
func buildContext(t *testing.T) []string {
	t.Helper()
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		skip, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !pm.Exclusions() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestImageBuildContext builds the image's binaries the way the build stage
// does, from a copy of exactly the build context, and checks they are
// static. This is what can be checked of `docker build` without a Docker
// engine.
func TestImageBuildContext(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips building ./cmd/... from a copy of the build context")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the image's binaries with")
	}
	files := buildContext(t)
	for _, must := range []string{"go.mod", "go.sum", "cmd/rds-csi/main.go", "cmd/rds-emulator/main.go"} {
		if !slices.Contains(files, must) {
			t.Fatalf("the build context lacks %s", must)
		}
	}
	for _, f := range files {
		if strings.HasPrefix(f, "deploy/") || strings.HasPrefix(f, ".git/") || strings.Contains(f, "id_ed25519") {
			t.Errorf("the build context includes %s", f)
		}
	}
	root := repoRoot(t)
	ctxDir := t.TempDir()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(ctxDir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w -X github.com/rds-csi/rds-csi/driver.Version=v0.0.0-test", "-o", out+"/", "./cmd/...")
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=readonly", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/... from the build context: %v\n%s", err, b)
	}
	bins, _ := os.ReadDir(out)
	names := []string{}
	for _, b := range bins {
		names = append(names, b.Name())
		f, err := elf.Open(filepath.Join(out, b.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s is dynamically linked", b.Name())
			}
		}
		f.Close()
	}
	for _, must := range []string{"rds-csi", "rds-emulator"} {
		if !slices.Contains(names, must) {
			t.Errorf("the build produced %v, no %s", names, must)
		}
	}
}
