package rds

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// fakeConnector connects instantly when up and fails when down, recording
// the (mock) time of every attempt.
type fakeConnector struct {
	clk      clock.Clock
	up       atomic.Bool
	mu       sync.Mutex
	attempts []time.Time
	conns    []*fakeConn
	health   func(ctx context.Context) error
	run      func(ctx context.Context, cmd string) (string, error)
}

func (f *fakeConnector) Connect(ctx context.Context) (Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, f.clk.Now())
	if !f.up.Load() {
		return nil, unavailablef("connection refused")
	}
	c := &fakeConn{done: make(chan struct{}), f: f}
	f.conns = append(f.conns, c)
	return c, nil
}

func (f *fakeConnector) attemptTimes() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.attempts...)
}

func (f *fakeConnector) last() *fakeConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[len(f.conns)-1]
}

type fakeConn struct {
	f    *fakeConnector
	done chan struct{}
	once sync.Once
}

func (c *fakeConn) Run(ctx context.Context, cmd string) (string, error) {
	select {
	case <-c.done:
		return "", unavailablef("%w", errConnClosed)
	default:
	}
	if c.f.run != nil {
		return c.f.run(ctx, cmd)
	}
	return "  name: fake\n", nil
}

func (c *fakeConn) HealthCheck(ctx context.Context) error {
	if c.f.health != nil {
		return c.f.health(ctx)
	}
	return nil
}

func (c *fakeConn) Close() error { c.once.Do(func() { close(c.done) }); return nil }

func (c *fakeConn) Done() <-chan struct{} { return c.done }

// events collects manager events on a channel.
func events(m *Manager) chan Event {
	ch := make(chan Event, 10000)
	m.Subscribe(func(ev Event) {
		select {
		case ch <- ev:
		default: // never block the manager; tests drain as they go
		}
	})
	return ch
}

// next returns the next event in state s, skipping others.
func next(t *testing.T, ch chan Event, s State) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.State == s {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", s)
		}
	}
}

func newTestManager(t *testing.T, cn Connector, clk clock.Clock, mod func(*ManagerConfig)) *Manager {
	t.Helper()
	cfg := ManagerConfig{Connector: cn, Clock: clk, Rand: rand.New(rand.NewPCG(1, 2)), Registerer: prometheus.NewRegistry()}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func startAsync(m *Manager) chan error {
	errc := make(chan error, 1)
	go func() { errc <- m.Start(context.Background()) }()
	return errc
}

// checkBackoff drives the mock clock through failed attempts and checks
// each delay against want (seconds, +/-10%) and against the attempt times.
func checkBackoff(t *testing.T, clk *libclock.Mock, fc *fakeConnector, ch chan Event, want []float64) {
	t.Helper()
	for i, w := range want {
		ev := next(t, ch, StateDisconnected)
		lo, hi := time.Duration(w*0.9*float64(time.Second)), time.Duration(w*1.1*float64(time.Second))
		if ev.RetryIn < lo || ev.RetryIn > hi {
			t.Fatalf("delay %d = %v, want %vs +/-10%%", i+1, ev.RetryIn, w)
		}
		before := len(fc.attemptTimes())
		at := clk.Now()
		clk.Add(ev.RetryIn - time.Millisecond)
		if n := len(fc.attemptTimes()); n != before {
			t.Fatalf("attempt %d came early", i+1)
		}
		clk.Add(time.Millisecond)
		next(t, ch, StateConnecting)
		waitFor(t, "attempt", func() bool { return len(fc.attemptTimes()) == before+1 })
		if got := fc.attemptTimes()[before].Sub(at); got != ev.RetryIn {
			t.Fatalf("attempt %d after %v, want %v", i+1, got, ev.RetryIn)
		}
	}
}

func TestManagerBackoff(t *testing.T) {
	clk := libclock.NewMock()
	fc := &fakeConnector{clk: clock.FromLibrary(clk)}
	m := newTestManager(t, fc, clock.FromLibrary(clk), nil)
	ch := events(m)
	errc := startAsync(m)

	// Start-up: first attempt at once, then 1, 2, 4, 8, 16, 16, 16 s.
	checkBackoff(t, clk, fc, ch, []float64{1, 2, 4, 8, 16, 16, 16})
	if err := <-errc; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start = %v, want unavailable after the bounded first connect", err)
	}
	if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run while disconnected = %v", err)
	}

	// The server returns: connected within one attempt.
	fc.up.Store(true)
	ev := next(t, ch, StateDisconnected)
	before := len(fc.attemptTimes())
	clk.Add(ev.RetryIn)
	next(t, ch, StateConnected)
	if n := len(fc.attemptTimes()); n != before+1 {
		t.Fatalf("%d attempts to reconnect, want 1", n-before)
	}
	if out, err := m.Run(context.Background(), "x"); err != nil || out == "" {
		t.Fatalf("Run = %q, %v", out, err)
	}

	// Lose it again: the backoff restarts at 1 s.
	fc.up.Store(false)
	fc.last().Close()
	checkBackoff(t, clk, fc, ch, []float64{1, 2, 4, 8, 16, 16})
	fc.up.Store(true)
	ev = next(t, ch, StateDisconnected)
	clk.Add(ev.RetryIn)
	next(t, ch, StateConnected)

	reg := m.cfg.Registerer.(*prometheus.Registry)
	if got := counter(t, reg, "rds_csi_rds_reconnect_total", map[string]string{"status": "success"}); got != 2 {
		t.Errorf("reconnect success = %v", got)
	}
	if got := counter(t, reg, "rds_csi_rds_reconnect_total", map[string]string{"status": "failure"}); got != 14 {
		t.Errorf("reconnect failure = %v", got)
	}
	if got := counter(t, reg, "rds_csi_rds_connection_state", nil); got != float64(StateConnected) {
		t.Errorf("state gauge = %v", got)
	}
	if got := counter(t, reg, "rds_csi_rds_reconnect_duration_seconds", nil); got != 2 {
		t.Errorf("reconnect duration samples = %v", got)
	}
}

