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
//   - barrier.go: the quiescence barrier (settle, quiesce), and idle.go
//     the instants that skip quiesce's pass; watchgate.go:
//     the fake API server's watch events, held and released one at a time;
//     order.go: the seeded order of what one instant releases;
//   - timeline.go: timeline actions and faults (Apply, ApplyFault, EndFault,
//     Migrate);
//   - volumes.go: the World's volume API (CreateVolume, AddPlacement,
//     Unschedule, Placement, AttachedTo, Claims);
//   - kube.go: the Kubernetes model and its loop (sync): VolumeAttachments
//     wanted, rescheduling; attacher.go, adc.go and kubelet.go are its
//     parts; apiserver.go counts the fake API server's writes (the cached
//     views refresh on them) and runs the engine's own informer;
//   - replicas.go: controller replicas and the Lease (who leads, when a
//     successor may); controller.go: the leader, assembled by
//     driver/controlplane as the binary assembles it, with the engine's
//     hooks, its CSI calls, event recorder and metrics; rdsmodel.go: the RDS
//     transport and connector handed to it, which trace what crosses them;
//   - nodes.go: the node plugins and the simulated data plane; nvmepath.go:
//     the kernel's NVMe/TCP reconnect timing, and the target's access rule
//     with Options.RestrictHosts (a host the export does not allow is
//     refused, one it drops is cut);
//   - invariants.go: what is checked at every instant (with RestrictHosts,
//     data-plane-single-writer on the target's working paths); trace.go: the
//     trace.
//
// # Quiescence: the Go runtime decides
//
// Time may move only when nothing in the World can make progress without
// it. A World runs inside a testing/synctest bubble (internal/bubble hosts
// one per run, in tests and in the rds-scenario binary alike), and settle is
// synctest.Wait: it returns once every goroutine of the World is durably
// blocked, that is blocked on a channel, select, sync.Cond or WaitGroup of
// the bubble, which only another goroutine of the bubble can release. A
// goroutine in a system call, waiting for a mutex or merely runnable is not
// blocked, so Wait keeps waiting for it: there is no window, no poll and no
// heuristic, and a loaded machine only makes a run slower.
//
// Two designs were weighed. Closing every seam by hand (counting commands
// parked in the emulator, AfterFunc callbacks, informer deliveries, and
// modelling the RDS manager's private loop by the durations of its timers)
// is what the engine did before: it needed a model of code it does not own,
// broke silently when that code was refactored, and still ended in a
// real-time settle window that under load let an event land one instant
// late. synctest needs nothing from the driver, and what it requires of the
// World is checkable: every connection is in memory (the emulator's
// internal/memconn pipe and the chaos network's pipes, never a socket),
// every file operation completes on its own, and no goroutine waits on a
// channel made outside the bubble. A goroutine that waits on something only
// the engine can release but that synctest cannot see would hang the run
// instead of corrupting it; internal/bubble prints every goroutine's stack
// if a bubble runs for minutes. The time of the bubble itself never moves:
// the engine's goroutine never sleeps, so library timers on real time
// (client-go's, the emulator's socket defences) stay silent, and the World's
// time is the virtual clock's alone.
//
// # One release at a time
//
// Exact quiescence makes the order of an instant's work the engine's to
// choose, and the engine releases it one piece at a time, each followed by
// a standstill: a due timer (stepTo), a watch event of the fake API server
// (watchGate: one write reaches every informer watching its resource, and
// their goroutines would otherwise race), an attacher call (launch), an
// engine task. Where several are ready at one instant (timers due together,
// watches holding events, the attacher's calls and their replies) the order
// is drawn from the seed (order.go), so the swarm searches orderings and a
// seed still reproduces its run; Options.FixedOrder restores a canonical
// order, which is how a test shows that a failure needed a particular one.
// What one release sets going may still wake two goroutines at once (an RDS
// crash ends every session); the lines it traces are sorted at the
// standstill (Trace.Flush), so they reach the trace in canonical order.
// Then quiesce does the engine's own work for the instant (due tasks, the
// Kubernetes loop, completed CSI calls) and settles again until nothing
// changes, checks the invariants and flushes the trace.
//
// Most instants of a long outage change nothing that work reads: the RDS
// manager's reachability probe fires every second and fails. Such an
// instant is idle (idle.go) and skips the pass; an instant is idle only if
// nothing the pass reads moved since its last run, nothing of its own is
// due, and no invariant is counting towards a threshold, and the skip still
// makes the draws from the seed the pass would have made. The trace is the
// same with the skip on or off (TestIdleSkipKeepsTraces); the incident
// replay skips it at 10,424 of its 12,524 instants.
//
// A divergence between two runs of one seed is a bug in this design or in
// the code under test (map order, a select that picks at random between two
// ready cases): trace.FirstDivergence names the first differing event, and
// `rds-scenario run|swarm --check-determinism` runs every seed twice.
//
// # The clock
//
// vclock's views implement internal/clock.Clock, the project's own clock
// interface. Firing a timer is a channel send or a goroutine start done by
// the one goroutine that moves time, with no real sleep (the archived clock
// library's Mock sleeps a millisecond per timer, which caps a three-hour
// replay far below the target). The Timer and Ticker handed out are the
// engine's own: a holder's Stop takes the entry out of the queue at once (so
// a stopped timer leaves no phantom deadline behind and never counts among
// the candidates of an instant), Reset re-arms it with a new deadline, and
// the engine's claim and the holder's Stop are decided under one lock, as a
// real timer's firing races its Stop (see clock.go).
//
// # Trace
//
// Error texts are reduced to the rds sentinel they wrap, because the text
// (EOF versus connection reset) depends on scheduling.
package engine
