package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// errorCases are files with exactly one problem each (unless n says
// otherwise): the line it is on, the path, and words from the message.
// head (parse_test.go) takes lines 1-4; steps start on line 5.
var errorCases = []struct {
	name string
	doc  string
	line int
	path string
	msg  string
	n    int // number of problems; 0 means 1
}{
	// YAML itself
	{"unquoted action with parameters", head + "  - at: 1m\n    do: node.delete {node: node-a}\n", 6, "",
		"an action with parameters must be quoted", 0},
	{"unquoted brace pattern in a flow mapping", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: db-{1..2}, size: 1}\n", 4, "",
		`quote a name with braces`, 0},
	{"invalid UTF-8", "name: t\ntopology: {nodes: [n]}\ndescription: \"caf\xe9\"\n", 3, "", "UTF-8", 0},
	{"two documents", head + "  - {at: 1m, do: rds.crash}\n---\nname: u\n", 6, "", "one YAML document", 0},
	{"empty file", "# nothing\n", 0, "", "empty scenario", 0},
	{"alias", "name: &n t\ntopology: {nodes: [n]}\ndescription: *n\n", 3, "", "aliases (*n) are not supported", 0},
	{"not a mapping", "- a\n- b\n", 1, "", "want a mapping", 0},

	// keys
	{"unknown top-level key", head + "  - {at: 1m, do: rds.crash}\nseeds: 3\n", 6, "", `unknown key "seeds"`, 0},
	{"unknown controller key", "name: t\ntopology:\n  nodes: [n]\n  controller:\n    gracePeriode: 30s\ntimeline: [{at: 0s, do: rds.crash}]\n",
		5, "topology.controller", `unknown key "gracePeriode" (known: replicas, gracePeriod, reconcileInterval, migrationWindow, restrictHosts)`, 0},
	{"unknown volume key", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: v, size: 1, accessMode: RWO}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		4, "volumes[0]", `unknown key "accessMode"`, 0},
	{"unknown step key", head + "  - {at: 1m, do: rds.crash, until: 2m}\n", 5, "timeline[0]", `unknown key "until"`, 0},
	{"duplicate key", head + "  - at: 1m\n    do: rds.crash\n    at: 2m\n", 7, "timeline[0]", `duplicate key "at"`, 0},
	{"missing name", "topology: {nodes: [n]}\ntimeline: [{at: 0s, do: rds.crash}]\n", 1, "", "missing name", 0},
	{"missing topology", "name: t\ntimeline: [{at: 0s, do: rds.crash}]\n", 1, "", "missing topology", 0},
	{"missing timeline", "name: t\ntopology: {nodes: [n]}\n", 1, "", "missing timeline", 0},
	{"seed not a number", "name: t\nseed: 1.5\n" + head[8:] + "  - {at: 0s, do: rds.crash}\n", 2, "seed", "not a whole number", 0},

	// topology
	{"no nodes", "name: t\ntopology:\n  nodes: []\ntimeline: [{at: 0s, do: rds.crash}]\n", 3, "topology.nodes", "at least one node", 0},
	{"duplicate node", "name: t\ntopology:\n  nodes:\n    - n1\n    - n1\ntimeline: [{at: 0s, do: rds.crash}]\n", 5, "topology.nodes[1]", `duplicate node "n1"`, 0},
	{"bad node name", "name: t\ntopology: {nodes: [Node_A]}\ntimeline: [{at: 0s, do: rds.crash}]\n", 2, "topology.nodes[0]", "not a valid name", 0},
	{"ambiguous pool size", "name: t\ntopology:\n  nodes: [n]\n  rds: {size: 8TB}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.rds.size", "ambiguous", 0},
	{"zero pool size", "name: t\ntopology:\n  nodes: [n]\n  rds: {size: 0Gi}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.rds.size", "above zero", 0},
	{"bad pool name", "name: t\ntopology:\n  nodes: [n]\n  rds: {pool: \"my pool\"}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.rds.pool", "not a pool name", 0},
	{"zero replicas", "name: t\ntopology:\n  nodes: [n]\n  controller: {replicas: 0}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.controller.replicas", "from 1 to 100", 0},
	{"zero reconcile interval", "name: t\ntopology:\n  nodes: [n]\n  controller: {reconcileInterval: 0s}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.controller.reconcileInterval", "above zero", 0},
	{"restrictHosts not a boolean", "name: t\ntopology:\n  nodes: [n]\n  controller: {restrictHosts: yes}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.controller.restrictHosts", `restrictHosts "yes": want true or false`, 0},
	{"negative grace period", "name: t\ntopology:\n  nodes: [n]\n  controller: {gracePeriod: -1s}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.controller.gracePeriod", "negative duration", 0},
	{"duration without unit", "name: t\ntopology:\n  nodes: [n]\n  controller: {gracePeriod: 30}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "topology.controller.gracePeriod", `has no unit (write e.g. 30s`, 0},

	// volumes
	{"volume attached to an unknown node", "name: t\ntopology: {nodes: [node-a]}\nvolumes:\n  - {name: v, size: 1, attachedTo: node-z}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		4, "volumes[0].attachedTo", `node "node-z" is not in the topology (nodes: node-a)`, 0},
	{"volume attached to a node only created later", "name: t\ntopology: {nodes: [node-a]}\nvolumes:\n  - {name: v, size: 1, attachedTo: node-z}\n" +
		"timeline: [{at: 0s, do: \"node.create {node: node-z}\"}]\n", 4, "volumes[0].attachedTo", `not in the topology`, 0},
	{"duplicate volume across sets", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: \"db-{1..3}\", size: 1}\n  - {name: db-3, size: 1}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		5, "volumes[1].name", `duplicate volume "db-3" (first declared on line 4)`, 0},
	{"duplicate volume within a set", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: \"db-{a,b,a}\", size: 1}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		4, "volumes[0].name", `duplicate volume "db-a"`, 0},
	{"bad brace pattern", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: \"db-{1..}\", size: 1}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		4, "volumes[0].name", "whole numbers or single letters", 0},
	{"bad name after expansion", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: \"DB-{1,2}\", size: 1}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		4, "volumes[0].name", `"DB-1" is not a valid name`, 2},
	{"missing size", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: v}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "volumes[0]", "missing size", 0},
	{"bad access", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: v, size: 1, access: RWOP}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "volumes[0].access", "neither RWO nor RWX", 0},
	{"bad mode", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: v, size: 1, mode: raw}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "volumes[0].mode", "neither filesystem nor block", 0},
	{"bad size", "name: t\ntopology: {nodes: [n]}\nvolumes:\n  - {name: v, size: 20 GiB}\ntimeline: [{at: 0s, do: rds.crash}]\n", 4, "volumes[0].size", "bad size unit", 0},

	// timeline
	{"empty timeline", "name: t\ntopology: {nodes: [n]}\ntimeline: []\n", 3, "timeline", "empty", 0},
	{"step out of order", head + "  - {at: 10m, do: rds.crash}\n  - {at: 5m, do: rds.restart}\n", 6, "timeline[1].at",
		"at 5m0s is earlier than the previous step (10m0s)", 0},
	{"at and after", head + "  - {at: 1m, after: 1m, do: rds.crash}\n", 5, "timeline[0]", "at or after, not both", 0},
	{"no time", head + "  - {do: rds.crash}\n", 5, "timeline[0]", "a step needs at", 0},
	{"nothing to do", head + "  - {at: 1m}\n", 5, "timeline[0]", "do, expect or both", 0},
	{"bad duration", head + "  - {at: 10 minutes, do: rds.crash}\n", 5, "timeline[0].at", `bad duration "10 minutes"`, 0},
	{"unknown action", head + "  - at: 1m\n    do: \"node.fail {node: node-a}\"\n", 6, "timeline[0].do",
		`unknown action "node.fail" (node.* actions: node.create, node.delete, node.not-ready, node.out-of-service, node.ready)`, 0},
	{"unknown action family", head + "  - {at: 1m, do: disk.fill}\n", 5, "timeline[0].do", `unknown action "disk.fill" (known: controller.crash,`, 0},
	{"unknown parameter", head + "  - {at: 1m, do: \"rds.latency {latency: 1s, jitter: 1s}\"}\n", 5, "timeline[0].do",
		`rds.latency has no parameter "jitter" (it takes latency)`, 0},
	{"unknown parameter, map form", head + "  - at: 1m\n    do:\n      name: rds.crash\n      hard: true\n", 8, "timeline[0].do",
		`rds.crash has no parameter "hard" (it takes none)`, 0},
	{"missing parameter", head + "  - {at: 1m, do: node.delete}\n", 5, "timeline[0].do", `node.delete needs parameter "node"`, 0},
	{"count below one", head + "  - {at: 1m, do: \"rds.fail-next {count: 0}\"}\n", 5, "timeline[0].do.count", "at least 1", 0},
	{"bad duration parameter", head + "  - {at: 1m, do: {name: rds.latency, latency: fast}}\n", 5, "timeline[0].do.latency", `bad duration "fast"`, 0},
	{"bad enum parameter", head + "  - {at: 1m, do: \"kubevirt.migrate {vm: db-1, to: node-b, order: sideways}\"}\n", 5,
		"timeline[0].do.order", "not one of attach-first, detach-first", 0},
	{"bad seed parameter", head + "  - {at: 1m, do: \"network.latency {latency: 1s, seed: -1}\"}\n", 5, "timeline[0].do.seed", "unsigned", 0},
	{"unknown node parameter", head + "  - {at: 1m, do: \"node.delete {node: node-z}\"}\n", 5, "timeline[0].do.node",
		`node "node-z" is neither in the topology nor created by node.create`, 0},
	{"unknown volume parameter", head + "  - {at: 1m, do: \"volume.attach {volume: log-*, node: node-a}\"}\n", 5, "timeline[0].do.volume",
		`"log-*" matches no volume`, 0},
	{"volume pattern partly unknown", head + "  - {at: 1m, do: \"volume.detach {volume: \\\"db-{1..4}\\\"}\"}\n", 5, "timeline[0].do.volume",
		`"db-4" (from "db-{1..4}") matches no volume`, 0},
	{"unknown vm", head + "  - {at: 1m, do: \"kubevirt.migrate {vm: vm-1, to: node-b}\"}\n", 5, "timeline[0].do.vm", `vm "vm-1" names no volume`, 0},
	{"for on an event", head + "  - {at: 1m, do: rds.restart, for: 1m}\n", 5, "timeline[0].for", "rds.restart cannot be undone", 0},
	{"for on a runner action", head + "  - {at: 1m, do: leader.loss, for: 1m}\n", 5, "timeline[0].for", "leader.loss cannot be undone", 0},
	{"for without do", head + "  - {at: 1m, for: 1m, expect: {probe: ready}}\n", 5, "timeline[0].for", "has no do", 0},
	{"parameters outside braces", head + "  - {at: 1m, do: rds.latency latency=1s}\n", 5, "timeline[0].do", "parameters go in braces", 0},
	{"unclosed parameter braces", head + "  - {at: 1m, do: \"rds.latency {latency: 1s\"}\n", 5, "timeline[0].do", "parameters of rds.latency", 0},
	{"text after the parameters", head + "  - {at: 1m, do: \"rds.latency {latency: 1s} now\"}\n", 5, "timeline[0].do", "parameters of rds.latency", 0},
	{"list parameter", head + "  - {at: 1m, do: {name: volume.attach, volume: [db-1], node: node-a}}\n", 5, "timeline[0].do.volume", "want a single value", 0},
	{"map form without name", head + "  - {at: 1m, do: {node: node-a}}\n", 5, "timeline[0].do", "missing name", 0},
	{"do is a list", head + "  - {at: 1m, do: [rds.crash]}\n", 5, "timeline[0].do", "want an action", 0},

	// expectations
	{"unknown subject", head + "  - {at: 1m, expect: {pods: ready}}\n", 5, "timeline[0].expect", `unknown expectation subject or key "pods"`, 0},
	{"misspelt window", head + "  - at: 1m\n    expect:\n      - {probe: ready, whithin: 1m}\n", 7, "timeline[0].expect[0]", `"whithin"`, 0},
	{"two subjects", head + "  - {at: 1m, expect: {probe: ready, rds: connected}}\n", 5, "timeline[0].expect", "one subject; this one has probe and rds", 0},
	{"two windows", head + "  - {at: 1m, expect: {probe: ready, within: 1m, always: 1m}}\n", 5, "timeline[0].expect", "has within and always", 0},
	{"no subject", head + "  - {at: 1m, expect: {within: 1m}}\n", 5, "timeline[0].expect", "needs a subject", 0},
	{"attachedTo without volumes", head + "  - {at: 1m, expect: {probe: ready, attachedTo: [node-a]}}\n", 5, "timeline[0].expect", "attachedTo goes with volumes", 0},
	{"volumes without attachedTo", head + "  - {at: 1m, expect: {volumes: db-1}}\n", 5, "timeline[0].expect", "volumes needs attachedTo", 0},
	{"bad probe value", head + "  - {at: 1m, expect: {probe: up}}\n", 5, "timeline[0].expect.probe", `probe "up" is neither ready nor not-ready`, 0},
	{"bad rds value", head + "  - {at: 1m, expect: {rds: up}}\n", 5, "timeline[0].expect.rds", `neither connected nor disconnected`, 0},
	{"events without reason", head + "  - {at: 1m, expect: {events: {count: 1}}}\n", 5, "timeline[0].expect.events", "missing reason", 0},
	{"events count and atLeast", head + "  - {at: 1m, expect: {events: {reason: X, count: 1, atLeast: 1}}}\n", 5, "timeline[0].expect.events", "not both", 0},
	{"negative event count", head + "  - {at: 1m, expect: {events: {reason: X, count: -1}}}\n", 5, "timeline[0].expect.events.count", "at least 0", 0},
	{"claims without nodes", head + "  - {at: 1m, expect: {claims: {volume: db-1}}}\n", 5, "timeline[0].expect.claims", "claims needs nodes", 0},
	{"claims on an unknown volume", head + "  - {at: 1m, expect: {claims: {volume: db-9, nodes: []}}}\n", 5, "timeline[0].expect.claims.volume", `"db-9" matches no volume`, 0},
	{"expected on an unknown node", head + "  - at: 1m\n    expect:\n      - {volumes: \"db-*\", attachedTo: [node-a, node-c]}\n", 7,
		"timeline[0].expect[0].attachedTo[1]", `node "node-c" is neither in the topology`, 0},
	{"node listed twice", head + "  - {at: 1m, expect: {volumes: db-1, attachedTo: [node-a, node-a]}}\n", 5, "timeline[0].expect.attachedTo[1]", "listed twice", 0},
	{"empty expect", head + "  - {at: 1m, expect: []}\n", 5, "timeline[0].expect", "empty expect", 0},
	{"negative window", head + "  - {at: 1m, expect: {probe: ready, never: -1m}}\n", 5, "timeline[0].expect.never", "negative duration", 0},

	// invariants
	{"unknown invariant", head + "  - {at: 1m, do: rds.crash}\ninvariants:\n  - single-writer\n  - no-data-loss\n", 8, "invariants[1]",
		`unknown invariant "no-data-loss" (known: attached-has-claim, data-plane-single-writer, no-restart-loop, no-stale-claim, no-volume-lost, probe-follows-rds, rpc-deadlines, single-writer, survivors-keep-volumes)`, 0},
	{"duplicate invariant", head + "  - {at: 1m, do: rds.crash}\ninvariants: [single-writer, single-writer]\n", 6, "invariants[1]", "listed twice", 0},

	// several problems at once, reported in line order
	{"several problems", head + "  - {at: 10m, do: rds.crash}\n  - {at: 5m, do: node.fail}\ninvariants: [nope]\n", 6, "timeline[1].at", "earlier than the previous step", 3},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse succeeded:\n%s", s)
			}
			if s != nil {
				t.Error("Parse returned a scenario with its error")
			}
			var list Errors
			if !errors.As(err, &list) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			want := max(tc.n, 1)
			if len(list) != want {
				t.Errorf("%d problems, want %d:\n%v", len(list), want, err)
			}
			first := list[0]
			if first.Line != tc.line || first.Path != tc.path || !strings.Contains(first.Msg, tc.msg) {
				t.Errorf("first problem: line %d, path %q, msg %q\nwant line %d, path %q, msg containing %q",
					first.Line, first.Path, first.Msg, tc.line, tc.path, tc.msg)
			}
			for i := 1; i < len(list); i++ {
				if list[i].Line < list[i-1].Line {
					t.Errorf("problems out of line order: %v", err)
				}
			}
		})
	}
}

