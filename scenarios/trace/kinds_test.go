package trace

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCatalogue: every Kind and Field constant of kinds.go is in the
// catalogue, and no entry names a field twice. A constant the catalogue
// forgot would make Check refuse what the engine writes with it.
func TestCatalogue(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "kinds.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, e := range catalogue {
		for i, fl := range e.fields {
			if slices.Contains(e.fields[:i], fl) {
				t.Errorf("field %q listed twice", fl)
			}
			used[fl] = true
		}
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			name := vs.Names[0].Name
			v, _ := strconv.Unquote(vs.Values[0].(*ast.BasicLit).Value)
			switch {
			case strings.HasPrefix(name, "Kind"):
				if _, ok := catalogue[Kind(v)]; !ok {
					t.Errorf("%s (%q) is not in the catalogue", name, v)
				}
			case strings.HasPrefix(name, "Field") && !used[v]:
				t.Errorf("%s (%q) is carried by no kind", name, v)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string // in the error; "" for none
	}{
		{Event{Kind: KindRDSState, Fields: map[string]any{FieldState: "connected", FieldFailures: 0}}, ""},
		{Event{Kind: KindFaultApplied, Fields: map[string]any{FieldFault: "node.delete", ParamPrefix + "node": "n"}}, ""},
		{Event{Kind: KindFaultEnded, Fields: map[string]any{FieldFault: "x", ParamPrefix + "node": "n"}}, `field "param.node"`},
		{Event{Kind: KindAction, Fields: map[string]any{ParamPrefix: "n"}}, `field "param."`},
		{Event{Kind: "rds.status"}, `kind "rds.status"`},
		{Event{Kind: KindVA, Fields: map[string]any{"vol": "a"}}, `field "vol"`},
	} {
		err := Check(c.e)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.e, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want an error naming %s", c.e, err, c.want)
		}
	}
}
