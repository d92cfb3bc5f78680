package engine

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// checkSchema fails t if the World wrote an event outside the schema the
// report reads (scenarios/trace); it returns the kinds written.
func checkSchema(t *testing.T, w *World) map[trace.Kind]bool {
	t.Helper()
	w.Trace().Flush()
	seen := map[trace.Kind]bool{}
	reported := false // one renamed field would repeat on every line
	for _, e := range w.Trace().Events() {
		seen[e.Kind] = true
		if err := trace.Check(e); err != nil && !reported {
			t.Errorf("at %v: %v", e.T, err)
			reported = true
		}
	}
	return seen
}

// TestTraceSchema: what the engine writes is what the report reads. The
// crash scenario and a day in the life of a cluster (a node added, a live
// migration, a fault that cannot apply, a volume lost to a short outage)
// write every kind of the schema but
// those others write (the runner's refused actions) or that stand for a
// failure to encode; each event carries only its kind's fields.
func TestTraceSchema(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := crashScenario(t, 1, Bugs{})
		if err != nil {
			t.Fatal(err)
		}
		seen := checkSchema(t, w)

		w, err = NewWorld(Options{Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		if err := w.CreateVolume(Volume{Name: "vm", Size: 1 << 30, RWX: true, Block: true}, "node-1"); err != nil {
			t.Fatal(err)
		}
		// The kernel gives up on this one's path within a short outage: an invariant breaks.
		if err := w.CreateVolume(Volume{Name: "web", Size: 1 << 30, Params: map[string]string{"ctrlLossTmo": "20"}}, "node-3"); err != nil {
			t.Fatal(err)
		}
		story := []Step{
			{At: time.Minute, Name: "node added", Do: func(w *World) error { return w.Apply("node.create", map[string]string{"node": "node-4"}) }},
			{At: 2 * time.Minute, Name: "migration", Do: func(w *World) error { return w.Migrate("vm", "node-4", "attach-first", 30*time.Second) }},
			{At: 5 * time.Minute, Name: "bad fault", Do: func(w *World) error {
				if err := w.Apply("node.not-ready", map[string]string{"node": "node-9"}); err == nil {
					t.Error("node.not-ready applied to a node that does not exist")
				}
				return nil
			}},
			Fault(6*time.Minute, "node.not-ready", map[string]string{"node": "node-2"}),
			{At: 7 * time.Minute, Name: "node back", Do: func(w *World) error { return w.Apply("node.ready", map[string]string{"node": "node-2"}) }},
			Fault(8*time.Minute, "rds.crash", nil),
			End(10*time.Minute, "rds.crash"),
		}
		if err := w.Run(story); err != nil {
			t.Fatal(err)
		}
		for k := range checkSchema(t, w) {
			seen[k] = true
		}
		for _, k := range trace.Kinds() {
			if !seen[k] && k != trace.KindActionRefused && k != trace.KindTraceError {
				t.Errorf("kind %q of the schema was never written: a report lane for it would stay empty", k)
			}
		}
	})
}

// TestTraceNames: the engine names kinds and fields through the schema's
// constants, so that a rename there renames them here. controller.go is
// being rewritten and keeps its literals until then; trace.Check still
// holds it to the schema at run time (TestTraceSchema).
func TestTraceNames(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	literalsAllowed := []string{}
	fs := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || slices.Contains(literalsAllowed, name) {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && (sel.Sel.Name == "record" || sel.Sel.Name == "Record") {
					arg := n.Args[0]
					if sel.Sel.Name == "Record" {
						arg = n.Args[1]
					}
					if !schemaName(arg, "Kind") {
						t.Errorf("%s: %s traces a kind not named by a trace.Kind constant", fs.Position(n.Pos()), sel.Sel.Name)
					}
				}
			case *ast.CompositeLit:
				if m, ok := n.Type.(*ast.MapType); ok && isIdent(m.Key, "string") && isAny(m.Value) {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok && !schemaName(kv.Key, "Field") {
							t.Errorf("%s: a trace payload key not named by a trace.Field constant", fs.Position(kv.Pos()))
						}
					}
				}
			case *ast.AssignStmt:
				for _, l := range n.Lhs {
					if ix, ok := l.(*ast.IndexExpr); ok {
						if lit, ok := ix.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							t.Errorf("%s: key %s: trace payload keys are trace.Field constants", fs.Position(l.Pos()), lit.Value)
						}
					}
				}
			}
			return true
		})
	}
}

// schemaName: e is trace.<prefix>Something.
func schemaName(e ast.Expr, prefix string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	return ok && isIdent(sel.X, "trace") && strings.HasPrefix(sel.Sel.Name, prefix)
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

func isAny(e ast.Expr) bool {
	if isIdent(e, "any") {
		return true
	}
	it, ok := e.(*ast.InterfaceType)
	return ok && len(it.Methods.List) == 0
}
