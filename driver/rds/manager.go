package rds

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// Conn is one established connection to RDS.
type Conn interface {
	// Run runs one command; see Transport.
	Run(ctx context.Context, command string) (string, error)
	// HealthCheck runs a cheap command and reports whether the connection
	// still works. It must not be starved by Run's session limit.
	HealthCheck(ctx context.Context) error
	// Close tears the connection down; it is idempotent.
	Close() error
	// Done is closed once the connection is gone.
	Done() <-chan struct{}
}

// Connector establishes connections. SSHConnector is the production one.
type Connector interface {
	Connect(ctx context.Context) (Conn, error)
}

// Prober is implemented by a Connector that can tell cheaply whether RDS
// accepts connections again (SSHConnector: a TCP connect to the SSH port,
// closed before the handshake). While the last attempt could not reach RDS
// at all (ErrUnreachable), the Manager probes about once per ProbeInterval
// and attempts at once when a probe succeeds, instead of sleeping out its
// backoff. After any other failure (a handshake that fails, an RDS that
// accepts and never answers) it does not probe: a probe would succeed and
// prove nothing, and the backoff is what keeps a hung RDS from being
// hammered.
type Prober interface {
	Probe(ctx context.Context) error
}

// State is the connection state. Its numeric value is what the
// rds_csi_rds_connection_state gauge reports.
type State int32

const (
	StateDisconnected State = 0
	StateConnecting   State = 1
	StateConnected    State = 2
)

func (s State) String() string {
	switch s {
	case StateDisconnected:
		return "disconnected"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	}
	return "unknown"
}

// Event is delivered to subscribers on every state transition.
type Event struct {
	Time     time.Time
	State    State
	Previous State
	// Failures counts consecutive failed connection attempts (a lost
	// connection counts as one).
	Failures int
	// RetryIn is, for StateDisconnected, the delay until the next attempt.
	// The backoff timer is already armed when the event is delivered.
	RetryIn time.Duration
	// Err is why the connection was lost or the last attempt failed.
	Err error
}

// Connected reports whether the event is the transition into StateConnected:
// the first connection or a reconnect.
func (e Event) Connected() bool {
	return e.State == StateConnected && e.Previous != StateConnected
}

// Lost reports whether the event is the transition out of StateConnected.
func (e Event) Lost() bool {
	return e.Previous == StateConnected && e.State != StateConnected
}

// Rand is the randomness source for backoff jitter; *rand.Rand from
// math/rand and math/rand/v2 satisfy it. It is only used from the manager's
// own goroutine.
type Rand interface{ Float64() float64 }

// DefaultCommandTimeout bounds one command when ManagerConfig says nothing.
const DefaultCommandTimeout = time.Minute

// ManagerConfig configures a Manager. Zero durations take the defaults
// noted on each field.
type ManagerConfig struct {
	Connector Connector
	// Clock drives every wait; nil means the real clock.
	Clock clock.Clock
	// Rand drives jitter; nil means a non-deterministic source. The scenario
	// runner passes a seeded one.
	Rand Rand
	// InitialBackoff (1s) doubles after each failed attempt up to
	// MaxBackoff (16s), where it stays.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// Jitter is the +/- fraction applied to each delay: 0 means 0.1,
	// negative means none.
	Jitter float64
	// InitialConnectTimeout (10s) bounds how long Start waits for the first
	// connection. The manager keeps trying in the background after it.
	InitialConnectTimeout time.Duration
	// ConnectTimeout (10s) bounds one dial + handshake.
	ConnectTimeout time.Duration
	// HealthInterval (10s) is the pause between health checks; checks never
	// overlap. HealthTimeout (5s) bounds one.
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// CommandTimeout (60s) is an upper bound on any command, on top of the
	// caller's context.
	CommandTimeout time.Duration
	// ProbeInterval (1s, jittered) is the pause between reachability probes
	// while RDS is unreachable (see Prober); a failed Run wakes a probe at
	// once, at most once per ProbeInterval. ProbeTimeout (1s) bounds one.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	// Registerer receives the connection metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *ManagerConfig) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.InitialBackoff, time.Second)
	def(&c.MaxBackoff, 16*time.Second)
	def(&c.InitialConnectTimeout, 10*time.Second)
	def(&c.ConnectTimeout, 10*time.Second)
	def(&c.HealthInterval, 10*time.Second)
	def(&c.HealthTimeout, 5*time.Second)
	def(&c.CommandTimeout, DefaultCommandTimeout)
	def(&c.ProbeInterval, time.Second)
	def(&c.ProbeTimeout, time.Second)
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.1
	case c.Jitter < 0:
		c.Jitter = 0
	case c.Jitter > 1:
		c.Jitter = 1
	}
	if c.Clock == nil {
		c.Clock = clock.New()
	}
	if c.Rand == nil {
		c.Rand = globalRand{}
	}
}

