package routeros

import (
	"strings"
	"testing"
)

// TestLargeInputs feeds near-limit scripts through Parse, String and Match.
// It has no timing assertion (that would be flaky); a quadratic regression
// shows up as this test taking minutes or running out of memory, which is how
// the original concatenating String() was caught.
func TestLargeInputs(t *testing.T) {
	n := maxScript - 100
	cases := []struct {
		name, script string
		cmds         int
	}{
		{"and chain", "/disk print where " + strings.Repeat("a=1 and ", n/8) + "a=1", 1},
		{"implicit and chain", "/disk print where " + strings.Repeat("a=1 ", n/4), 1},
		{"or chain", "/disk print where a=1" + strings.Repeat(" or a=1", n/8), 1},
		{"long quoted", `/disk add comment="` + strings.Repeat(`\41`, n/3) + `"`, 1},
		{"many commands", strings.Repeat("/disk print;", n/12), n / 12},
		{"many lines", strings.Repeat("\n", n), 0},
		{"many args", "/disk add " + strings.Repeat("slot=a ", n/7), 1},
		{"continuations", "/disk add " + strings.Repeat("\\\n", n/2), 1},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.script) > maxScript {
				t.Fatalf("case is %d bytes, over the limit", len(tt.script))
			}
			cmds, err := Parse(tt.script, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(cmds) != tt.cmds {
				t.Fatalf("got %d commands, want %d", len(cmds), tt.cmds)
			}
			if tt.cmds == 1 && cmds[0].Where != nil {
				s := cmds[0].Where.String()
				if !strings.HasPrefix(s, `a="1" `) {
					t.Fatalf("String() = %.40q...", s)
				}
				if !cmds[0].Where.Match(func(string) (string, bool) { return "1", true }) {
					t.Fatal("chain should match")
				}
			}
		})
	}
}
