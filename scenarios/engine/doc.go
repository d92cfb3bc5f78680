// Package engine is the core of the scenario runner: it builds the controller
// side of rds-csi in one process on one mock clock (World), moves virtual time
// only from a quiescent system (Advance, Eventually), and records every
// observable event as a JSON line with virtual time (Trace).
//
// # The quiescence barrier
//
// settle declares the system quiescent when a snapshot of these seams is idle
// and identical over SettleChecks consecutive looks separated by a few
// runtime.Gosched calls and tens of microseconds of real sleep (bounded by
// SettleTimeout):
//
//   - RouterOS commands of the driver in flight (wrapper around the Manager as
//     the driver's RDSConnection), connects in flight (wrapped Connector),
//     health checks in flight (wrapped Conn);
//   - a model of the RDS manager's loop, fed by its state events
//     (Manager.Subscribe), its timer arming (its own clock view), the wrapped
//     Conn and the clock steps: after Connecting it is busy until the next
//     event; after Connected until it arms its health timer; when its timer
//     is stepped over, until the health check starts or the next event; after
//     a Disconnected event it is parked (the backoff timer is armed first);
//     when its connection dies it is busy until it reports it. It is also busy
//     when it says Connected but the chaos Network has no connection left;
//   - context deadlines passed whose cancellation has not yet run (contexts
//     are implemented by the clock view, so cancellation is seen exactly),
//     and AfterFunc callbacks running;
//   - the chaos Network: chunks parked whose release time has come;
//   - Kubernetes: successful writes to Nodes, VolumeAttachments and PVs
//     (a reactor in front of the fake clientset's tracker) against the
//     events an informer of the engine's own has received;
//   - the reconciler: when its ticker is stepped over or RDS reconnects, a
//     run is due, and the barrier waits for rds_csi_attachment_reconcile_total
//     {action=run} to reach it;
//   - a generation (trace events, timers armed, Network connections) that
//     must not change across the looks.
//
// What it guarantees: every piece of work the engine can attribute to a seam
// (a command, a connect, a health check, a deadline's cancel, a write's watch
// event, a due reconcile run, a manager transition) has finished before time
// moves, and nothing observable changed across the settle window.
//
// What it does not guarantee: a goroutine woken by something the engine does
// not model (the reconciler's other informers, an AfterFunc callback that has
// not started, the SSH client noticing EOF before the Network does) is only
// covered by the settle window, which is real time. The window is short, so
// under heavy load such a goroutine can still be running when the clock moves;
// the result would be an event stamped one timer step late, which the
// determinism test would catch as a different hash. Timers stopped through the
// library's *clock.Timer/*clock.Ticker cannot be seen, so they leave phantom
// deadlines: the engine steps to them and nothing happens (an idle step).
// RPCs run on the engine's goroutine, so an RPC that waits on virtual time
// would hang (none in the controller does today).
//
// Each clock step costs the archived Mock's own 1 ms real sleep per timer
// fired plus one per Set; that, not the barrier, bounds the compression ratio.
//
// # Trace
//
// Events of one virtual instant are buffered and sorted by (time, encoded
// bytes) when the engine leaves the instant, so scheduling cannot reorder
// them. Error texts are reduced to the rds sentinel they wrap, because the
// text (EOF versus connection reset) depends on scheduling.
package engine