type globalRand struct{}

func (globalRand) Float64() float64 { return rand.Float64() }

type connBox struct{ c Conn }

// Manager keeps one connection to RDS alive and implements Transport on it.
//
// While not connected, Run fails at once with ErrUnavailable instead of
// queueing: the CSI sidecars retry with their own backoff, and piling up
// callers behind a dead device only delays their errors.
type Manager struct {
	cfg     ManagerConfig
	clk     clock.Clock
	metrics *managerMetrics

	state atomic.Int32
	conn  atomic.Pointer[connBox]

	mu      sync.Mutex
	subs    map[int]func(Event)
	nextSub int
	started bool
	closed  bool

	ctx      context.Context
	cancel   context.CancelFunc
	loopDone chan struct{}

	prober Prober // nil when the Connector cannot probe
	// wakeMu guards probing (the loop waits out a backoff after RDS was
	// unreachable, with probes), lastWake (when a failed Run last asked
	// for a probe, to rate-limit them) and wakes (requests sent on wake
	// and not yet fully handled, see handlingWake).
	wakeMu   sync.Mutex
	probing  bool
	lastWake time.Time
	wakes    int
	wake     chan struct{}
}

// NewManager returns a Manager; call Start to connect.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.Connector == nil {
		return nil, invalidf("manager: nil Connector")
	}
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg:      cfg,
		clk:      cfg.Clock,
		metrics:  newManagerMetrics(cfg.Registerer),
		subs:     map[int]func(Event){},
		ctx:      ctx,
		cancel:   cancel,
		loopDone: make(chan struct{}),
		wake:     make(chan struct{}, 1),
	}
	m.prober, _ = cfg.Connector.(Prober)
	m.metrics.state.Set(float64(StateDisconnected))
	return m, nil
}

// State returns the current connection state.
func (m *Manager) State() State { return State(m.state.Load()) }

// Subscribe registers fn for state transitions and returns a function that
// unregisters it. fn runs on the manager's goroutine and must not block.
func (m *Manager) Subscribe(fn func(Event)) (unsubscribe func()) {
	m.mu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = fn
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.subs, id)
		m.mu.Unlock()
	}
}