// TestManagerJitterDeterministic: the same seed gives the same delays, and
// they spread within the jitter band.
func TestManagerJitterDeterministic(t *testing.T) {
	delays := func(seed uint64) []time.Duration {
		m, _ := NewManager(ManagerConfig{Connector: &fakeConnector{}, Rand: rand.New(rand.NewPCG(seed, 1))})
		var ds []time.Duration
		for i := 1; i <= 50; i++ {
			ds = append(ds, m.backoff(i))
		}
		return ds
	}
	a, b, c := delays(7), delays(7), delays(8)
	distinct := map[time.Duration]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different delays")
		}
		distinct[a[i]] = true
	}
	if len(distinct) < 40 || a[10] == c[10] {
		t.Error("jitter is not jittering")
	}
	m, _ := NewManager(ManagerConfig{Connector: &fakeConnector{}, Jitter: -1})
	for i, want := range []time.Duration{1, 2, 4, 8, 16, 16, 16} {
		if got := m.backoff(i + 1); got != want*time.Second {
			t.Errorf("no-jitter delay %d = %v", i+1, got)
		}
	}
}

// armClock is a mock clock that logs every Timer armed on it. The manager
// arms one Timer at a time (Start's wait aside) and re-arms it only after
// the work the previous one set off: a probe, a health check, an attempt.
// libclock.Mock.Add fires only the timers that exist when it passes their
// time, so a test must not advance the clock before the timer it means to
// fire is armed, and must not advance it past one the manager arms
// meanwhile: that timer would be skipped and the wait behind it would never
// end. A test waits for the timer with waitArmed and then adds exactly its
// duration.
var _ clock.Clock = (*armClock)(nil)

type armClock struct {
	*libclock.Mock
	mu    sync.Mutex
	armed []time.Duration
}

func newArmClock() *armClock { return &armClock{Mock: libclock.NewMock()} }

// AfterFunc, Ticker and Timer make the Mock an internal/clock.Clock; its
// other methods already have the interface's signatures.
func (c *armClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return clock.FromLibrary(c.Mock).AfterFunc(d, f)
}

func (c *armClock) Ticker(d time.Duration) clock.Ticker { return clock.FromLibrary(c.Mock).Ticker(d) }

func (c *armClock) Timer(d time.Duration) clock.Timer {
	tm := clock.FromLibrary(c.Mock).Timer(d)
	c.mu.Lock()
	c.armed = append(c.armed, d)
	c.mu.Unlock()
	return tm
}

// mark is the number of Timers armed so far.
func (c *armClock) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.armed)
}

// waitArmed waits until a Timer of duration d is armed after mark, and
// returns the mark just after it.
func (c *armClock) waitArmed(t testing.TB, mark int, d time.Duration) int {
	t.Helper()
	next := -1
	waitFor(t, fmt.Sprintf("a %v timer", d), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i := mark; i < len(c.armed); i++ {
			if c.armed[i] == d {
				next = i + 1
				return true
			}
		}
		return false
	})
	return next
}

