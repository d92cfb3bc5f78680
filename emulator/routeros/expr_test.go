package routeros

import "testing"

func props(m map[string]string) Props {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestExprMatch(t *testing.T) {
	entry := props(map[string]string{
		"slot":      "pvc-1",
		"type":      "file",
		"file-path": "/storage-pool/k8s/pvc-1.img",
		"comment":   "",
	})
	tests := []struct {
		where string
		want  bool
	}{
		{`slot=pvc-1`, true},
		{`slot=pvc-2`, false},
		{`slot="pvc-1"`, true},
		{`slot=PVC-1`, false}, // case-sensitive
		{`slot!=pvc-1`, false},
		{`slot!=pvc-2`, true},
		{`slot~"^pvc-"`, true},
		{`slot~"^snap-"`, false},
		{`slot~"pvc"`, true}, // unanchored, like RouterOS
		{`file-path~"^/storage-pool/k8s/"`, true},
		{`comment=""`, true},
		{`comment=`, true},
		{`missing=x`, false},
		{`missing=""`, false}, // absent is not the same as empty
		{`missing!=x`, true},
		{`missing~"."`, false},
		{`missing~""`, false},
		{`slot=pvc-1 and type=file`, true},
		{`slot=pvc-1 and type=dir`, false},
		{`slot=pvc-1 type=dir`, false}, // juxtaposition is and
		{`slot=x or type=file`, true},
		{`slot=x or type=dir`, false},
		{`!slot=x`, true},
		{`not slot=pvc-1`, false},
		{`!!slot=pvc-1`, true},
		// and binds tighter than or: true or (false and false)
		{`slot=pvc-1 or type=dir and slot=x`, true},
		// parens override: (true or false) and false
		{`(slot=pvc-1 or type=dir) and slot=x`, false},
		// ! binds tighter than and: (!false) and true
		{`!slot=x and type=file`, true},
		// ! applies to the parenthesised group: !(true and true)
		{`!(slot=pvc-1 and type=file)`, false},
		// or is left-associative and short-circuit agnostic
		{`slot=a or slot=b or slot=pvc-1`, true},
	}
	for _, tt := range tests {
		cmds, err := Parse("/disk print where "+tt.where, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.where, err)
			continue
		}
		e := cmds[0].Where
		if got := e.Match(entry); got != tt.want {
			t.Errorf("%s (%s): Match = %v, want %v", tt.where, e, got, tt.want)
		}
		// The canonical form must mean the same thing.
		again, err := Parse("/disk print where "+e.String(), nil)
		if err != nil {
			t.Errorf("%s: reparse %s: %v", tt.where, e, err)
			continue
		}
		if again[0].Where.String() != e.String() || again[0].Where.Match(entry) != tt.want {
			t.Errorf("%s: reparse of %s differs", tt.where, e)
		}
	}
}

func TestExprString(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a=1`, `a="1"`},
		{`a=1 and b=2 and c=3`, `a="1" and b="2" and c="3"`},
		{`a=1 and (b=2 and c=3)`, `a="1" and (b="2" and c="3")`},
		{`a=1 or b=2 or c=3`, `a="1" or b="2" or c="3"`},
		{`a=1 or (b=2 or c=3)`, `a="1" or (b="2" or c="3")`},
		{`(a=1 or b=2) and c=3`, `(a="1" or b="2") and c="3"`},
		{`a=1 and b=2 or c=3`, `a="1" and b="2" or c="3"`},
		{`a=1 or b=2 and c=3`, `a="1" or b="2" and c="3"`},
		{`((((a=1))))`, `a="1"`},
		{`not (a=1 or b!=2)`, `!(a="1" or b!="2")`},
		{`!!a~"x\$"`, `!!a~"x\$"`},
	}
	for _, tt := range tests {
		cmds, err := Parse("/disk print where "+tt.in, nil)
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if got := cmds[0].Where.String(); got != tt.want {
			t.Errorf("%s: String = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestHandBuiltExprs(t *testing.T) {
	// The interpreter may build conditions itself; those must not panic.
	p := props(map[string]string{"slot": "pvc-1"})
	if !(&Compare{Prop: "slot", Op: "~", Value: "^pvc"}).Match(p) {
		t.Error("Compare without Re should compile lazily")
	}
	if (&Compare{Prop: "slot", Op: "~", Value: "("}).Match(p) {
		t.Error("invalid regexp should not match")
	}
	if (&Compare{Prop: "slot", Op: "<", Value: "x"}).Match(p) {
		t.Error("unknown op should not match")
	}
	for _, e := range []Expr{&And{}, &Or{}, &Not{}} {
		_ = e.Match(p)
		_ = e.String()
	}
	if (&Compare{Prop: "slot", Op: "=", Value: "pvc-1"}).Match(nil) {
		t.Error("nil Props should be an entry without properties")
	}
}