func (m *Manager) setState(s State, failures int, retryIn time.Duration, err error) {
	prev := State(m.state.Swap(int32(s)))
	m.metrics.state.Set(float64(s))
	ev := Event{Time: m.clk.Now(), State: s, Previous: prev, Failures: failures, RetryIn: retryIn, Err: err}
	if prev != s {
		if err != nil {
			klog.InfoS("RDS connection state changed", "state", s, "previous", prev, "failures", failures, "retryIn", retryIn, "err", err.Error())
		} else {
			klog.InfoS("RDS connection state changed", "state", s, "previous", prev, "failures", failures, "retryIn", retryIn)
		}
	}
	m.mu.Lock()
	fns := make([]func(Event), 0, len(m.subs))
	for _, fn := range m.subs {
		fns = append(fns, fn)
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// Start launches the background connection loop and waits until the first
// connection is up, ctx ends, or InitialConnectTimeout passes. An error
// means only that RDS is not reachable yet: the manager keeps trying, so a
// driver should log it and start anyway.
func (m *Manager) Start(ctx context.Context) error {
	connected := make(chan struct{}, 1)
	unsub := m.Subscribe(func(ev Event) {
		if ev.State == StateConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	defer unsub()
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return unavailablef("manager closed")
	case !m.started:
		m.started = true
		go m.loop()
	}
	m.mu.Unlock()
	if m.State() == StateConnected {
		return nil
	}
	t := m.clk.Timer(m.cfg.InitialConnectTimeout)
	defer t.Stop()
	select {
	case <-connected:
		return nil
	case <-t.C():
		return unavailablef("no connection to RDS within %s; still trying in the background", m.cfg.InitialConnectTimeout)
	case <-ctx.Done():
		return unavailablef("waiting for the first RDS connection: %w", ctx.Err())
	}
}

// Close stops the loop and closes the connection. It is idempotent.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	started := m.started
	m.mu.Unlock()
	m.cancel()
	if started {
		<-m.loopDone
	}
	if b := m.conn.Swap(nil); b != nil {
		_ = b.c.Close()
	}
	if m.State() != StateDisconnected {
		m.setState(StateDisconnected, 0, 0, nil)
	}
	return nil
}

// Run implements Transport on the current connection.
func (m *Manager) Run(ctx context.Context, cmd string) (string, error) {
	b := m.conn.Load()
	if b == nil {
		m.requestProbe()
		return "", unavailablef("not connected to RDS (%s)", m.State())
	}
	ctx, cancel := m.clk.WithTimeout(ctx, m.cfg.CommandTimeout)
	defer cancel()
	return b.c.Run(ctx, cmd)
}

// backoff returns the jittered delay before attempt number failures+1.
func (m *Manager) backoff(failures int) time.Duration {
	d := m.cfg.InitialBackoff
	for i := 1; i < failures && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > m.cfg.MaxBackoff {
		d = m.cfg.MaxBackoff
	}
	return m.jitter(d)
}

// jitter spreads d by +/- Jitter.
func (m *Manager) jitter(d time.Duration) time.Duration {
	if j := m.cfg.Jitter; j > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*m.cfg.Rand.Float64()-1)))
	}
	return d
}

var errConnLost = errors.New("connection lost")

// requestProbe asks the waiting loop to probe now: a caller that needed RDS
// is a reason to look before the next scheduled probe. At most one request
// per ProbeInterval, and none unless the loop is probing.
func (m *Manager) requestProbe() {
	if m.prober == nil {
		return
	}
	m.wakeMu.Lock()
	defer m.wakeMu.Unlock()
	now := m.clk.Now()
	if !m.probing || m.wakes > 0 || now.Sub(m.lastWake) < m.cfg.ProbeInterval {
		return
	}
	m.lastWake = now
	m.wakes++
	m.wake <- struct{}{} // never blocks: wakes > 0 while one is buffered
}

// handlingWake reports whether a probe request from a failed Run is pending
// or being handled (the tests of the wake-up read it).
func (m *Manager) handlingWake() bool {
	m.wakeMu.Lock()
	defer m.wakeMu.Unlock()
	return m.wakes > 0
}

// setProbing marks the start and end of a probing wait. Leaving it drops a
// request nobody will handle.
func (m *Manager) setProbing(on bool) {
	m.wakeMu.Lock()
	defer m.wakeMu.Unlock()
	m.probing = on
	if !on && m.wakes > 0 {
		<-m.wake
		m.wakes--
	}
}

func (m *Manager) wakeHandled() {
	m.wakeMu.Lock()
	m.wakes--
	m.wakeMu.Unlock()
}

// probe runs one reachability probe.
func (m *Manager) probe() bool {
	ctx, cancel := m.clk.WithTimeout(m.ctx, m.cfg.ProbeTimeout)
	err := m.prober.Probe(ctx)
	cancel()
	if err != nil {
		m.metrics.probes.WithLabelValues("failure").Inc()
		return false
	}
	m.metrics.probes.WithLabelValues("success").Inc()
	return true
}