// TestNotErrors: things that look wrong but are meant.
func TestNotErrors(t *testing.T) {
	for name, doc := range map[string]string{
		"node created before it is named":   head + "  - {at: 1m, do: \"node.create {node: node-z}\"}\n  - {at: 2m, do: \"node.not-ready {node: node-z}\"}\n",
		"node created after it is expected": head + "  - {at: 1m, expect: {volumes: db-1, attachedTo: [node-z], within: 1h}}\n  - {at: 2m, do: \"node.create {node: node-z}\"}\n",
		"steps at the same instant":         head + "  - {at: 1m, do: rds.crash}\n  - {at: 1m, do: rds.restart}\n  - {after: 0s, expect: {probe: ready}}\n",
		"a deleted node named again":        head + "  - {at: 1m, do: \"node.delete {node: node-a}\"}\n  - {at: 2m, do: \"node.ready {node: node-a}\"}\n",
		"fault with a duration":             head + "  - {at: 1m, do: rds.hang, for: 30s}\n",
		"parameter values typed by YAML":    head + "  - {at: 1m, do: {name: rds.fail-next, count: 3, text: \"failure: x\"}}\n",
		"empty parameter braces":            head + "  - {at: 1m, do: \"rds.crash {}\"}\n",
		"no volumes":                        "name: t\ntopology: {nodes: [n]}\ntimeline: [{at: 0s, do: rds.crash}]\n",
		"trailing empty document":           head + "  - {at: 1m, do: rds.crash}\n---\n",
		"anchor without alias":              head + "  - &s {at: 1m, do: rds.crash}\n",
		"zero grace period":                 "name: t\ntopology: {nodes: [n], controller: {gracePeriod: 0s, migrationWindow: 0s}}\ntimeline: [{at: 0s, do: rds.crash}]\n",
	} {
		if _, err := Parse([]byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(head+"  - {at: 1m, do: rds.explode}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":5: timeline[0].do: unknown action") {
		t.Errorf("Load error = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 5 {
		t.Errorf("errors.As(*Error) = %+v", e)
	}
}
