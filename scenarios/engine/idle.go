package engine

import "time"

// idleMark is what the World looked like when the engine's per-instant pass
// (the Kubernetes loop, the invariants, the expectations) last ran to its
// fixed point. An instant that finds the World exactly so, and has nothing
// of the pass's own due, is idle: the pass would compute what it computed
// last time and record nothing. Most instants of a long outage are idle:
// the RDS manager's reachability probe fires every second, fails, and
// changes nothing the pass reads (its counter is not traced while nothing
// else moves, see traceMetrics).
//
// Skipping the pass there is an optimisation with one rule: it must not
// change a trace. Everything the pass reads that can change without a
// trace event is in the mark; what the pass does with time alone (a retry,
// a forced detach, a path's I/O timeout, an invariant's threshold, an
// expectation's window) either bounds the mark (until) or keeps the instant
// from being idle; and the draws the pass makes from the seed are made
// anyway (drawLikePass). TestIdleSkipKeepsTraces holds the rule to the
// shipped scenarios and a swarm of seeds.
type idleMark struct {
	valid      bool
	gen        int64 // trace events so far
	kubeSeq    uint64
	nodeWrites uint64
	vaWrites   uint64
	serving    bool
	reachable  bool
	faults     int
	nodes      int
	// until: the first instant after the mark at which the Kubernetes loop
	// or a path has time-driven work (kubeSim.nextDue, fabric.pathsDue).
	until    time.Time
	hasUntil bool
	vaCount  int // the loop shuffles its VolumeAttachments once per pass
}

// markIdle records the World after a full pass.
func (w *World) markIdle() {
	if w.opts.NoIdleSkip {
		return
	}
	now := w.Clock.Now()
	m := w.fingerprint()
	m.valid = true
	m.until, m.hasUntil = w.kube.nextDue(now)
	if t, ok := w.fab.pathsDue(now); ok && (!m.hasUntil || t.Before(m.until)) {
		m.until, m.hasUntil = t, true
	}
	m.vaCount = len(w.kube.vaList())
	w.idle = m
}

// fingerprint is the part of the mark that a change to the World moves.
func (w *World) fingerprint() idleMark {
	k := w.kube
	return idleMark{
		gen:        w.trace.generation(),
		kubeSeq:    k.seq,
		nodeWrites: k.nodeWrites.Load(),
		vaWrites:   k.vaWrites.Load(),
		serving:    w.Emulator.Serving(),
		reachable:  w.rdsReachable(),
		faults:     len(w.faults),
		nodes:      len(w.nodes),
	}
}

// idleInstant reports whether the current instant may skip the pass: the
// World is as the last pass left it, nothing of the pass is due, and no
// invariant is counting towards a threshold.
func (w *World) idleInstant() bool {
	m := w.idle
	if !m.valid {
		return false
	}
	now := w.Clock.Now()
	if m.hasUntil && !now.Before(m.until) {
		return false
	}
	if at, ok := w.tasks.next(); ok && !at.After(now) {
		return false
	}
	f := w.fingerprint()
	if f.gen != m.gen || f.kubeSeq != m.kubeSeq || f.nodeWrites != m.nodeWrites || f.vaWrites != m.vaWrites ||
		f.serving != m.serving || f.reachable != m.reachable || f.faults != m.faults || f.nodes != m.nodes {
		return false
	}
	if c := w.ctrl; c != nil && (c.metrics == nil || c.metricsGen != f.gen) {
		// Events came after the last traceMetrics (the invariants', the
		// expectations'): it would read the metrics now.
		return false
	}
	k := w.kube
	k.mu.Lock()
	pending := len(k.done) + len(k.nudged)
	k.mu.Unlock()
	return pending == 0 && !w.inv.counting()
}

// drawLikePass makes the draws from the seed a pass at an idle instant
// would have made (kubeSim.sync shuffles the VolumeAttachments once), so
// that skipping the pass leaves every later draw, and so the trace, as it
// was.
func (w *World) drawLikePass() {
	w.order.shuffle(w.idle.vaCount, func(int, int) {})
}
