// Package swarm generates random scenarios from a seed: a small cluster, a
// random schedule of faults drawn from the catalogue, and every invariant
// switched on. The same seed always gives the same scenario, written as the
// YAML a person could save and replay with rds-scenario run.
package swarm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Span is how long the random part of a generated scenario lasts; a quiet
// hour follows, in which everything must heal.
const Span = 30 * time.Minute

// Generate returns the scenario of seed as YAML.
func Generate(seed int64) string {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5ca1ab1e))
	var b strings.Builder
	fmt.Fprintf(&b, "name: swarm-%d\n", seed)
	fmt.Fprintf(&b, "description: random faults from seed %d\n", seed)
	fmt.Fprintf(&b, "seed: %d\n", seed)
	replicas := 1 + rng.IntN(2)
	fmt.Fprintf(&b, "topology:\n  nodes: [node-a, node-b, node-c]\n  controller: {replicas: %d, gracePeriod: 30s, reconcileInterval: 2m}\n", replicas)
	b.WriteString("volumes:\n")
	b.WriteString("  - {name: \"db-{1..3}\", size: 1GiB, access: RWO, mode: filesystem, attachedTo: node-a}\n")
	b.WriteString("  - {name: \"vm-{1..2}\", size: 2GiB, access: RWX, mode: block, attachedTo: node-b}\n")
	b.WriteString("timeline:\n")
	nodes := []string{"node-a", "node-b", "node-c"}
	// busy: until when a target already suffers a fault (one at a time per
	// target keeps every generated schedule applicable).
	busy := map[string]time.Duration{}
	at := time.Duration(0)
	lastEnd := time.Duration(0)
	for at < Span {
		at += time.Duration(10+rng.IntN(170)) * time.Second
		if at >= Span {
			break
		}
		dur := time.Duration(5+rng.IntN(300)) * time.Second
		node := nodes[rng.IntN(len(nodes))]
		var do, forClause, target string
		kind := rng.IntN(10)
		switch {
		case kind <= 3:
			target = "rds"
		case kind <= 6:
			target = node
		default:
			target = "controller"
		}
		if busy[target] > at {
			continue
		}
		switch kind {
		case 0, 1:
			do, forClause = "rds.crash", dur.String()
		case 2:
			do, forClause = "rds.refuse", dur.String()
		case 3:
			do = fmt.Sprintf("'rds.fail-next {count: %d}'", 1+rng.IntN(5))
		case 4:
			do, forClause = fmt.Sprintf("\"node.not-ready {node: %s}\"", node), dur.String()
		case 5:
			do, forClause = fmt.Sprintf("\"node.delete {node: %s}\"", node), dur.String()
		case 6:
			do, forClause = fmt.Sprintf("\"node.out-of-service {node: %s}\"", node), dur.String()
		case 7:
			do, forClause = "controller.crash", (time.Duration(5+rng.IntN(60)) * time.Second).String()
		case 8:
			do = "leader.loss"
		case 9:
			do = fmt.Sprintf("\"kubevirt.migrate {vm: vm-%d, to: %s, delay: %s}\"", 1+rng.IntN(2), node,
				time.Duration(rng.IntN(60))*time.Second)
		}
		fmt.Fprintf(&b, "  - at: %s\n    do: %s\n", at, do)
		if forClause != "" {
			fmt.Fprintf(&b, "    for: %s\n", forClause)
			d, _ := time.ParseDuration(forClause)
			lastEnd = max(lastEnd, at+d)
			busy[target] = at + d + time.Second
		}
	}
	settle := max(lastEnd, at) + time.Minute
	fmt.Fprintf(&b, "  - at: %s\n    expect:\n", settle)
	b.WriteString("      - {rds: connected, within: 20s}\n")
	b.WriteString("      - {probe: ready, within: 20s}\n")
	b.WriteString("invariants: [single-writer, no-volume-lost, rpc-deadlines, no-stale-claim, probe-follows-rds, no-restart-loop, survivors-keep-volumes]\n")
	return b.String()
}
