package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestVClockFiresInOrderAtTheirInstants(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	var fired []string
	a := c.Timer(2 * time.Second)
	b := c.Timer(time.Second)
	done := make(chan struct{})
	c.AfterFunc(3*time.Second, func() { fired = append(fired, "func@"+c.Now().Sub(t0).String()); close(done) })
	if at, ok := v.next(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("next = %v %v, want 1s", at, ok)
	}
	v.set(t0.Add(10 * time.Second))
	got := []time.Time{<-b.C(), <-a.C()}
	if !got[0].Equal(t0.Add(time.Second)) || !got[1].Equal(t0.Add(2*time.Second)) {
		t.Fatalf("timers fired at %v, want each at its own instant", got)
	}
	<-done
	if len(fired) != 1 || fired[0] != "func@10s" {
		// The callback runs after set returns, when now is 10s; what matters
		// is that it ran exactly once.
		t.Fatalf("AfterFunc: %v", fired)
	}
	if !c.Now().Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("now = %v", c.Now())
	}
}

func TestVClockStoppedTimersNeverFireAndLeaveNoDeadline(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tm := c.Timer(time.Second)
	called := false
	f := c.AfterFunc(time.Second, func() { called = true })
	if !tm.Stop() || !f.Stop() {
		t.Fatal("Stop of an armed timer must report true")
	}
	if at, ok := v.next(); ok {
		t.Fatalf("a stopped timer left a deadline at %v", at)
	}
	v.set(t0.Add(time.Minute))
	select {
	case <-tm.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if called {
		t.Fatal("a stopped AfterFunc ran")
	}
	// After firing, Stop reports false, as for a real timer.
	tm2 := c.Timer(time.Second)
	v.set(t0.Add(time.Minute + time.Second))
	if tm2.Stop() {
		t.Fatal("Stop after the timer fired must report false")
	}
}

func TestVClockTickerAndClosedView(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tk := c.Ticker(10 * time.Second)
	v.set(t0.Add(10 * time.Second))
	if got := <-tk.C(); !got.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	v.set(t0.Add(35 * time.Second)) // 20s and 30s: the channel holds one, like a real ticker
	if got := <-tk.C(); !got.Equal(t0.Add(20 * time.Second)) {
		t.Fatalf("tick at %v", got)
	}
	c.close() // the component died: its ticker goes silent
	if at, ok := v.next(); ok {
		t.Fatalf("a closed view left a deadline at %v", at)
	}
	v.set(t0.Add(time.Hour))
	select {
	case <-tk.C():
		t.Fatal("a closed view's ticker ticked")
	default:
	}
}

func TestVClockContextDeadline(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	ctx, cancel := c.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	v.set(t0.Add(4 * time.Second))
	if ctx.Err() != nil {
		t.Fatal("expired early")
	}
	v.set(t0.Add(5 * time.Second))
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded at once, without another goroutine", ctx.Err())
	}
	// A context cancelled early leaves no deadline behind.
	ctx2, cancel2 := c.WithTimeout(context.Background(), time.Minute)
	cancel2()
	if !errors.Is(ctx2.Err(), context.Canceled) {
		t.Fatal(ctx2.Err())
	}
	if at, ok := v.next(); ok {
		t.Fatalf("a cancelled context left a deadline at %v", at)
	}
	// A parent's cancellation reaches the child.
	parent, cancelParent := context.WithCancel(context.Background())
	child, cancelChild := c.WithTimeout(parent, time.Minute)
	defer cancelChild()
	cancelParent()
	<-child.Done()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Fatal(child.Err())
	}
}

func TestVClockTimerReset(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tm := c.Timer(time.Second)
	if !tm.Reset(5 * time.Second) {
		t.Fatal("Reset of an armed timer must report true")
	}
	if at, ok := v.next(); !ok || !at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("next = %v %v, want only the reset deadline at 5s", at, ok)
	}
	v.set(t0.Add(4 * time.Second))
	select {
	case <-tm.C():
		t.Fatal("fired at its old deadline")
	default:
	}
	v.set(t0.Add(5 * time.Second))
	if got := <-tm.C(); !got.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("fired at %v, want 5s", got)
	}
	if tm.Stop() {
		t.Fatal("Stop after the timer fired must report false")
	}
	// Reset after firing re-arms it and reports false.
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer must report false")
	}
	v.set(t0.Add(6 * time.Second))
	if got := <-tm.C(); !got.Equal(t0.Add(6 * time.Second)) {
		t.Fatalf("re-armed timer fired at %v, want 6s", got)
	}
	// A stopped AfterFunc comes back with Reset.
	ran := make(chan struct{})
	f := c.AfterFunc(time.Second, func() { close(ran) })
	f.Stop()
	if f.Reset(2 * time.Second) {
		t.Fatal("Reset of a stopped timer must report false")
	}
	v.set(t0.Add(8 * time.Second))
	<-ran
}

func TestVClockStopBetweenPopAndClaim(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tm := c.Timer(time.Second)
	e := v.popDue(t0.Add(time.Second), func(int) int { return 0 })
	if e == nil {
		t.Fatal("nothing due")
	}
	if !tm.Stop() {
		t.Fatal("the holder's Stop before the claim must win")
	}
	if _, ok := v.claim(e); ok {
		t.Fatal("a stopped timer was claimed")
	}
	// Reset between pop and claim: the old firing is void, the new one comes.
	tm2 := c.Timer(time.Second)
	e = v.popDue(t0.Add(2*time.Second), func(int) int { return 0 })
	if !tm2.Reset(3 * time.Second) {
		t.Fatal("Reset of a popped, unclaimed timer must report true")
	}
	if _, ok := v.claim(e); ok {
		t.Fatal("a reset timer fired at its old deadline")
	}
	// popDue moved now to 2s; the reset deadline is 3s after that.
	if at, ok := v.next(); !ok || !at.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("next = %v %v, want 5s", at, ok)
	}
}

func TestVClockTickerStopAndReset(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	tk := c.Ticker(10 * time.Second)
	tk.Reset(3 * time.Second)
	v.set(t0.Add(7 * time.Second)) // 3s and 6s: the channel holds the first
	if got := <-tk.C(); !got.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("tick at %v, want 3s after Reset", got)
	}
	tk.Stop()
	if at, ok := v.next(); ok {
		t.Fatalf("a stopped ticker left a deadline at %v", at)
	}
	v.set(t0.Add(time.Minute))
	select {
	case <-tk.C():
		t.Fatal("a stopped ticker ticked")
	default:
	}
	tk.Reset(time.Second) // a stopped ticker restarts
	v.set(t0.Add(time.Minute + time.Second))
	if got := <-tk.C(); !got.Equal(t0.Add(time.Minute + time.Second)) {
		t.Fatalf("tick at %v", got)
	}
}

func TestVClockStoppedTimersDoNotCountAmongCandidates(t *testing.T) {
	v := newVClock(t0)
	c := v.view()
	a := c.Timer(time.Second)
	b := c.Timer(time.Second)
	a.Stop()
	asked := 0
	e := v.popDue(t0.Add(time.Second), func(n int) int { asked = n; return 0 })
	if asked != 0 {
		t.Fatalf("pick asked among %d, want no choice with one live timer", asked)
	}
	if _, ok := v.claim(e); !ok {
		t.Fatal("the live timer was not claimed")
	}
	e.fire(t0.Add(time.Second))
	<-b.C()
}
