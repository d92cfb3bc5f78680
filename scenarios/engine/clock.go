package engine

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benbjohnson/clock"
)

// vclock is the World's virtual clock. It implements clock.Clock itself
// instead of wrapping the library's Mock, for two reasons:
//
//   - the Mock sleeps a real millisecond after every timer it fires and after
//     every Set, which alone would cap a three-hour replay at a few thousand
//     times real time; here firing is a channel send or a goroutine start,
//     done synchronously by the one goroutine that moves time;
//   - the engine must know every armed deadline to jump to the next one, and
//     know when a stopped timer is gone.
//
// clock.Clock hands out the library's *clock.Timer and *clock.Ticker, whose
// Stop methods cannot be intercepted. Each one handed out here is therefore
// backed by a real timer armed a century ahead (the guard), which never fires
// on its own; only its Stop result matters. Whoever stops the guard first
// owns the timer: if the holder's Stop wins, the entry is dropped; if the
// engine's wins, the timer fires and the holder's Stop reports false, exactly
// as for a real timer that fired concurrently. Reset on a handed-out timer is
// not supported (the driver never calls it). Tickers cannot be probed that
// way; they stay armed until their view is closed (a controller crash).
type vclock struct {
	mu  sync.Mutex
	now time.Time
	seq uint64
	q   entryQueue
}

const never = 100 * 365 * 24 * time.Hour

type entry struct {
	at     time.Time
	seq    uint64
	index  int
	guard  *clock.Timer  // real, armed a century ahead; nil for tickers and contexts
	period time.Duration // tickers
	view   *clockView
	kind   entryKind
	fire   func(now time.Time)
}

type entryKind int

const (
	timerChannel entryKind = iota
	timerFunc
	tickerChannel
	contextDeadline
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

func (v *vclock) add(e *entry) {
	v.mu.Lock()
	v.seq++
	e.seq = v.seq
	heap.Push(&v.q, e)
	v.mu.Unlock()
}

func (v *vclock) remove(e *entry) {
	v.mu.Lock()
	if e.index >= 0 && e.index < len(v.q) && v.q[e.index] == e {
		heap.Remove(&v.q, e.index)
	}
	v.mu.Unlock()
}

// alive drops entries whose holder stopped them or whose view was closed.
func (v *vclock) alive(e *entry) bool {
	if e.view != nil && e.view.closed.Load() {
		return false
	}
	if e.guard != nil && !e.guard.Reset(never) {
		e.guard.Stop() // Reset re-armed a stopped guard
		return false
	}
	return true
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
		at := e.at // claim re-arms a ticker
		if v.claim(e) {
			e.fire(at)
		}
	}
	v.advance(t)
}

// popDue removes an entry due at or before t and moves now to its deadline;
// nil when none is due. Of the live entries due at the earliest such
// instant, pick(n) chooses which (0 is the first armed). Entries whose
// holder stopped them are dropped first: whether a timer armed and stopped
// at once still waits in the queue depends on scheduling, and it must not
// change what pick is asked.
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
	if e.at.After(v.now) {
		v.now = e.at
	}
	return e
}

// claim decides whether a popped entry fires: not if its view was closed or
// its holder stopped it first (the engine's Stop of the guard wins or loses
// the race, as a real timer's firing does). A live ticker is re-armed.
func (v *vclock) claim(e *entry) bool {
	live := e.view == nil || !e.view.closed.Load()
	if live && e.guard != nil {
		live = e.guard.Stop()
	}
	if live && e.period > 0 {
		v.mu.Lock()
		e.at = e.at.Add(e.period)
		v.seq++
		e.seq = v.seq
		heap.Push(&v.q, e)
		v.mu.Unlock()
	}
	return live
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
	return c.Timer(d).C
}
func (c *clockView) Sleep(d time.Duration)                 { <-c.After(d) }
func (c *clockView) Tick(d time.Duration) <-chan time.Time { return c.Ticker(d).C }

func (c *clockView) Timer(d time.Duration) *clock.Timer {
	ch := make(chan time.Time, 1)
	t := clock.New().AfterFunc(never, func() {})
	t.C = ch
	c.v.add(&entry{at: c.v.Now().Add(d), guard: t, view: c, kind: timerChannel, fire: func(now time.Time) {
		select {
		case ch <- now:
		default:
		}
	}})
	return t
}

func (c *clockView) AfterFunc(d time.Duration, f func()) *clock.Timer {
	t := clock.New().AfterFunc(never, func() {})
	c.v.add(&entry{at: c.v.Now().Add(d), guard: t, view: c, kind: timerFunc, fire: func(time.Time) { go f() }})
	return t
}

func (c *clockView) Ticker(d time.Duration) *clock.Ticker {
	ch := make(chan time.Time, 1)
	t := clock.New().Ticker(never)
	t.C = ch
	c.v.add(&entry{at: c.v.Now().Add(d), period: d, view: c, kind: tickerChannel, fire: func(now time.Time) {
		select {
		case ch <- now:
		default:
		}
	}})
	return t
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
