package spec

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    string // names joined by spaces, or "error: words"
	}{
		{"db-1", "db-1"},
		{"db-{1..6}", "db-1 db-2 db-3 db-4 db-5 db-6"},
		{"db-{1..1}", "db-1"},
		{"db-{3..1}", "db-3 db-2 db-1"},
		{"db-{0..2}", "db-0 db-1 db-2"},
		{"db-{08..10}", "db-08 db-09 db-10"},
		{"db-{8..010}", "db-008 db-009 db-010"},
		{"db-{1..10}", "db-1 db-2 db-3 db-4 db-5 db-6 db-7 db-8 db-9 db-10"},
		{"{a,b}", "a b"},
		{"x-{a,b}-y", "x-a-y x-b-y"},
		{"{db,vm}-{1..2}", "db-1 db-2 vm-1 vm-2"},
		{"{1..2}{a,b}", "1a 1b 2a 2b"},
		{"node-{a..c}", "node-a node-b node-c"},
		{"node-{c..a}", "node-c node-b node-a"},
		{"n{A..B}", "nA nB"},
		{"{1..3,x}", "1..3 x"}, // a list item is taken literally
		{"v{-,.}1", "v-1 v.1"},
		{"", ""},
		{"db-{}", "error: empty braces"},
		{"db-{1}", "error: neither a list"},
		{"db-{a,,b}", "error: empty item"},
		{"db-{a,}", "error: empty item"},
		{"db-{1..}", "error: whole numbers or single letters"},
		{"db-{..3}", "error: whole numbers or single letters"},
		{"db-{1..b}", "error: whole numbers or single letters"},
		{"db-{-1..1}", "error: whole numbers or single letters"},
		{"db-{aa..b}", "error: whole numbers or single letters"},
		{"db-{a..C}", "error: mixes upper and lower case"},
		{"db-{1..9..2}", "error: with a step"},
		{"db-{a,{b,c}}", "error: nested braces"},
		{"db-{1..3", "error: '{' without '}'"},
		{"db-1..3}", "error: '}' without '{'"},
		{"db-}{", "error: '}' without '{'"},
		{"db-{0..10000}", "error: more than 10000 names"},
		{"db-{0..99999999999999999999}", "error: more than 10000 names"},
		{"{0..99}-{0..99}-{0..1}", "error: more than 10000 names"},
	} {
		got, err := Expand(tc.pattern)
		gotS := strings.Join(got, " ")
		if err != nil {
			gotS = "error: " + err.Error()
		}
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(gotS, strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("Expand(%q) = %q, want an error containing %q", tc.pattern, gotS, strings.TrimPrefix(tc.want, "error: "))
			}
			continue
		}
		if gotS != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.pattern, gotS, tc.want)
		}
	}
	// The bound is inclusive: exactly MaxExpansion names is fine.
	if got, err := Expand("{0..99}-{0..99}"); err != nil || len(got) != MaxExpansion {
		t.Errorf("Expand of %d names: %d, %v", MaxExpansion, len(got), err)
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"node-a", true}, {"db-1", true}, {"a", true}, {"1", true}, {"a.b-c.d", true},
		{strings.Repeat("a", 253), true},
		{"", false}, {"Node-a", false}, {"node_a", false}, {"-a", false}, {"a-", false},
		{"a..b", false}, {"a b", false}, {"db-*", false}, {strings.Repeat("a", 254), false},
	} {
		if err := checkName(tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
