package trace

import (
	"strings"
	"testing"
)

func TestFirstDivergence(t *testing.T) {
	a := []byte(`{"t":0,"kind":"world"}` + "\n" + `{"t":1000000000,"kind":"rds","f":{"state":"connected"}}` + "\n")
	if got := FirstDivergence(a, a); got != "" {
		t.Fatalf("equal traces: %q", got)
	}
	b := []byte(`{"t":0,"kind":"world"}` + "\n" + `{"t":1000000000,"kind":"rds","f":{"state":"connecting"}}` + "\n")
	got := FirstDivergence(a, b)
	for _, want := range []string{"line 2", "t=1s", "kind=rds", `"connected"`, `"connecting"`} {
		if !strings.Contains(got, want) {
			t.Errorf("divergence %q does not say %q", got, want)
		}
	}
	short := []byte(`{"t":0,"kind":"world"}` + "\n")
	if got := FirstDivergence(a, short); !strings.Contains(got, "line 2") || !strings.Contains(got, "(trace ended)") {
		t.Errorf("a trace that ends early: %q", got)
	}
}
