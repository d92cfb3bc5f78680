package swarm

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// seeds is how many seeds the structural tests generate: enough for every
// entry of the mix to be drawn many times.
const seeds = 300

// TestSeedIsTheScenario: a seed is a scenario, and "rds-scenario swarm
// --seeds 8..8" reproduces a failure only while seed 8 keeps meaning the same
// schedule. The golden file was printed before the swarm built scenarios
// typed: it is the canonical form of what the hand-written YAML said.
func TestSeedIsTheScenario(t *testing.T) {
	if Generate(9) != Generate(9) {
		t.Fatal("Generate(9) differs between two calls")
	}
	if Generate(9) == Generate(10) {
		t.Fatal("seeds 9 and 10 give the same scenario")
	}
	want, err := os.ReadFile("testdata/swarm-1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := Generate(1); got != string(want) {
		t.Fatalf("seed 1 no longer gives testdata/swarm-1.yaml; got:\n%s", got)
	}
}

// TestGeneratedScenariosParseBack: what Generate prints is a valid scenario
// file, in canonical form, and means what Scenario built.
func TestGeneratedScenariosParseBack(t *testing.T) {
	for seed := int64(1); seed <= seeds; seed++ {
		text := Generate(seed)
		sc, err := spec.Parse([]byte(text))
		if err != nil {
			t.Fatalf("seed %d does not parse: %v\n%s", seed, err, text)
		}
		if sc.String() != text {
			t.Fatalf("seed %d is not in canonical form:\n%s\nreads back as\n%s", seed, text, sc.String())
		}
		if sc.Fingerprint() != Scenario(seed).Fingerprint() || sc.Seed != seed {
			t.Fatalf("seed %d: the parsed scenario differs from the built one", seed)
		}
	}
}

// TestOnlyCatalogueFaults: every action is a catalogued fault with its own
// parameters, only undoable faults are given a duration, and every entry of
// the mix is drawn.
func TestOnlyCatalogueFaults(t *testing.T) {
	drawn := map[string]bool{}
	for seed := int64(1); seed <= seeds; seed++ {
		for _, st := range Scenario(seed).Timeline {
			if st.Do == nil {
				continue
			}
			f, ok := catalog.Lookup(st.Do.Name)
			if !ok {
				t.Fatalf("seed %d: %s is not a catalogued fault", seed, st.Do.Name)
			}
			for name := range st.Do.Params {
				if _, ok := f.Param(name); !ok {
					t.Errorf("seed %d: %s has no parameter %s", seed, f.Name, name)
				}
			}
			if st.For > 0 && !f.Undoable {
				t.Errorf("seed %d: %s is an event but lasts %v", seed, f.Name, st.For)
			}
			drawn[st.Do.Name] = true
		}
	}
	for _, d := range mix {
		if !drawn[d.fault] {
			t.Errorf("%s is in the mix but no seed drew it", d.fault)
		}
	}
}

// TestOneFaultPerTarget: a target suffers at most one fault at a time, with
// a second of calm in between, so that every generated step is applicable.
func TestOneFaultPerTarget(t *testing.T) {
	for seed := int64(1); seed <= seeds; seed++ {
		sc := Scenario(seed)
		free := map[string]time.Duration{}
		for _, st := range sc.Timeline {
			if st.Do == nil {
				continue
			}
			target := targetOf(t, st.Do)
			if st.At < free[target] {
				t.Fatalf("seed %d: %s at %v while %s is busy until %v", seed, st.Do.String(), st.At, target, free[target])
			}
			if st.For > 0 {
				free[target] = st.At + st.For + time.Second
			}
		}
	}
}

func targetOf(t *testing.T, a *spec.Action) string {
	t.Helper()
	family, _, _ := strings.Cut(a.Name, ".")
	switch family {
	case "rds":
		return onRDS
	case "node":
		return a.Params["node"]
	case "controller", "leader", "kubevirt":
		return onController
	}
	t.Fatalf("%s has no target", a.Name)
	return ""
}

// TestEverythingMustHeal: the random part fits in Span; a last step, a
// minute after every fault has ended, expects RDS and the Probe back; every
// invariant is on.
func TestEverythingMustHeal(t *testing.T) {
	var invariants []string
	for _, inv := range spec.KnownInvariants() {
		invariants = append(invariants, inv.Name)
	}
	for seed := int64(1); seed <= seeds; seed++ {
		sc := Scenario(seed)
		last := sc.Timeline[len(sc.Timeline)-1]
		var faultsEnd time.Duration
		for _, st := range sc.Timeline[:len(sc.Timeline)-1] {
			if st.Do == nil || st.At >= Span {
				t.Fatalf("seed %d: step %+v outside the random part", seed, st)
			}
			faultsEnd = max(faultsEnd, st.At+st.For)
		}
		if last.Do != nil || len(last.Expect) != 2 || last.At < faultsEnd+time.Minute {
			t.Fatalf("seed %d: last step %+v, faults end at %v", seed, last, faultsEnd)
		}
		for _, e := range last.Expect {
			if e.Kind != spec.Eventually || e.Within != settleWithin {
				t.Errorf("seed %d: settle expectation %s", seed, e.String())
			}
		}
		if !slices.Equal(sc.Invariants, invariants) {
			t.Fatalf("seed %d: invariants %v, want every one: %v", seed, sc.Invariants, invariants)
		}
	}
}