// step waits for the next Timer of duration d after *mark, advances the
// clock by d so that it fires, and moves *mark past it.
func (c *armClock) step(t testing.TB, mark *int, d time.Duration) {
	t.Helper()
	*mark = c.waitArmed(t, *mark, d)
	c.Add(d)
}

func TestManagerHealthCheck(t *testing.T) {
	clk := newArmClock()
	fc := &fakeConnector{clk: clk}
	fc.up.Store(true)
	var inFlight, maxInFlight, checks atomic.Int32
	var fail, armed atomic.Bool
	gate := make(chan struct{})
	fc.health = func(ctx context.Context) error {
		if !armed.Load() {
			return nil // the check that completes the first connect
		}
		checks.Add(1)
		if n := inFlight.Add(1); n > maxInFlight.Load() {
			maxInFlight.Store(n)
		}
		defer inFlight.Add(-1)
		if fail.Load() {
			return errors.New("health: no answer")
		}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	const interval = 10 * time.Second
	m := newTestManager(t, fc, clk, func(c *ManagerConfig) {
		c.HealthInterval, c.HealthTimeout = interval, 5*time.Second
		c.InitialConnectTimeout = time.Minute // Start's timer is not a health timer
	})
	ch := events(m)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	// First check after one interval; while it hangs, time passes but no
	// second check starts. The loop arms its health timer only after the
	// Connected event that Start waits for: the interval is added once
	// that timer exists.
	mark := 0
	clk.step(t, &mark, interval)
	waitFor(t, "the first check", func() bool { return checks.Load() == 1 })
	for i := 0; i < 4; i++ {
		clk.Add(time.Second) // stay below the 5 s health timeout
	}
	if checks.Load() != 1 || maxInFlight.Load() != 1 || m.State() != StateConnected {
		t.Fatalf("checks=%d inflight=%d state=%s", checks.Load(), maxInFlight.Load(), m.State())
	}
	gate <- struct{}{} // first check succeeds
	// A check that hangs past its timeout tears the connection down. The
	// next interval starts when the manager arms its timer after the check.
	clk.step(t, &mark, interval)
	waitFor(t, "the second check", func() bool { return checks.Load() == 2 })
	clk.Add(5 * time.Second)
	ev := next(t, ch, StateDisconnected)
	if !errors.Is(ev.Err, context.DeadlineExceeded) || ev.RetryIn < 900*time.Millisecond || ev.RetryIn > 1100*time.Millisecond {
		t.Fatalf("disconnect event %+v", ev)
	}
	select {
	case <-fc.conns[0].done:
	default:
		t.Fatal("unhealthy conn not closed")
	}
	clk.Add(ev.RetryIn)
	// A reconnect counts only once RDS answers a command.
	next(t, ch, StateConnecting)
	waitFor(t, "the reconnect's check", func() bool { return checks.Load() == 3 })
	if m.State() == StateConnected {
		t.Fatal("connected before RDS answered")
	}
	gate <- struct{}{}
	next(t, ch, StateConnected)

	// A failing check also reconnects.
	fail.Store(true)
	clk.step(t, &mark, interval)
	waitFor(t, "the failing check", func() bool { return checks.Load() == 4 })
	ev = next(t, ch, StateDisconnected)
	if ev.Err == nil || maxInFlight.Load() != 1 {
		t.Fatalf("event %+v, max in flight %d", ev, maxInFlight.Load())
	}
}

func TestManagerCommandTimeoutAndClose(t *testing.T) {
	clk := libclock.NewMock()
	fc := &fakeConnector{clk: clock.FromLibrary(clk)}
	fc.up.Store(true)
	running := make(chan struct{})
	fc.run = func(ctx context.Context, cmd string) (string, error) {
		close(running)
		<-ctx.Done() // a hung command
		return "", unavailablef("abandoned: %w", ctx.Err())
	}
	m := newTestManager(t, fc, clock.FromLibrary(clk), func(c *ManagerConfig) { c.CommandTimeout = 30 * time.Second; c.HealthInterval = time.Hour })
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := m.Run(context.Background(), "hang")
		errc <- err
	}()
	// The command's own deadline runs on the mock clock. Its timer exists
	// once the command runs; an earlier Add would pass it by.
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the command never ran")
	}
	clk.Add(30*time.Second - time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("hung command ended before its timeout: %v", err)
	default:
	}
	clk.Add(time.Millisecond)
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("hung command = %v at %v", err, clk.Now())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hung command not abandoned at its timeout")
	}
	m.Close()
	if m.State() != StateDisconnected {
		t.Fatal("not disconnected after Close")
	}
	if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run after Close = %v", err)
	}
	if err := m.Start(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start after Close = %v", err)
	}
	if _, err := NewManager(ManagerConfig{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatal("nil connector accepted")
	}
}

