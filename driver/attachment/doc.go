// Package attachment decides whether a volume may be published to a node
// (CSI ControllerPublish) and records what ControllerUnpublish undoes.
//
// It exists because of an outage: RDS crashed while nodes failed, and the
// VolumeAttachments left behind by the dead nodes blocked every attempt to
// attach their volumes elsewhere. Three hours of outage became five hours of
// manual clean-up. The Manager therefore has to be strict and forgiving at
// once:
//
//   - strict, because two nodes writing one filesystem or one non-shared
//     block device corrupts it. A volume held by a healthy node is never
//     handed to another node; the caller gets a *ConflictError naming the
//     holder.
//   - forgiving, because a node that is really gone must not hold its volumes
//     hostage. Once a holder is reported gone (NodeGone) its claims lapse
//     after a grace period and the next publish elsewhere clears them.
//
// The grace period is there because "gone" is sometimes wrong: a node that
// re-registers, or the source of a KubeVirt live migration that is handed
// off, briefly looks like a failure. NodeBack during the grace period
// cancels it. Only NodeGone starts the grace clock; a NotReady node is not
// an input at all, because NotReady is exactly what an overloaded or
// partitioned node that is still writing to the disk looks like.
//
// MultiNodeBlock volumes (raw block, RWX, used by KubeVirt live migration)
// may be held by two nodes at once, the migration source and target, and
// never by three. A migration that keeps both attachments longer than the
// migration window is reported (event, Migrations, Sweep), not cut: cutting
// access would crash the VM, a warning lets a human look.
//
// Time comes only from the injected clock, and staleness is computed from
// timestamps at each decision rather than by timers, so a scenario runner
// on clock.NewMock gets the same decisions byte for byte on every run, and
// a controller restart (Restore) resumes grace periods and migration windows
// from the recorded timestamps instead of restarting them. Sweep exists for
// the periodic reconciler, to clear stale claims nobody asked about and to
// raise overdue migrations; correctness never depends on it running.
//
// Every timestamp is kept per claim. A global "last detach" or "last gone"
// time would let one migration or one failed node shorten or extend the
// grace of an unrelated volume.
//
// State is sharded by volume so that publishing different volumes does not
// serialise on one lock, and events are delivered after the locks are
// released, so a slow or re-entrant EventSink cannot stall other volumes or
// deadlock the Manager.
package attachment
