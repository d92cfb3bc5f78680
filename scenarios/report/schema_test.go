package report

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// listedRaw are the kinds of the schema the report draws nowhere (today:
// the run's parameters, metric samples, and the parts of Kubernetes and the
// data path it shows only through the attachments they lead to): they reach
// the page only in the table of unrecognised events. A new kind must be
// drawn (knownKinds) or listed here, so that a kind without a lane is a
// decision rather than an accident.
var listedRaw = map[trace.Kind]bool{
	trace.KindWorld: true, trace.KindMetric: true, trace.KindADC: true, trace.KindKubelet: true, trace.KindPod: true,
	trace.KindNVMe: true, trace.KindKubeVirt: true, trace.KindAction: true, trace.KindActionRefused: true,
	trace.KindTraceError: true,
}

// TestKindsOfTheSchema: the report knows only kinds of the schema, and
// every kind of the schema is either drawn or deliberately listed raw.
func TestKindsOfTheSchema(t *testing.T) {
	for k := range knownKinds {
		if err := trace.Check(Event{Kind: k}); err != nil {
			t.Errorf("the report draws %q: %v", k, err)
		}
		if listedRaw[k] {
			t.Errorf("%q is both drawn and listed raw", k)
		}
	}
	for _, k := range trace.Kinds() {
		if !knownKinds[k] && !listedRaw[k] {
			t.Errorf("kind %q of the schema is neither drawn (knownKinds) nor listed raw (listedRaw)", k)
		}
	}
}

// TestSchemaNames: the report reads kinds and fields through the schema's
// constants only, so a name renamed there is renamed here; a string
// literal would go on matching nothing.
func TestSchemaNames(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fs := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		literal := func(e ast.Expr) bool {
			lit, ok := e.(*ast.BasicLit)
			return ok && lit.Kind == token.STRING && lit.Value != `""` // no kind at all is not a name
		}
		isKind := func(e ast.Expr) bool {
			sel, ok := e.(*ast.SelectorExpr)
			return ok && sel.Sel.Name == "Kind"
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				var fn string
				switch f := n.Fun.(type) {
				case *ast.SelectorExpr:
					fn = f.Sel.Name
				case *ast.Ident:
					fn = f.Name
				}
				switch fn {
				case "Text", "Num", "Flag", "boolField":
					if literal(n.Args[len(n.Args)-1]) {
						t.Errorf("%s: %s reads a field by a literal name", fs.Position(n.Pos()), fn)
					}
				}
			case *ast.BinaryExpr:
				if (isKind(n.X) && literal(n.Y)) || (isKind(n.Y) && literal(n.X)) {
					t.Errorf("%s: a kind compared with a literal", fs.Position(n.Pos()))
				}
			case *ast.SwitchStmt:
				if n.Tag == nil || !isKind(n.Tag) {
					return true
				}
				for _, c := range n.Body.List {
					for _, e := range c.(*ast.CaseClause).List {
						if literal(e) {
							t.Errorf("%s: a kind case by a literal", fs.Position(e.Pos()))
						}
					}
				}
			}
			return true
		})
	}
}