// TestManagerBoundedStart: Start gives up after InitialConnectTimeout while
// the manager keeps trying, and connects once the server appears.
func TestManagerBoundedStart(t *testing.T) {
	clk := newArmClock()
	fc := &fakeConnector{clk: clk}
	m := newTestManager(t, fc, clk, func(c *ManagerConfig) { c.InitialConnectTimeout = 3 * time.Second; c.Jitter = -1 })
	ch := events(m)
	errc := startAsync(m)
	next(t, ch, StateDisconnected) // attempt 1 failed, retry in 1 s
	// Start arms its 3 s timer after it started the loop: the first
	// attempt can fail before it does.
	clk.waitArmed(t, 0, 3*time.Second)
	clk.Add(time.Second)
	next(t, ch, StateDisconnected) // attempt 2 failed, retry in 2 s
	clk.Add(2 * time.Second)       // Start's 3 s pass
	if err := <-errc; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Start = %v", err)
	}
	ev := next(t, ch, StateDisconnected) // attempt 3 (at 3 s) failed too
	if ev.Failures != 3 || ev.RetryIn != 4*time.Second {
		t.Fatalf("event %+v", ev)
	}
	fc.up.Store(true)
	clk.Add(ev.RetryIn)
	next(t, ch, StateConnected)
}

// probeConnector is a fakeConnector that can probe. While down, a connect
// fails as unreachable, or, with hung set, as a handshake that RDS accepts
// and never completes (the probe then succeeds: the port is open).
type probeConnector struct {
	*fakeConnector
	hung   atomic.Bool
	probes atomic.Int32
}

func (p *probeConnector) Connect(ctx context.Context) (Conn, error) {
	c, err := p.fakeConnector.Connect(ctx)
	if err != nil && !p.hung.Load() {
		err = unavailablef("%w: dial: connection refused", ErrUnreachable)
	}
	return c, err
}

func (p *probeConnector) Probe(ctx context.Context) error {
	p.probes.Add(1)
	if p.up.Load() || p.hung.Load() {
		return nil
	}
	return unavailablef("%w: connection refused", ErrUnreachable)
}

func newProbeManager(t *testing.T, hung bool) (*Manager, *armClock, *probeConnector, chan Event) {
	clk := newArmClock()
	pc := &probeConnector{fakeConnector: &fakeConnector{clk: clk}}
	pc.hung.Store(hung)
	m := newTestManager(t, pc, clk, func(c *ManagerConfig) {
		c.InitialBackoff, c.MaxBackoff, c.Jitter, c.ProbeInterval = 16*time.Second, 16*time.Second, -1, 4*time.Second
	})
	ch := events(m)
	startAsync(m)
	next(t, ch, StateDisconnected)
	return m, clk, pc, ch
}

// TestManagerProbeEndsBackoff: after RDS was unreachable, a probe that finds
// it accepting connections starts the next attempt at once, not when the
// 16 s backoff ends; probes and handshakes are counted apart.
func TestManagerProbeEndsBackoff(t *testing.T) {
	m, clk, pc, ch := newProbeManager(t, false)
	start := clk.Now()
	// Each failed probe arms the timer of the next: wait for it before the
	// clock passes its time.
	mark := 0
	for i := int32(1); i <= 2; i++ {
		clk.step(t, &mark, 4*time.Second)
		waitFor(t, "a probe", func() bool { return pc.probes.Load() == i })
	}
	if n := len(pc.attemptTimes()); n != 1 {
		t.Fatalf("%d handshake attempts during probing, want only the first", n)
	}
	pc.up.Store(true)
	clk.step(t, &mark, 4*time.Second)
	next(t, ch, StateConnected)
	if got := clk.Now().Sub(start); got != 12*time.Second {
		t.Errorf("connected %v after the failure, want 12s (the third probe), not the 16s backoff", got)
	}
	if n := len(pc.attemptTimes()); n != 2 {
		t.Errorf("%d handshake attempts, want 2", n)
	}
	reg := m.cfg.Registerer.(*prometheus.Registry)
	if got := counter(t, reg, "rds_csi_rds_reachability_probes_total", map[string]string{"status": "failure"}); got != 2 {
		t.Errorf("failed probes = %v, want 2", got)
	}
	if got := counter(t, reg, "rds_csi_rds_reachability_probes_total", map[string]string{"status": "success"}); got != 1 {
		t.Errorf("successful probes = %v, want 1", got)
	}
}

