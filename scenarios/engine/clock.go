package engine

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// vclock is the World's virtual clock. Its views implement
// internal/clock.Clock directly instead of wrapping the library's Mock, for
// two reasons:
//
//   - the Mock sleeps a real millisecond after every timer it fires and after
//     every Set, which alone would cap a three-hour replay at a few thousand
//     times real time; here firing is a channel send or a goroutine start,
//     done synchronously by the one goroutine that moves time;
//   - the engine must know every armed deadline to jump to the next one, and
//     know when a stopped timer is gone.
//
// internal/clock hands out Timer and Ticker interfaces, so the holder's Stop
// and Reset come here: an entry stays in the queue until its holder stops
// it (which removes it) or it fires; Reset removes it and arms it again with
// a new deadline. The engine pops a due entry (popDue) and then claims it
// (claim); whichever comes first under the lock, the holder's Stop or the
// engine's claim, decides: a stopped entry never fires, and a Stop after the
// claim reports false, exactly as for a real timer that fired concurrently.
// A ticker's claim re-arms it for the next period.
type vclock struct {
	mu  sync.Mutex
	now time.Time
	seq uint64
	q   entryQueue
}

type entry struct {
	// guarded by vclock.mu
	at     time.Time
	seq    uint64
	index  int
	state  entryState
	period time.Duration // tickers

	view *clockView
	kind entryKind
	fire func(now time.Time)
}

type entryKind int

const (
	timerChannel entryKind = iota
	timerFunc
	tickerChannel
	contextDeadline
)

// entryState is where an entry is between arming and firing.
type entryState int

const (
	queued  entryState = iota // in the queue, waiting for its deadline
	popped                    // taken by popDue, not yet claimed
	fired                     // claimed: a timer fired (tickers go back to queued)
	stopped                   // its holder stopped it (or its context ended)
)

type entryQueue []*entry

func (q entryQueue) Len() int { return len(q) }
func (q entryQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q entryQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i]; q[i].index = i; q[j].index = j }
func (q *entryQueue) Push(x any)   { e := x.(*entry); e.index = len(*q); *q = append(*q, e) }
func (q *entryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.index = -1
	return e
}

func newVClock(start time.Time) *vclock { return &vclock{now: start} }

func (v *vclock) Now() time.Time {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.now
}

// add arms e at its deadline.
func (v *vclock) add(e *entry) {
	v.mu.Lock()
	v.push(e)
	v.mu.Unlock()
}

// push queues e after every entry armed before it; v.mu held.
func (v *vclock) push(e *entry) {
	v.seq++
	e.seq = v.seq
	e.state = queued
	heap.Push(&v.q, e)
}

// unqueue takes e out of the queue if it is there; v.mu held.
func (v *vclock) unqueue(e *entry) {
	if e.index >= 0 && e.index < len(v.q) && v.q[e.index] == e {
		heap.Remove(&v.q, e.index)
	}
}

// stop is the holder's Stop: it reports whether e was still to fire.
func (v *vclock) stop(e *entry) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	active := e.state == queued || e.state == popped
	v.unqueue(e)
	e.state = stopped
	return active
}

// reset is the holder's Reset: e is armed again d from now (a ticker with
// period d); it reports whether e had been still to fire.
func (v *vclock) reset(e *entry, d time.Duration) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	active := e.state == queued || e.state == popped
	v.unqueue(e)
	e.at = v.now.Add(d)
	if e.period > 0 {
		e.period = d
	}
	v.push(e)
	return active
}

// remove drops e, whatever its state (a context that ended).
func (v *vclock) remove(e *entry) { v.stop(e) }

// alive drops queued entries whose view was closed; stopped entries are
// not in the queue at all.
func (v *vclock) alive(e *entry) bool {
	return e.view == nil || !e.view.closed.Load()
}

// next returns the earliest live deadline strictly after now.
func (v *vclock) next() (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.q) > 0 {
		e := v.q[0]
		if v.alive(e) {
			return e.at, true
		}
		heap.Pop(&v.q)
	}
	return time.Time{}, false
}

// set moves time to t, firing every entry due by then in (deadline, arming
// order), each at its own instant.
func (v *vclock) set(t time.Time) {
	for {
		e := v.popDue(t, func(int) int { return 0 })
		if e == nil {
			break
		}
		if at, ok := v.claim(e); ok {
			e.fire(at)
		}
	}
	v.advance(t)
}

// popDue removes an entry due at or before t and moves now to its deadline;
// nil when none is due. Of the live entries due at the earliest such
// instant, pick(n) chooses which (0 is the first armed). Entries whose
// holder stopped them do not count: Stop takes them out of the queue at
// once, so what pick is asked does not depend on scheduling.
func (v *vclock) popDue(t time.Time, pick func(n int) int) *entry {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.q) > 0 && !v.q[0].at.After(t) && !v.alive(v.q[0]) {
		heap.Pop(&v.q)
	}
	if len(v.q) == 0 || v.q[0].at.After(t) {
		return nil
	}
	first := heap.Pop(&v.q).(*entry)
	same := []*entry{first}
	for len(v.q) > 0 && v.q[0].at.Equal(first.at) {
		if e := heap.Pop(&v.q).(*entry); v.alive(e) {
			same = append(same, e)
		}
	}
	i := 0
	if len(same) > 1 {
		i = pick(len(same))
	}
	e := same[i]
	for j, o := range same {
		if j != i {
			heap.Push(&v.q, o) // keeps its arming order
		}
	}
	e.state = popped
	if e.at.After(v.now) {
		v.now = e.at
	}
	return e
}

