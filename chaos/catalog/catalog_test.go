package catalog

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestEntriesAreWellFormed: what both readers of the catalogue rely on.
func TestEntriesAreWellFormed(t *testing.T) {
	all := All()
	if !slices.IsSortedFunc(all, func(a, b Fault) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("All is not sorted by name")
	}
	seen := map[string]bool{}
	for _, f := range all {
		if seen[f.Name] {
			t.Errorf("%s is catalogued twice", f.Name)
		}
		seen[f.Name] = true
		if family, _, ok := strings.Cut(f.Name, "."); !ok || family == "" {
			t.Errorf("%s is not family.fault", f.Name)
		}
		if f.Doc == "" {
			t.Errorf("%s has no documentation", f.Name)
		}
		params := map[string]bool{}
		for _, p := range f.Params {
			where := f.Name + "." + p.Name
			switch {
			case params[p.Name]:
				t.Errorf("%s is listed twice", where)
			case p.Name == "" || p.Name == "name": // scenario files put the fault's name under name:
				t.Errorf("%s: reserved or empty parameter name", where)
			case p.Doc == "":
				t.Errorf("%s has no documentation", where)
			case p.Kind.String() == "unknown":
				t.Errorf("%s has kind %d", where, p.Kind)
			case p.Required && p.Default != "":
				t.Errorf("%s is required and has a default", where)
			case (p.Kind == Choice) != (len(p.Choices) > 0):
				t.Errorf("%s: kind %v with choices %v", where, p.Kind, p.Choices)
			case p.Kind == Choice && (len(p.Choices) < 2 || p.Default != p.Choices[0]):
				t.Errorf("%s: choices %v, default %q: want two or more, the default first", where, p.Choices, p.Default)
			}
			params[p.Name] = true
		}
	}
	if !slices.Equal(Names(), slices.Sorted(maps.Keys(seen))) {
		t.Errorf("Names() = %v, want the names of All", Names())
	}
}

// TestLookupReturnsACopy: a caller cannot change the catalogue.
func TestLookupReturnsACopy(t *testing.T) {
	f, ok := Lookup(NodeNotReady)
	if !ok {
		t.Fatal("node.not-ready is not catalogued")
	}
	f.Params[1].Choices[0] = "True"
	f.Params[0].Name = "changed"
	again, _ := Lookup(NodeNotReady)
	if again.Params[0].Name != "node" || again.Params[1].Choices[0] != "Unknown" {
		t.Fatalf("Lookup shares its storage with callers: %+v", again)
	}
	if _, ok := Lookup("node.fail"); ok {
		t.Fatal("Lookup found an uncatalogued fault")
	}
}

func TestParam(t *testing.T) {
	f, _ := Lookup(NetworkLatency)
	if p, ok := f.Param("jitter"); !ok || p.Kind != Duration || p.Default != "0s" {
		t.Fatalf("Param(jitter) = %+v, %v", p, ok)
	}
	if _, ok := f.Param("speed"); ok {
		t.Fatal("Param found an uncatalogued parameter")
	}
	if got := f.ParamNames(); got != "latency, jitter, seed" {
		t.Fatalf("ParamNames = %q", got)
	}
	if f, _ := Lookup(RDSCrash); f.ParamNames() != "none" {
		t.Fatalf("rds.crash ParamNames = %q", f.ParamNames())
	}
}
