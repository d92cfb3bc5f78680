// Package engine is the core of the scenario runner. A World is the whole
// system in one process on one virtual clock: the emulated RDS (real SSH over
// in-memory connections) behind a chaos Network, the controller replicas
// (the real RDS connection manager, attachment rules, reconciler and CSI
// controller, wired as cmd/rds-csi wires them, one leader at a time), a node
// plugin per node (the real NodeServer on a simulated fabric whose NVMe/TCP
// controllers lose and regain RDS with the kernel's timing, nvmepath.go), a
// fake API server, and the parts of Kubernetes that call the driver, at
// their upstream defaults: the attach-detach controller (adc.go), the
// external-attacher with its backoff (attacher.go), the kubelet
// (kubelet.go) and pod rescheduling (kube.go). Time moves only from a
// quiescent system (Advance); every observable event is one JSON line with
// its virtual time (Trace, in the schema of scenarios/trace); invariants are
// checked at every instant.
//
// # Where things are
//
//   - world.go: Options, the World, NewWorld and its accessors;
//   - clock.go: the virtual clock (vclock) and the views handed out of it;
//   - advance.go: driving time: Advance, the step from one instant to the
//     next, the engine's own tasks (Wake, OnInstant);
//   - barrier.go: the quiescence barrier (settle, quiesce);
//   - timeline.go: timeline actions and faults (Apply, ApplyFault, EndFault,
//     Migrate);
//   - volumes.go: the World's volume API (CreateVolume, AddPlacement,
//     Unschedule, Placement, AttachedTo, Claims);
//   - kube.go: the Kubernetes model and its loop (sync): VolumeAttachments
//     wanted, rescheduling; attacher.go, adc.go and kubelet.go are its
//     parts; apiserver.go is the fake API server's write accounting;
//   - replicas.go: controller replicas and the Lease (who leads, when a
//     successor may); controller.go: the leader, assembled by
//     driver/controlplane as the binary assembles it, with the engine's
//     hooks, its CSI calls, event recorder and metrics; rdsmodel.go: the RDS
//     transport and connector handed to it and the model of the RDS
//     manager's goroutine;
//   - nodes.go: the node plugins and the simulated data plane; nvmepath.go:
//     the kernel's NVMe/TCP reconnect timing;
//   - invariants.go: what is checked at every instant; trace.go: the trace.
//
// # The clock
//
// vclock implements clock.Clock itself. Firing a timer is a channel send or
// a goroutine start done by the one goroutine that moves time, with no real
// sleep (the archived clock library's Mock sleeps a millisecond per timer,
// which caps a three-hour replay far below the target). Stopped timers are
// detected through a real guard timer armed a century ahead (see clock.go),
// so they leave no phantom deadline behind.
//
// # The quiescence barrier
//
// settle declares the system quiescent when a snapshot of these seams is idle
// and identical over SettleChecks consecutive looks a few scheduler yields
// apart (bounded by SettleTimeout):
//
//   - RouterOS commands and health checks in flight, unless the emulator or
//     the network holds them for the clock (a hang, a latency: parked);
//     CSI calls in flight, unless they wait in such a command; a parked
//     call whose context has ended is busy again until it returns (the
//     emulator still holds the command, the caller is waking up);
//   - connects in flight, AfterFunc callbacks running;
//   - a model of the RDS manager's loop, fed by its state events, its timer
//     arming and the clock steps (busy after Connecting until the next
//     event, after Connected until it arms its health timer, when its timer
//     is stepped over until the check starts); the manager having changed
//     state without its event handled in full; the manager saying Connected
//     while RDS is down or the link has gone;
//   - Kubernetes: successful writes against the events an informer of the
//     engine's own has received, and against the events the reconciler's
//     handlers report (reconciler.Options.Observed); a reconcile run asked
//     for or in progress (Reconciler.Pending), or due because a tick passed;
//   - a generation (trace events, deadlines armed, network connections)
//     that must not change across the looks.
//
// Then quiesce does the engine's own work for the instant (due tasks such as
// a Lease expiring, the Kubernetes loop, completed CSI calls) and settles
// again until nothing changes, checks the invariants and flushes the trace.
//
// What it does not guarantee: a goroutine woken by something no seam
// counts is only covered by the settle window, which is real time, so under
// extreme load an event could land one instant late. The determinism tests
// (20 runs per shipped scenario, and runs under -race on a loaded machine)
// are the guard; a mismatch prints the first differing trace line.
//
// # Trace
//
// Events of one virtual instant are buffered and sorted by (time, encoded
// bytes) when the engine leaves the instant, so scheduling cannot reorder
// them. Error texts are reduced to the rds sentinel they wrap, because the
// text (EOF versus connection reset) depends on scheduling.
package engine