// TestManagerHungRDSIsNotProbed: an RDS that accepts TCP but fails the
// handshake would pass every probe, so the manager does not probe it and
// keeps to its backoff; a failed Run does not wake it either.
func TestManagerHungRDSIsNotProbed(t *testing.T) {
	m, clk, pc, ch := newProbeManager(t, true)
	for range 3 {
		clk.Add(4 * time.Second)
		if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Run = %v", err)
		}
		if m.handlingWake() {
			t.Fatal("a failed Run woke the manager of a hung RDS")
		}
	}
	clk.Add(4 * time.Second) // 16s: the backoff ends
	next(t, ch, StateConnecting)
	next(t, ch, StateDisconnected)
	if n := pc.probes.Load(); n != 0 {
		t.Errorf("%d probes of a hung RDS, want 0", n)
	}
	if n := len(pc.attemptTimes()); n != 2 {
		t.Errorf("%d attempts, want 2 (start, then the end of the backoff)", n)
	}
}

// TestManagerFailedRunWakesProbe: a CSI call that found RDS unreachable
// asks for a probe at once, at most once per ProbeInterval.
func TestManagerFailedRunWakesProbe(t *testing.T) {
	m, clk, pc, ch := newProbeManager(t, false)
	mark := clk.mark() // the first probe timer is armed before the event
	if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v", err)
	}
	waitFor(t, "the woken probe", func() bool { return pc.probes.Load() == 1 && !m.handlingWake() })
	// The woken probe failed; the next one is due ProbeInterval after it
	// once the manager has armed its timer.
	clk.waitArmed(t, mark, 4*time.Second)
	pc.up.Store(true)
	clk.Add(time.Second)
	if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v", err)
	}
	if m.handlingWake() {
		t.Fatal("a second Run within ProbeInterval woke another probe")
	}
	clk.Add(3 * time.Second) // ProbeInterval since the woken probe: its timer fires
	next(t, ch, StateConnected)
	if n := pc.probes.Load(); n != 2 {
		t.Errorf("%d probes, want 2", n)
	}
	// A lost connection says nothing about reachability: no probes until
	// an attempt finds RDS unreachable.
	pc.up.Store(false)
	pc.last().Close()
	next(t, ch, StateDisconnected)
	if _, err := m.Run(context.Background(), "x"); err == nil || m.handlingWake() {
		t.Fatalf("Run after the loss = %v, woke a probe: %v", err, m.handlingWake())
	}
	clk.Add(16 * time.Second)
	next(t, ch, StateConnecting)
	next(t, ch, StateDisconnected)
	before := pc.probes.Load()
	pc.up.Store(true)
	if _, err := m.Run(context.Background(), "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Run = %v", err)
	}
	next(t, ch, StateConnected) // no clock step: the Run's probe found RDS
	if n := pc.probes.Load(); n != before+1 {
		t.Errorf("%d probes after the loss, want 1", n-before)
	}
}

// TestEventTransitions: Connected and Lost name exactly the transitions into
// and out of StateConnected; the controller's RDS wiring relies on them.
func TestEventTransitions(t *testing.T) {
	for _, tc := range []struct {
		prev, state     State
		connected, lost bool
	}{
		{StateDisconnected, StateConnecting, false, false},
		{StateConnecting, StateConnected, true, false},
		{StateDisconnected, StateConnected, true, false},
		{StateConnected, StateConnected, false, false},
		{StateConnected, StateDisconnected, false, true},
		{StateConnected, StateConnecting, false, true},
		{StateConnecting, StateDisconnected, false, false},
	} {
		ev := Event{Previous: tc.prev, State: tc.state}
		if ev.Connected() != tc.connected || ev.Lost() != tc.lost {
			t.Errorf("%s -> %s: Connected %v Lost %v, want %v %v", tc.prev, tc.state, ev.Connected(), ev.Lost(), tc.connected, tc.lost)
		}
	}
}
