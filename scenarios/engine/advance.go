package engine

import (
	"sort"
	"time"
)

// taskQueue is work the engine itself does at a virtual instant (a Lease
// expiring, the second half of a migration), run on the engine's goroutine
// when the instant settles (quiesce).
type taskQueue struct {
	seq   uint64
	items []task
}

type task struct {
	at   time.Time
	seq  uint64
	name string
	do   func() error
}

func (q *taskQueue) add(at time.Time, name string, do func() error) {
	q.seq++
	q.items = append(q.items, task{at: at, seq: q.seq, name: name, do: do})
	sort.Slice(q.items, func(i, j int) bool {
		if !q.items[i].at.Equal(q.items[j].at) {
			return q.items[i].at.Before(q.items[j].at)
		}
		return q.items[i].seq < q.items[j].seq
	})
}

func (q *taskQueue) pending(name string) bool {
	for _, t := range q.items {
		if t.name == name {
			return true
		}
	}
	return false
}

// due removes and returns the first task due at or before now.
func (q *taskQueue) due(now time.Time) (task, bool) {
	if len(q.items) == 0 || q.items[0].at.After(now) {
		return task{}, false
	}
	t := q.items[0]
	q.items = q.items[1:]
	return t, true
}

func (q *taskQueue) next() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return q.items[0].at, true
}

// stepTo moves the clock to t. The entries due fire one at a time, each
// followed by a settle, so what one wakes has run to a standstill before
// the next fires. Entries due at one instant (a reconcile tick and a grace
// deadline, two sessions' command deadlines) fire in an order drawn from the
// seed: scheduling does not decide it, and the swarm explores it.
func (w *World) stepTo(t time.Time) {
	w.steps.Add(1)
	for {
		e := w.vc.popDue(t, w.order.pick)
		if e == nil {
			break
		}
		fireAt, ok := w.vc.claim(e)
		if !ok {
			continue
		}
		e.fire(fireAt)
		w.settle()
	}
	w.vc.advance(t)
}

// OnInstant registers f to run once per virtual instant, after the system
// has settled (the scenario runner evaluates its expectations there).
func (w *World) OnInstant(f func()) { w.onInstant = append(w.onInstant, f) }

// Wake makes sure the clock stops at t (since the start), e.g. at the end of
// an expectation's window.
func (w *World) Wake(t time.Duration) {
	w.tasks.add(w.start.Add(t), "wake", func() error { return nil })
}

// nextInstant is the earliest instant after now at which something is due.
func (w *World) nextInstant() (time.Time, bool) {
	now := w.Clock.Now()
	best, ok := w.vc.next()
	consider := func(t time.Time, found bool) {
		if found && t.After(now) && (!ok || t.Before(best)) {
			best, ok = t, true
		}
	}
	consider(w.tasks.next())
	consider(w.kube.nextDue(now))
	consider(w.fab.pathsDue(now))
	return best, ok
}

// Advance moves virtual time to `to` (since the start), instant by instant,
// each step only from a quiescent system.
func (w *World) Advance(to time.Duration) error {
	target := w.start.Add(to)
	for {
		if err := w.quiesce(); err != nil {
			return err
		}
		now := w.Clock.Now()
		if !now.Before(target) {
			return nil
		}
		next, ok := w.nextInstant()
		if !ok || next.After(target) {
			next = target
		}
		w.stepTo(next)
	}
}
