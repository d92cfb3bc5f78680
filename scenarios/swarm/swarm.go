package swarm

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// Span is how long the random part of a generated scenario lasts; a quiet
// hour follows, in which everything must heal.
const Span = 30 * time.Minute

// nodes are the cluster's nodes; node faults pick one of them.
var nodes = []string{"node-a", "node-b", "node-c"}

// settleWithin bounds how long after the last fault RDS and the Probe may
// take to be back.
const settleWithin = 20 * time.Second

// draw is one way a schedule step can go: a catalogued fault, the target it
// occupies (one fault at a time per target keeps every generated schedule
// applicable) and how its parameters and duration are drawn.
type draw struct {
	fault  string
	target string // "rds", "node" (the drawn node) or "controller"
	// params draws the parameters and how long the fault lasts (0: the step
	// has no for:). node and lasts are drawn for every step, used or not, so
	// that each entry consumes the random stream as the schedule always has.
	params func(rng *rand.Rand, node string, lasts time.Duration) (map[string]string, time.Duration)
}

const (
	onRDS        = "rds"
	onNode       = "node"
	onController = "controller"
)

// mix is what a step draws from, each entry as likely as the others: rds.crash
// is listed twice so that RDS outages, the case the driver exists for, make up
// a fifth of the schedule.
var mix = []draw{
	{catalog.RDSCrash, onRDS, lasting},
	{catalog.RDSCrash, onRDS, lasting},
	{catalog.RDSRefuse, onRDS, lasting},
	{catalog.RDSFailNext, onRDS, func(rng *rand.Rand, _ string, _ time.Duration) (map[string]string, time.Duration) {
		return map[string]string{"count": strconv.Itoa(1 + rng.IntN(5))}, 0
	}},
	{catalog.NodeNotReady, onNode, onTheNode},
	{catalog.NodeDelete, onNode, onTheNode},
	{catalog.NodeOutOfService, onNode, onTheNode},
	{catalog.ControllerCrash, onController, func(rng *rand.Rand, _ string, _ time.Duration) (map[string]string, time.Duration) {
		return nil, time.Duration(5+rng.IntN(60)) * time.Second
	}},
	{catalog.LeaderLoss, onController, func(*rand.Rand, string, time.Duration) (map[string]string, time.Duration) {
		return nil, 0
	}},
	{catalog.KubeVirtMigrate, onController, func(rng *rand.Rand, node string, _ time.Duration) (map[string]string, time.Duration) {
		vm := "vm-" + strconv.Itoa(1+rng.IntN(2))
		delay := time.Duration(rng.IntN(60)) * time.Second
		return map[string]string{"vm": vm, "to": node, "delay": spec.FormatDuration(delay)}, 0
	}},
}

func lasting(_ *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
	return nil, lasts
}

func onTheNode(_ *rand.Rand, node string, lasts time.Duration) (map[string]string, time.Duration) {
	return map[string]string{"node": node}, lasts
}

// Generate returns the scenario of seed in canonical form: the file a person
// can save and replay with rds-scenario run.
func Generate(seed int64) string { return Scenario(seed).String() }

// Scenario returns the scenario of seed.
func Scenario(seed int64) *spec.Scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5ca1ab1e))
	sc := &spec.Scenario{
		Name:        fmt.Sprintf("swarm-%d", seed),
		Description: fmt.Sprintf("random faults from seed %d", seed),
		Seed:        seed,
		Topology: spec.Topology{
			Nodes: append([]string(nil), nodes...),
			RDS:   spec.RDSSpec{Pool: spec.DefaultPool, Size: spec.DefaultPoolSize},
			Controller: spec.ControllerSpec{Replicas: 1 + rng.IntN(2), GracePeriod: 30 * time.Second,
				ReconcileInterval: 2 * time.Minute, MigrationWindow: spec.DefaultMigrationWindow},
		},
		Volumes: []spec.VolumeSet{
			volumes("db-{1..3}", 1<<30, spec.RWO, spec.Filesystem, "node-a"),
			volumes("vm-{1..2}", 2<<30, spec.RWX, spec.Block, "node-b"),
		},
	}
	busy := map[string]time.Duration{} // until when a target suffers a fault
	at, lastEnd := time.Duration(0), time.Duration(0)
	for at < Span {
		at += time.Duration(10+rng.IntN(170)) * time.Second
		if at >= Span {
			break
		}
		lasts := time.Duration(5+rng.IntN(300)) * time.Second
		node := nodes[rng.IntN(len(nodes))]
		d := mix[rng.IntN(len(mix))]
		target := d.target
		if target == onNode {
			target = node
		}
		if busy[target] > at {
			continue
		}
		params, lasts := d.params(rng, node, lasts)
		sc.Timeline = append(sc.Timeline, spec.Step{At: at, Do: &spec.Action{Name: d.fault, Params: params}, For: lasts})
		if lasts > 0 {
			lastEnd = max(lastEnd, at+lasts)
			busy[target] = at + lasts + time.Second
		}
	}
	sc.Timeline = append(sc.Timeline, spec.Step{At: max(lastEnd, at) + time.Minute, Expect: []spec.Expectation{
		{Kind: spec.Eventually, Within: settleWithin, Subject: spec.RDSState{Connected: true}},
		{Kind: spec.Eventually, Within: settleWithin, Subject: spec.ProbeState{Ready: true}},
	}})
	for _, inv := range spec.KnownInvariants() {
		sc.Invariants = append(sc.Invariants, inv.Name)
	}
	return sc
}

// volumes is a volume set as a file declares it: one pattern, every volume
// alike but for its name.
func volumes(pattern string, size int64, access spec.Access, mode spec.Mode, attachedTo string) spec.VolumeSet {
	names, err := spec.Expand(pattern)
	if err != nil {
		panic("swarm: " + err.Error())
	}
	set := spec.VolumeSet{Pattern: pattern}
	for _, name := range names {
		set.Volumes = append(set.Volumes, spec.Volume{Name: name, Size: size, Access: access, Mode: mode, AttachedTo: attachedTo})
	}
	return set
}
