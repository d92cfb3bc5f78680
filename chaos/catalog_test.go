package chaos

import (
	"context"
	"maps"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

// TestImplementationsMatchTheCatalogue holds every fault's implementation to
// its catalogue entry, which is all the scenario format knows of it: the name
// it reports, its fields (one per parameter, of the parameter's kind) and
// every parameter changing the fault it builds. (A constructor reading a
// parameter its entry lacks, or as another kind, fails every Lookup; defaults
// are filled in from the entry.)
func TestImplementationsMatchTheCatalogue(t *testing.T) {
	if len(builders) != len(catalog.All()) {
		t.Errorf("%d faults implemented, %d catalogued", len(builders), len(catalog.All()))
	}
	for _, s := range catalog.All() {
		t.Run(s.Name, func(t *testing.T) {
			base := map[string]string{}
			for _, p := range s.Params {
				base[p.Name] = sampleOf(t, s, p)[0]
			}
			f := lookup(t, s.Name, base)
			if f.Name() != s.Name {
				t.Errorf("the fault reports the name %q", f.Name())
			}
			checkFields(t, s, f)
			for _, p := range s.Params {
				checkParamIsRead(t, s, p, base, f)
			}
		})
	}
}

func lookup(t *testing.T, name string, values map[string]string) Fault {
	t.Helper()
	f, err := Lookup(name, values)
	if err != nil {
		t.Fatalf("Lookup(%s, %v): %v", name, values, err)
	}
	return f
}

// checkFields: the fault's exported fields are its parameters, by name
// (Latency for latency, VM for vm), each of a Go type its kind parses to.
func checkFields(t *testing.T, s Spec, f Fault) {
	t.Helper()
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Struct {
		t.Fatalf("%T is not a struct", f)
	}
	fields := map[string]reflect.Type{}
	for _, sf := range reflect.VisibleFields(v.Type()) {
		if sf.IsExported() {
			fields[strings.ToLower(sf.Name)] = sf.Type
		}
	}
	for _, p := range s.Params {
		typ, ok := fields[p.Name]
		if !ok {
			t.Errorf("parameter %s has no field in %T", p.Name, f)
			continue
		}
		delete(fields, p.Name)
		if want := goKind(p.Kind); typ.Kind() != want.Kind() || (want == durationType) != (typ == durationType) {
			t.Errorf("parameter %s is a %v, field %T.%s is a %v", p.Name, p.Kind, f, p.Name, typ)
		}
	}
	for name := range fields {
		t.Errorf("field %s of %T is not a catalogued parameter", name, f)
	}
}

var durationType = reflect.TypeFor[time.Duration]()

func goKind(k catalog.Kind) reflect.Type {
	switch k {
	case catalog.Duration:
		return durationType
	case catalog.Count:
		return reflect.TypeFor[int]()
	case catalog.Seed:
		return reflect.TypeFor[uint64]()
	}
	return reflect.TypeFor[string]()
}

// checkParamIsRead: some other value of p, one the fault accepts, builds a
// different fault.
func checkParamIsRead(t *testing.T, s Spec, p catalog.Param, base map[string]string, f Fault) {
	t.Helper()
	for _, alt := range sampleOf(t, s, p)[1:] {
		values := maps.Clone(base)
		values[p.Name] = alt
		g, err := Lookup(s.Name, values)
		if err != nil {
			continue
		}
		if reflect.DeepEqual(f, g) {
			t.Errorf("%s=%s and %s=%s build the same fault %#v", p.Name, base[p.Name], p.Name, alt, f)
		}
		return
	}
	t.Errorf("parameter %s: the fault refuses every alternative to %q", p.Name, base[p.Name])
}

// TestUndoableMatchesTheCatalogue: a fault the catalogue calls undoable
// returns an Undo, an event returns none. The scenario format lets a step
// give a duration (for:) exactly to the undoable ones.
func TestUndoableMatchesTheCatalogue(t *testing.T) {
	ctx := context.Background()
	for _, s := range catalog.All() {
		t.Run(s.Name, func(t *testing.T) {
			targets := everyTarget(t)
			undo, err := lookup(t, s.Name, sample(t, s)).Apply(ctx, targets)
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if (undo != nil) != s.Undoable {
				t.Fatalf("catalogue says undoable=%v; Apply returned an Undo: %v", s.Undoable, undo != nil)
			}
			if undo != nil {
				if err := undo(ctx); err != nil {
					t.Fatalf("undo: %v", err)
				}
			}
		})
	}
}

// everyTarget is a world every catalogued fault can act on, with the nodes
// and VMs the samples name.
func everyTarget(t *testing.T) Targets {
	t.Helper()
	targets, _ := nodeTargets(readyNode("node-a"), readyNode("node-b"))
	emu := startEmulator(t)
	targets.RDS = emu.Emulator
	targets.Network = NewNetwork(func(context.Context) (net.Conn, error) { return emu.DialInMemory() }, targets.Clock)
	t.Cleanup(func() { _ = targets.Network.Close() })
	d := &fakeDeployment{}
	targets.Controller, targets.KubeVirt = d, d
	return targets
}

// TestDefaultFailTextIsTheCatalogues: the emulator's default and the one the
// catalogue documents are the same text.
func TestDefaultFailTextIsTheCatalogues(t *testing.T) {
	s, _ := catalog.Lookup(catalog.RDSFailNext)
	if p, _ := s.Param("text"); p.Default != DefaultFailText {
		t.Fatalf("catalogue default %q, emulator default %q", p.Default, DefaultFailText)
	}
}
