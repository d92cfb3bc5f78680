// Package swarm generates random scenarios from a seed: a small cluster, a
// random schedule of faults drawn from the fault catalogue (package
// chaos/catalog; the mix, with each fault's parameters and duration, is the
// table mix), and every invariant switched on. The same seed always gives the
// same scenario. It is built as a spec.Scenario and written by the spec
// package's own printer, so the text a person saves and replays with
// rds-scenario run is the canonical form of what ran.
package swarm