// waitToRetry waits until the next connection attempt is due: when the
// backoff for failures has passed or, after an unreachable RDS, as soon as
// a probe finds it accepting connections (then reachable is true). It
// reports the Disconnected state once its first timer is armed, and
// returns ok=false when the manager closes.
func (m *Manager) waitToRetry(failures int, lastErr error) (reachable, ok bool) {
	delay := m.backoff(failures)
	deadline := m.clk.Now().Add(delay)
	probing := m.prober != nil && errors.Is(lastErr, ErrUnreachable)
	if probing {
		m.setProbing(true)
		defer m.setProbing(false)
	}
	reported := false
	for {
		wait := m.clk.Until(deadline)
		if probing {
			wait = min(wait, m.jitter(m.cfg.ProbeInterval))
		}
		t := m.clk.Timer(wait) // armed before the event, see Event.RetryIn
		if !reported {
			reported = true
			m.setState(StateDisconnected, failures, delay, lastErr)
		}
		woken := false
		select {
		case <-t.C():
		case <-m.wake:
			t.Stop()
			woken = true
		case <-m.ctx.Done():
			t.Stop()
			return false, false
		}
		due := !m.clk.Now().Before(deadline)
		up := !due && probing && m.probe()
		if woken {
			m.wakeHandled()
		}
		if due || up {
			return up, true
		}
	}
}

func (m *Manager) loop() {
	defer close(m.loopDone)
	failures := 0
	var lastErr error
	outage := m.clk.Now()
	for {
		if failures > 0 {
			reachable, ok := m.waitToRetry(failures, lastErr)
			if !ok {
				return
			}
			if reachable {
				// RDS accepts connections again: the outage is over, and if
				// this attempt still fails (RDS is booting) the backoff
				// starts again from its first step.
				failures = 0
			}
		}
		m.setState(StateConnecting, failures, 0, nil)
		cctx, cancel := m.clk.WithTimeout(m.ctx, m.cfg.ConnectTimeout)
		conn, err := m.cfg.Connector.Connect(cctx)
		cancel()
		if m.ctx.Err() != nil {
			if conn != nil {
				_ = conn.Close()
			}
			return
		}
		if err == nil {
			// A hung RDS still completes SSH handshakes; only an answered
			// command proves it is back. Without this check the manager
			// would report Connected (and Probe ready) between health checks
			// for as long as RDS hangs.
			hctx, hcancel := m.clk.WithTimeout(m.ctx, m.cfg.HealthTimeout)
			if herr := conn.HealthCheck(hctx); herr != nil {
				_ = conn.Close()
				err = fmt.Errorf("connected, but RDS does not answer: %w", herr)
			}
			hcancel()
		}
		if err != nil {
			if m.ctx.Err() != nil {
				return
			}
			failures++
			lastErr = err
			m.metrics.reconnects.WithLabelValues("failure").Inc()
			klog.ErrorS(err, "Connecting to RDS failed", "failures", failures)
			continue
		}
		m.metrics.reconnects.WithLabelValues("success").Inc()
		m.metrics.reconnectDuration.Observe(m.clk.Since(outage).Seconds())
		m.conn.Store(&connBox{conn})
		m.setState(StateConnected, failures, 0, nil)
		lastErr = m.supervise(conn)
		m.conn.Store(nil)
		_ = conn.Close()
		if m.ctx.Err() != nil {
			return
		}
		outage = m.clk.Now()
		failures = 1
	}
}

// supervise runs health checks on conn until it fails or goes away. Checks
// run one at a time, each interval measured from the end of the previous
// one, so a slow device never accumulates checks.
func (m *Manager) supervise(conn Conn) error {
	for {
		t := m.clk.Timer(m.cfg.HealthInterval)
		select {
		case <-m.ctx.Done():
			t.Stop()
			return m.ctx.Err()
		case <-conn.Done():
			t.Stop()
			return errConnLost
		case <-t.C():
		}
		hctx, cancel := m.clk.WithTimeout(m.ctx, m.cfg.HealthTimeout)
		err := conn.HealthCheck(hctx)
		cancel()
		if err != nil {
			if m.ctx.Err() == nil {
				klog.ErrorS(err, "RDS health check failed; reconnecting")
			}
			return err
		}
	}
}

var (
	_ Transport = (*Manager)(nil)
	_ Connector = (*SSHConnector)(nil)
	_ Conn      = (*sshConn)(nil)
	_ Prober    = (*SSHConnector)(nil)
)
