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

// firstSeeds is how many seeds must be enough for every fault of the mix to
// be drawn at least once: a fault that joins the mix must show up in a short
// swarm run (make scenarios runs 50 seeds), not only in a long one.
const firstSeeds = 20

// TestOnlyCatalogueFaults: every action is a catalogued fault with its own
// parameters, only undoable faults are given a duration, every catalogued
// fault is in the mix (controller.restart is controller.crash's Undo), and
// each is drawn within the first firstSeeds seeds.
func TestOnlyCatalogueFaults(t *testing.T) {
	drawn := map[string]bool{}
	firstDrawn := map[string]int64{}
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
			if _, ok := firstDrawn[st.Do.Name]; !ok {
				firstDrawn[st.Do.Name] = seed
			}
		}
	}
	for _, d := range mix {
		if !drawn[d.fault] {
			t.Errorf("%s is in the mix but no seed drew it", d.fault)
		}
	}
	inMix := map[string]bool{}
	for _, d := range mix {
		inMix[d.fault] = true
	}
	for _, name := range catalog.Names() {
		if name == catalog.ControllerRestart {
			continue
		}
		if !inMix[name] {
			t.Errorf("%s is catalogued but not in the swarm's mix", name)
			continue
		}
		if first, ok := firstDrawn[name]; !ok || first > firstSeeds {
			t.Errorf("%s is first drawn by seed %d, want one of seeds 1..%d", name, first, firstSeeds)
		}
	}
	// The faults that joined the mix once the engine's barrier became exact
	// (timing-sensitive ones): named here so that dropping one from the mix
	// is a test failure, not a quiet loss of coverage.
	for _, name := range []string{catalog.RDSHang, catalog.RDSLatency, catalog.RDSSlowReconnect,
		catalog.NetworkLatency, catalog.NetworkTimeout, catalog.NetworkResetPeer} {
		if first, ok := firstDrawn[name]; !ok || first > firstSeeds {
			t.Errorf("%s: first drawn by seed %d, want one of seeds 1..%d", name, first, firstSeeds)
		}
	}
}

// TestParametersHeal: the parameters the mix draws are the ones its comment
// promises, those for which the settle step and every invariant hold.
func TestParametersHeal(t *testing.T) {
	for seed := int64(1); seed <= seeds; seed++ {
		for _, st := range Scenario(seed).Timeline {
			if st.Do == nil {
				continue
			}
			p := st.Do.Params
			dur := func(name string) time.Duration {
				d, err := time.ParseDuration(p[name])
				if err != nil {
					t.Fatalf("seed %d: %s %s=%q: %v", seed, st.Do.Name, name, p[name], err)
				}
				return d
			}
			switch st.Do.Name {
			case catalog.NetworkResetPeer:
				if dur("timeout") != 0 {
					t.Errorf("seed %d: %s", seed, st.Do.String())
				}
			case catalog.RDSSlowReconnect:
				if dur("delay") < st.For {
					t.Errorf("seed %d: %s lasts %v, past its delay", seed, st.Do.String(), st.For)
				}
			case catalog.NetworkLatency:
				if j, l := dur("jitter"), dur("latency"); j < 0 || j > l {
					t.Errorf("seed %d: %s", seed, st.Do.String())
				}
			}
			if f, _ := catalog.Lookup(st.Do.Name); f.Undoable && st.For == 0 && st.Do.Name != catalog.RDSFailNext &&
				st.Do.Name != catalog.NodeDelete && st.Do.Name != catalog.NodeNotReady && st.Do.Name != catalog.NodeOutOfService {
				t.Errorf("seed %d: %s never ends", seed, st.Do.String())
			}
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
	case "network":
		return onNetwork
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

// TestMigrationsMoveVMs: no generated migration sends a VM to the node the
// schedule left it on (KubeVirt never does; the engine would read the
// hand-off as the VM leaving its only node).
func TestMigrationsMoveVMs(t *testing.T) {
	moved := 0
	for seed := int64(1); seed <= seeds; seed++ {
		sc := Scenario(seed)
		on := map[string]string{}
		for _, set := range sc.Volumes {
			for _, v := range set.Volumes {
				on[v.Name] = v.AttachedTo
			}
		}
		for _, st := range sc.Timeline {
			if st.Do == nil || st.Do.Name != catalog.KubeVirtMigrate {
				continue
			}
			vm, to := st.Do.Params["vm"], st.Do.Params["to"]
			if on[vm] == to {
				t.Fatalf("seed %d: %s at %v: %s already runs on %s", seed, st.Do.String(), st.At, vm, to)
			}
			on[vm] = to
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no migrations drawn")
	}
}