// claim decides whether a popped entry fires, and at which instant: not if
// its view was closed, or its holder stopped or reset it since popDue (a
// reset entry is queued again and fires at its new deadline). A live ticker
// is re-armed for the next period.
func (v *vclock) claim(e *entry) (time.Time, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.state != popped || !v.alive(e) {
		if e.state == popped {
			e.state = stopped
		}
		return time.Time{}, false
	}
	at := e.at
	if e.period > 0 {
		e.at = e.at.Add(e.period)
		v.push(e)
	} else {
		e.state = fired
	}
	return at, true
}

// advance moves now to t once nothing before it is due.
func (v *vclock) advance(t time.Time) {
	v.mu.Lock()
	if t.After(v.now) {
		v.now = t
	}
	v.mu.Unlock()
}

// view returns a clock.Clock on v.
func (v *vclock) view() *clockView { return &clockView{v: v} }

// clockView is one component's clock. Closing it (the component crashed)
// silences every timer and ticker armed through it.
type clockView struct {
	v      *vclock
	closed atomic.Bool
}

var _ clock.Clock = (*clockView)(nil)

func (c *clockView) close()                          { c.closed.Store(true) }
func (c *clockView) Now() time.Time                  { return c.v.Now() }
func (c *clockView) Since(t time.Time) time.Duration { return c.v.Now().Sub(t) }
func (c *clockView) Until(t time.Time) time.Duration { return t.Sub(c.v.Now()) }
func (c *clockView) After(d time.Duration) <-chan time.Time {
	return c.Timer(d).C()
}
func (c *clockView) Sleep(d time.Duration) { <-c.After(d) }

// handle is a Timer or Ticker handed out: Stop and Reset go to the vclock.
type handle struct {
	v  *vclock
	e  *entry
	ch chan time.Time // nil for AfterFunc
}

func (h *handle) C() <-chan time.Time {
	if h.ch == nil {
		return nil
	}
	return h.ch
}
func (h *handle) Stop() bool                 { return h.v.stop(h.e) }
func (h *handle) Reset(d time.Duration) bool { return h.v.reset(h.e, d) }

// tickerHandle is a handle with a ticker's method set.
type tickerHandle struct{ h *handle }

func (t tickerHandle) C() <-chan time.Time   { return t.h.C() }
func (t tickerHandle) Stop()                 { t.h.Stop() }
func (t tickerHandle) Reset(d time.Duration) { t.h.Reset(d) }

// arm queues an entry d from now and returns its handle.
func (c *clockView) arm(d time.Duration, period time.Duration, kind entryKind, ch chan time.Time, fire func(time.Time)) *handle {
	e := &entry{period: period, view: c, kind: kind, fire: fire}
	c.v.mu.Lock()
	e.at = c.v.now.Add(d)
	c.v.push(e)
	c.v.mu.Unlock()
	return &handle{v: c.v, e: e, ch: ch}
}

func sendTo(ch chan time.Time) func(time.Time) {
	return func(now time.Time) {
		select {
		case ch <- now:
		default:
		}
	}
}

func (c *clockView) Timer(d time.Duration) clock.Timer {
	ch := make(chan time.Time, 1)
	return c.arm(d, 0, timerChannel, ch, sendTo(ch))
}

func (c *clockView) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.arm(d, 0, timerFunc, nil, func(time.Time) { go f() })
}

func (c *clockView) Ticker(d time.Duration) clock.Ticker {
	if d <= 0 {
		panic("non-positive interval for Ticker")
	}
	ch := make(chan time.Time, 1)
	return tickerHandle{c.arm(d, d, tickerChannel, ch, sendTo(ch))}
}

func (c *clockView) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return c.WithDeadline(parent, c.v.Now().Add(d))
}

// WithDeadline cancels the context synchronously when the engine steps over
// its deadline, and leaves nothing armed once it is cancelled.
func (c *clockView) WithDeadline(parent context.Context, deadline time.Time) (context.Context, context.CancelFunc) {
	if cur, ok := parent.Deadline(); ok && cur.Before(deadline) {
		return context.WithCancel(parent)
	}
	ctx := &deadlineCtx{parent: parent, deadline: deadline, done: make(chan struct{})}
	if !deadline.After(c.v.Now()) {
		ctx.cancel(context.DeadlineExceeded)
		return ctx, func() {}
	}
	e := &entry{at: deadline, kind: contextDeadline, fire: func(time.Time) { ctx.cancel(context.DeadlineExceeded) }}
	ctx.mu.Lock()
	ctx.onDone = func() { c.v.remove(e) }
	ctx.mu.Unlock()
	c.v.add(e)
	ctx.stopParent = context.AfterFunc(parent, func() { ctx.cancel(parent.Err()) })
	return ctx, func() { ctx.cancel(context.Canceled) }
}

type deadlineCtx struct {
	parent   context.Context
	deadline time.Time
	done     chan struct{}

	mu         sync.Mutex
	err        error
	onDone     func()
	stopParent func() bool
}

func (c *deadlineCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	onDone, stop := c.onDone, c.stopParent
	c.mu.Unlock()
	if onDone != nil && err != context.DeadlineExceeded {
		onDone()
	}
	if stop != nil {
		stop()
	}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *deadlineCtx) Done() <-chan struct{}       { return c.done }
func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
func (c *deadlineCtx) Value(k any) any { return c.parent.Value(k) }
