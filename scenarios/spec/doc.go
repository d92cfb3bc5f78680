// Package spec is the scenario file format: what a person writes to replay an
// outage against rds-csi, and what the scenario runner reads.
//
// A scenario is a claim about the driver ("when RDS is down for three hours
// and two nodes die, every volume ends up on the surviving node and no
// finalizer is left behind") written so that a machine can check it. The
// people who write them are operators reconstructing an incident from
// memory and logs, and developers pinning a bug before fixing it; the file
// is the record of the incident long after the cluster is gone. So the format
// favours the incident's own vocabulary (a timeline of faults at virtual
// times, expectations with deadlines, named invariants) over the runner's
// internals, and it is strict: a misspelt fault, a node missing from the
// topology or a step out of order is an error with a line number, never a
// scenario that silently tests less than its author believes. A replay that
// passes because it did nothing is worse than none.
//
// Parsing is separate from running so that a file can be checked in CI, by
// an editor or by the runner before it builds anything, and so that this
// package needs neither the emulator nor client-go: it reads the fault
// catalogue's names, parameters and documentation from package chaos/catalog,
// the data package chaos itself implements, not from chaos. The runner passes
// a fault's name and parameters to chaos.Lookup, which remains the authority
// on their values.
//
// Determinism is the other reason the format exists. Every time in a file is
// virtual; a run is reproduced by the scenario and its seed. Fingerprint
// hashes the canonical form (String) of what a scenario does, so a trace can
// say exactly which scenario produced it, and a reworded or reformatted file
// still matches its old traces.
//
// The format, by example:
//
//	name: rds-crash-2026-02-05
//	seed: 20260205
//	topology:
//	  nodes: [node-a, node-b, node-c]
//	  rds: {pool: storage-pool, size: 8TiB}           # defaults: storage-pool, 8TiB
//	  controller: {replicas: 2, gracePeriod: 30s}     # defaults: 1, 30s, reconcileInterval 5m, migrationWindow 5m,
//	                                                  # restrictHosts false (true: --restrict-hosts on controller and nodes)
//	volumes:
//	  - {name: "db-{1..6}", size: 20GiB, access: RWO, mode: filesystem, attachedTo: node-a}
//	timeline:
//	  - at: 10m
//	    do: rds.crash
//	  - after: 5s
//	    expect: {probe: not-ready, within: 10s}
//	  - at: 40m
//	    do: "node.not-ready {node: node-a}"           # quoted: the braces hold parameters
//	  - at: 41m
//	    do: {name: network.latency, latency: 100ms}   # the same, as a mapping
//	    for: 2m                                       # undone two minutes later
//	  - at: 3h10m
//	    do: rds.restart
//	    expect:
//	      - {rds: connected, within: 17s}
//	      - {volumes: "db-*", attachedTo: [node-c], within: 2m}
//	      - {events: {reason: StaleAttachmentCleared, count: 6}}
//	  - after: 1m
//	    expect: {rds: disconnected, never: 1h}        # and stays connected
//	invariants: [single-writer, no-volume-lost]
//
// An expectation's window key names its kind: within (eventually; absent
// means at that instant), always or never. Two YAML rules bite: inside
// {...} a value containing braces or ": " must be quoted, so an action with
// parameters is quoted and so is a brace pattern in a flow mapping.
package spec
