package architecture

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const module = "github.com/rds-csi/rds-csi"

// file is one parsed Go file of the module.
type file struct {
	path string // slash-separated, relative to the module root
	dir  string // its package directory
	test bool
	ast  *ast.File
	fset *token.FileSet
}

// moduleRoot is the module's directory, two up from this package.
func moduleRoot() (string, error) {
	dir, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err != nil || !strings.Contains(string(b), "module "+module+"\n") {
		return "", fmt.Errorf("%s is not the module root (%v)", dir, err)
	}
	return dir, nil
}

// moduleFiles parses every Go file of the module (testdata and hidden
// directories excepted), once for all the tests of this package.
var moduleFiles = sync.OnceValues(func() ([]file, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	var files []file
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		files = append(files, file{path: rel, dir: filepath.ToSlash(filepath.Dir(rel)), test: strings.HasSuffix(name, "_test.go"),
			ast: f, fset: fset})
		return nil
	})
	if err == nil && len(files) < 100 {
		err = fmt.Errorf("parsed only %d files: wrong root?", len(files))
	}
	return files, err
})

// parseModule is moduleFiles, or the test's failure.
func parseModule(t *testing.T) []file {
	t.Helper()
	files, err := moduleFiles()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// imports maps each local name of a module import in f to its directory.
func imports(f file) map[string]string {
	out := map[string]string{}
	for _, im := range f.ast.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if !strings.HasPrefix(p, module+"/") {
			continue
		}
		dir := strings.TrimPrefix(p, module+"/")
		name := dir[strings.LastIndex(dir, "/")+1:]
		if im.Name != nil {
			name = im.Name.Name
		}
		out[name] = dir
	}
	return out
}

// constructors build the parts of a controller.
var constructors = map[string]string{
	"driver/reconciler.New": "the reconciler",
	"driver/rds.NewManager": "the RDS connection manager",
	"driver/attachment.New": "the attachment rules",
	"driver.New":            "the CSI controller service",
}

// outsideParts are the folders that only ever get a controller from the
// assembly: they build no part at all.
var outsideParts = []string{"cmd/", "scenarios/", "chaos/", "e2e/", "sanity/"}

// wiringAllowed are the functions besides the assembly that build two or
// more parts together, each with its reason.
var wiringAllowed = map[string]string{
	"driver/sanity_test.go startDriverOpts":    "the CSI service's in-package rig for the in-process csi-sanity run and its unit tests: one manager, no Kubernetes; the binary lane (sanity/) runs the assembled controller",
	"driver/reconciler/harness_test.go newEnv": "the reconciler's unit tests drive attachment rules of their own on a fake clientset",
}

// TestOneAssembly: a controller is wired only by driver/controlplane. The
// binary, the scenario engine, chaos and the lanes build no part of one;
// elsewhere a function that builds two parts together is wiring a
// controller of its own, which only the allowed rigs may.
func TestOneAssembly(t *testing.T) {
	used := map[string]bool{}
	for _, f := range parseModule(t) {
		if f.dir == "driver/controlplane" && !f.test {
			continue
		}
		names := imports(f)
		outside := false
		for _, prefix := range outsideParts {
			outside = outside || strings.HasPrefix(f.path, prefix)
		}
		for _, decl := range f.ast.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			built := map[string]token.Pos{}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				key := ""
				switch fun := call.Fun.(type) {
				case *ast.SelectorExpr:
					if x, ok := fun.X.(*ast.Ident); ok && names[x.Name] != "" {
						key = names[x.Name] + "." + fun.Sel.Name
					}
				case *ast.Ident: // inside the part's own package
					key = f.dir + "." + fun.Name
				}
				if _, ok := constructors[key]; ok {
					built[key] = call.Pos()
				}
				return true
			})
			for key, pos := range built {
				if outside {
					t.Errorf("%s: %s calls %s: %s is built only by driver/controlplane (controlplane.New), so that every controller is wired as the binary's",
						f.fset.Position(pos), fn.Name.Name, key, constructors[key])
				}
			}
			if outside || len(built) < 2 {
				continue
			}
			where := f.path + " " + fn.Name.Name
			if _, ok := wiringAllowed[where]; ok {
				used[where] = true
				continue
			}
			var parts []string
			for key := range built {
				parts = append(parts, key)
			}
			slices.Sort(parts)
			t.Errorf("%s: %s wires %s together: build the controller with controlplane.New instead",
				f.fset.Position(fn.Pos()), fn.Name.Name, strings.Join(parts, " and "))
		}
	}
	for k, why := range wiringAllowed {
		if !used[k] {
			t.Errorf("allowed %q (%s) no longer wires parts: remove it", k, why)
		}
	}
}

// TestAssemblyUsers: the binary and the scenario engine import the assembly.
func TestAssemblyUsers(t *testing.T) {
	want := map[string]bool{"cmd/rds-csi": false, "scenarios/engine": false}
	for _, f := range parseModule(t) {
		if _, ok := want[f.dir]; ok && !f.test {
			for _, dir := range imports(f) {
				if dir == "driver/controlplane" {
					want[f.dir] = true
				}
			}
		}
	}
	for dir, ok := range want {
		if !ok {
			t.Errorf("%s does not import driver/controlplane", dir)
		}
	}
}

// layer ranks the module's top-level folders: a package may import its own
// layer or a lower one, never a higher one.
var layer = map[string]int{
	"internal": 0,
	"driver":   1, "emulator": 1,
	"chaos":     2,
	"scenarios": 3,
	"cmd":       4, "e2e": 4, "sanity": 4, "hack": 4, "deploy": 4,
}

// peersApart are same-layer folders that must not import each other outside
// tests: the driver never depends on the emulator, nor the emulator on the
// driver (tests may run one against the other).
var peersApart = map[[2]string]bool{{"driver", "emulator"}: true, {"emulator", "driver"}: true}

// upwardAllowed are the imports of a higher layer that are allowed, with
// their reasons.
var upwardAllowed = map[string]string{
	"driver/sanity_test.go sanity": "the in-process csi-sanity run reads the binary lane's skip list, so both skip the same specs for the same reasons",
}

// leaves import nothing of the module: data both sides compile against.
var leaves = []string{"chaos/catalog", "scenarios/trace", "internal/keylock"}

func top(dir string) string { return strings.SplitN(dir, "/", 2)[0] }

// TestLayers: imports only point down, and the leaf packages stay leaves.
func TestLayers(t *testing.T) {
	files := parseModule(t)
	for _, f := range files {
		from := top(f.dir)
		lf, known := layer[from]
		if !known && f.dir != "." {
			t.Errorf("%s: top-level folder %q has no layer: add it to the table", f.path, from)
			continue
		}
		for _, dir := range imports(f) {
			to := top(dir)
			if lt, ok := layer[to]; ok && lt > lf && upwardAllowed[f.path+" "+dir] == "" {
				t.Errorf("%s imports %s: %s is a higher layer than %s", f.path, dir, to, from)
			}
			if peersApart[[2]string{from, to}] && !f.test {
				t.Errorf("%s imports %s: %s does not depend on %s", f.path, dir, from, to)
			}
			for _, leaf := range leaves {
				if f.dir == leaf && !f.test {
					t.Errorf("%s imports %s: %s is a leaf", f.path, dir, leaf)
				}
			}
		}
	}
	for _, leaf := range leaves {
		found := false
		for _, f := range files {
			found = found || f.dir == leaf
		}
		if !found {
			t.Errorf("leaf package %s does not exist: update the table", leaf)
		}
	}
}
