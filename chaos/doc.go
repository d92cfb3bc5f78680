// Package chaos is the catalogue of deliberate failures that rds-csi is tested
// against: the RDS crashing, hanging or answering slowly, the network between
// the controller and RDS going dark or resetting, Kubernetes nodes going
// NotReady, disappearing or being declared out of service.
//
// The driver exists to survive outages, and an outage that can only be
// reproduced by pulling a cable is one nobody tests twice. Every fault here is
// therefore a value with a stable name (the name a scenario file uses and a
// trace records), a way to start it and a way to end it, so that the scenario
// runner can replay a recorded incident, a unit test can provoke one failure
// in isolation, and both get the same failure. The catalogue's entries (names,
// parameters, documentation) are data in package chaos/catalog, which the
// scenario format reads as well; this package implements them.
//
// Two rules shape the package. First, nothing here reads the wall clock: every
// delay and every timestamp comes from Targets.Clock, so a scenario on a mock
// clock replays hours of outage in a second and produces the same trace every
// time; random choices (latency jitter) come from seeded streams for the same
// reason. Second, each fault acts through the same interfaces the real world
// offers: the emulator's own crash and fault switches, a byte stream between
// the driver and RDS, and the Kubernetes API. The network faults carry the
// names of Shopify toxiproxy's toxics (timeout, reset_peer, latency), so that a
// real toxiproxy can stand in for Network on a kind cluster; where the
// in-process Network behaves differently from toxiproxy, the fault's
// documentation says so.
//
// Faults that need the scenario runner's world (controller crash and restart,
// leader loss, KubeVirt live migration) come with the engine, not here; see
// README.md.
package chaos
