package swarm

import (
	"fmt"
	"math/rand/v2"
	"slices"
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
	target string // "rds", "network", "node" (the drawn node) or "controller"
	// params draws the parameters and how long the fault lasts (0: the step
	// has no for:). node and lasts are drawn for every step, used or not, so
	// that each entry consumes the random stream as the schedule always has.
	params func(rng *rand.Rand, node string, lasts time.Duration) (map[string]string, time.Duration)
}

const (
	onRDS        = "rds"
	onNetwork    = "network" // the link between the controller and RDS
	onNode       = "node"
	onController = "controller"
)

// mix is what a step draws from, each entry as likely as the others: rds.crash
// is listed twice so that RDS outages, the case the driver exists for, stay
// the most frequent fault. Every catalogued fault is in it but
// controller.restart, which controller.crash's Undo performs.
//
// The parameters are chosen so that the settle step's expectations (RDS and
// the Probe back within settleWithin of a quiet minute) and every invariant
// hold for the driver's documented behaviour (driver/rds.ManagerConfig:
// health check every 10s, 5s timeout, reconnect backoff 1s doubling to 16s
// ±10%, 10s connect timeout):
//
//   - rds.hang, rds.latency and network.latency may exceed the health
//     timeout; the Probe then goes not-ready, which probe-follows-rds allows
//     (it only bounds how long the Probe may stay ready while RDS is
//     unreachable), and everything is back one backoff step after the fault.
//   - network.reset_peer resets at once (timeout 0): with a timeout the
//     driver would connect, serve and be reset every timeout, ready in
//     between, while the engine counts the whole toxic as an outage
//     (probe-follows-rds would fail on a correct driver).
//   - rds.slow-reconnect lasts no longer than its delay: the engine counts
//     the fault as an outage until its Undo, so an RDS that accepted again
//     before the Undo would make a correct driver's Probe "late".
var mix = []draw{
	{catalog.RDSCrash, onRDS, lasting},
	{catalog.RDSCrash, onRDS, lasting},
	{catalog.RDSRefuse, onRDS, lasting},
	{catalog.RDSRestart, onRDS, event}, // a reboot: connections drop, it serves again at once
	{catalog.RDSHang, onRDS, lasting},
	{catalog.RDSLatency, onRDS, func(rng *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
		return map[string]string{"latency": spec.FormatDuration(pick(rng, rdsLatencies))}, lasts
	}},
	{catalog.RDSSlowReconnect, onRDS, func(rng *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
		// The delay is at least the fault's duration: either the Undo
		// cuts the refusal short or both end at one instant.
		delay := lasts + time.Duration(rng.IntN(120))*time.Second
		return map[string]string{"delay": spec.FormatDuration(delay)}, lasts
	}},
	{catalog.NetworkLatency, onNetwork, func(rng *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
		lat := pick(rng, networkLatencies)
		jitter := time.Duration(rng.Int64N(int64(lat)/2 + 1)).Truncate(time.Millisecond)
		return map[string]string{"latency": spec.FormatDuration(lat), "jitter": spec.FormatDuration(jitter)}, lasts
	}},
	{catalog.NetworkTimeout, onNetwork, func(rng *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
		// Half the time a black hole that never gives up, half the time
		// one that closes connections and fails dials after 1..60s.
		timeout := time.Duration(0)
		if rng.IntN(2) == 1 {
			timeout = time.Duration(1+rng.IntN(60)) * time.Second
		}
		return map[string]string{"timeout": spec.FormatDuration(timeout)}, lasts
	}},
	{catalog.NetworkResetPeer, onNetwork, func(_ *rand.Rand, _ string, lasts time.Duration) (map[string]string, time.Duration) {
		return map[string]string{"timeout": "0s"}, lasts
	}},
	{catalog.RDSFailNext, onRDS, func(rng *rand.Rand, _ string, _ time.Duration) (map[string]string, time.Duration) {
		return map[string]string{"count": strconv.Itoa(1 + rng.IntN(5))}, 0
	}},
	{catalog.NodeNotReady, onNode, onTheNode},
	{catalog.NodeDelete, onNode, onTheNode},
	{catalog.NodeOutOfService, onNode, onTheNode},
	{catalog.ControllerCrash, onController, func(rng *rand.Rand, _ string, _ time.Duration) (map[string]string, time.Duration) {
		return nil, time.Duration(5+rng.IntN(60)) * time.Second
	}},
	{catalog.LeaderLoss, onController, event},
	{catalog.KubeVirtMigrate, onController, func(rng *rand.Rand, node string, _ time.Duration) (map[string]string, time.Duration) {
		vm := "vm-" + strconv.Itoa(1+rng.IntN(2))
		delay := time.Duration(rng.IntN(60)) * time.Second
		return map[string]string{"vm": vm, "to": node, "delay": spec.FormatDuration(delay)}, 0
	}},
}

// rdsLatencies: a busy box, from barely noticeable to past the health
// timeout (5s), where the driver must call RDS unavailable.
var rdsLatencies = []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second,
	4 * time.Second, 6 * time.Second, 12 * time.Second}

// networkLatencies: one-way delays, from a slow WAN to a link so slow that
// an SSH handshake (several round trips) no longer fits the connect timeout.
var networkLatencies = []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	time.Second, 3 * time.Second}

func pick(rng *rand.Rand, from []time.Duration) time.Duration { return from[rng.IntN(len(from))] }

func event(*rand.Rand, string, time.Duration) (map[string]string, time.Duration) { return nil, 0 }

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
	vmOn := map[string]string{}        // where each VM runs, as far as the schedule says
	for _, set := range sc.Volumes {
		for _, v := range set.Volumes {
			if v.Mode == spec.Block {
				vmOn[v.Name] = v.AttachedTo
			}
		}
	}
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
		if d.fault == catalog.KubeVirtMigrate {
			// KubeVirt never migrates a VM to the node it runs on (the
			// engine would read the hand-off as the VM leaving its only
			// node): move it to the next node instead. Where the VM runs is
			// where its last migration sent it; an aborted one leaves it on
			// its source, which this cannot know, and that migration then
			// fails to apply (TolerateActionErrors).
			vm := params["vm"]
			if params["to"] == vmOn[vm] {
				params["to"] = nodes[(slices.Index(nodes, vmOn[vm])+1)%len(nodes)]
			}
			vmOn[vm] = params["to"]
		}
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
