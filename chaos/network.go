package chaos

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// ErrNetworkClosed is returned by Dial after Close.
var ErrNetworkClosed = errors.New("chaos network closed")

// Network is an in-process stand-in for the link between the controller and
// RDS, the place where the network.* faults (toxiproxy's toxics) act. Every
// connection made with Dial is proxied: the caller gets one end of an
// in-memory pipe, and two pumps per connection carry bytes to and from the
// connection the underlying dial returned, through whatever toxics are
// active. Its Dial has the driver's rds.Dialer signature, so
//
//	rds.NewSSHConnector(network.Dial, cfg)
//
// routes the driver through it. All timing is on the Network's clock.
//
// Toxics act on chunks, as in toxiproxy: whatever one read from a side
// returned. Each direction keeps its order. There is no half-close: when one
// side ends, after the bytes before the end were delivered, the connection
// ends. Deadlines set on a returned connection are net.Pipe's, on the wall
// clock; the driver uses contexts instead.
type Network struct {
	dial func(ctx context.Context) (net.Conn, error)
	clk  clock.Clock

	mu        sync.Mutex
	closed    chan struct{}
	links     map[*link]struct{}
	nextID    uint64
	parked    map[uint64]time.Time // ticket -> release deadline (zero: until Undo)
	nextPark  uint64
	heldDials int
	// The active toxics; at most one of each kind.
	timeout *timeoutToxic
	reset   *resetToxic
	latency *latencyToxic
}

// NewNetwork returns a Network whose connections reach RDS through dial
// (e.g. rds.TCPDialer(addr) or an emulator's DialInMemory). clk times every
// toxic; nil means the real clock.
func NewNetwork(dial func(ctx context.Context) (net.Conn, error), clk clock.Clock) *Network {
	if clk == nil {
		clk = clock.New()
	}
	return &Network{
		dial:   dial,
		clk:    clk,
		closed: make(chan struct{}),
		links:  map[*link]struct{}{},
		parked: map[uint64]time.Time{},
	}
}

// NetworkStats is a snapshot of a Network, for tests and for the scenario
// runner's quiescence barrier: traffic parked on the clock waits for time to
// be advanced, traffic parked on network.timeout waits for its Undo.
type NetworkStats struct {
	// Conns is the number of open proxied connections.
	Conns int
	// Parked is the number of chunks a toxic holds back.
	Parked int
	// NextRelease is the earliest clock time at which a parked chunk is
	// released (zero if none waits for the clock).
	NextRelease time.Time
	// HeldDials is the number of Dial calls network.timeout holds.
	HeldDials int
}

// Stats reports the Network's state.
func (n *Network) Stats() NetworkStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := NetworkStats{Conns: len(n.links), Parked: len(n.parked), HeldDials: n.heldDials}
	for _, at := range n.parked {
		if !at.IsZero() && (s.NextRelease.IsZero() || at.Before(s.NextRelease)) {
			s.NextRelease = at
		}
	}
	return s
}

// Dial opens a proxied connection. It honours ctx while network.timeout holds
// it and while the underlying dial runs; once it returns, ctx no longer
// matters.
func (n *Network) Dial(ctx context.Context) (net.Conn, error) {
	if err := n.waitDialable(ctx); err != nil {
		return nil, err
	}
	inner, err := n.dial(ctx)
	if err != nil {
		return nil, err
	}
	return n.attach(inner)
}

// Close ends every connection and makes Dial fail from now on.
func (n *Network) Close() error {
	n.mu.Lock()
	select {
	case <-n.closed:
		n.mu.Unlock()
		return nil
	default:
	}
	close(n.closed)
	links := n.linksLocked()
	n.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return nil
}

func (n *Network) linksLocked() []*link {
	out := make([]*link, 0, len(n.links))
	for l := range n.links {
		out = append(out, l)
	}
	return out
}

// waitDialable holds a dial while network.timeout is active: like a SYN into a
// black hole, it goes through if the toxic ends first and fails when ctx ends
// or the toxic's own timeout runs out.
func (n *Network) waitDialable(ctx context.Context) error {
	for {
		n.mu.Lock()
		select {
		case <-n.closed:
			n.mu.Unlock()
			return ErrNetworkClosed
		default:
		}
		tt := n.timeout
		if tt == nil {
			n.mu.Unlock()
			return nil
		}
		n.heldDials++
		n.mu.Unlock()
		err := tt.holdDial(ctx, n.clk, n.closed)
		n.mu.Lock()
		n.heldDials--
		n.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (n *Network) attach(inner net.Conn) (net.Conn, error) {
	client, near := net.Pipe()
	n.mu.Lock()
	select {
	case <-n.closed:
		n.mu.Unlock()
		_ = inner.Close()
		return nil, ErrNetworkClosed
	default:
	}
	n.nextID++
	l := &link{n: n, id: n.nextID, inner: inner, near: near, done: make(chan struct{})}
	n.links[l] = struct{}{}
	resetNow := n.reset != nil && n.reset.arm(n, l)
	n.mu.Unlock()
	go l.pump(upstream, near, inner)
	go l.pump(downstream, inner, near)
	if resetNow {
		l.resetPeer()
	}
	return &clientConn{Conn: client, l: l}, nil
}

// park registers a chunk held by a toxic until deadline (zero: until an Undo)
// and returns the function that unregisters it.
func (n *Network) park(deadline time.Time) (unpark func()) {
	n.mu.Lock()
	n.nextPark++
	ticket := n.nextPark
	n.parked[ticket] = deadline
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.parked, ticket)
		n.mu.Unlock()
	}
}

// direction is toxiproxy's stream: upstream goes from the caller of Dial (the
// driver) to RDS, downstream back.
type direction uint64

const (
	upstream direction = iota
	downstream
)

func (d direction) String() string {
	if d == upstream {
		return "upstream"
	}
	return "downstream"
}

// link is one proxied connection.
type link struct {
	n     *Network
	id    uint64 // dial order, from 1; seeds the connection's jitter streams
	inner net.Conn
	near  net.Conn // the proxy's end of the caller's pipe

	done      chan struct{}
	closeOnce sync.Once
	mu        sync.Mutex
	wasReset  bool
}

// chunk is what one read returned, stamped on arrival.
type chunk struct {
	data  []byte
	eof   bool // the source ended; end the connection once delivered
	at    time.Time
	delay time.Duration
	lat   *latencyToxic // set the delay; its Undo releases the chunk early
}

const chunkSize = 32 << 10

// pump carries one direction: a reader stamps chunks as they arrive, so that
// latency runs from arrival and is not serialised behind earlier chunks, and
// a deliverer applies the toxics in order.
func (l *link) pump(dir direction, src io.Reader, dst io.Writer) {
	chunks := make(chan chunk, 64)
	go l.read(dir, src, chunks)
	for {
		var c chunk
		select {
		case c = <-chunks:
		case <-l.done:
			return
		}
		if !l.hold(c) {
			return
		}
		if c.eof {
			l.close()
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			l.close()
			return
		}
	}
}

func (l *link) read(dir direction, src io.Reader, out chan<- chunk) {
	var (
		jitter   *jitterStream
		jitterOf *latencyToxic
		// The delay drawn for the last arrival instant: how the bytes
		// written at one instant are split into reads depends on goroutine
		// scheduling, so a draw per read would make the jitter stream (and
		// the delays of everything after) differ between runs of one seed.
		// One draw per instant with traffic does not.
		drawnAt    time.Time
		drawnDelay time.Duration
		buf        = make([]byte, chunkSize)
	)
	stamp := func(c chunk) chunk {
		c.at = l.n.clk.Now()
		l.n.mu.Lock()
		lat := l.n.latency
		l.n.mu.Unlock()
		if lat != nil {
			if jitterOf != lat {
				jitter, jitterOf, drawnAt = lat.stream(l.id, dir), lat, time.Time{}
			}
			if drawnAt.IsZero() || !c.at.Equal(drawnAt) {
				drawnAt, drawnDelay = c.at, jitter.next()
			}
			c.delay, c.lat = drawnDelay, lat
		}
		return c
	}
	for {
		n, err := src.Read(buf)
		if n > 0 {
			c := stamp(chunk{data: append([]byte(nil), buf[:n]...)})
			select {
			case out <- c:
			case <-l.done:
				return
			}
		}
		if err != nil {
			select {
			case out <- stamp(chunk{eof: true}):
			case <-l.done:
			}
			return
		}
	}
}

// hold keeps a chunk back while a toxic says so: until its latency has passed
// on the clock (or the latency toxic ended), then while network.timeout is
// active. It returns false when the connection ended meanwhile.
func (l *link) hold(c chunk) bool {
	n := l.n
	if c.delay > 0 {
		due := c.at.Add(c.delay)
		if wait := due.Sub(n.clk.Now()); wait > 0 {
			t := n.clk.Timer(wait)
			unpark := n.park(due)
			select {
			case <-t.C():
			case <-c.lat.ended:
			case <-l.done:
			}
			t.Stop()
			unpark()
		}
	}
	for {
		select {
		case <-l.done:
			return false
		default:
		}
		n.mu.Lock()
		tt := n.timeout
		n.mu.Unlock()
		if tt == nil {
			return true
		}
		unpark := n.park(time.Time{})
		select {
		case <-tt.ended:
		case <-l.done:
		}
		unpark()
	}
}

// close ends the connection on both sides.
func (l *link) close() {
	l.closeOnce.Do(func() {
		close(l.done)
		_ = l.inner.Close()
		_ = l.near.Close()
		l.n.mu.Lock()
		delete(l.n.links, l)
		l.n.mu.Unlock()
	})
}

// resetPeer ends the connection as a TCP reset does: RDS gets a RST where the
// underlying connection can send one, the caller reads and writes
// "connection reset by peer".
func (l *link) resetPeer() {
	l.mu.Lock()
	l.wasReset = true
	l.mu.Unlock()
	if tc, ok := l.inner.(interface{ SetLinger(int) error }); ok {
		_ = tc.SetLinger(0) // close sends RST instead of FIN
	}
	l.close()
	klog.V(4).InfoS("Connection reset", "conn", l.id)
}

func (l *link) reset() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wasReset
}

// clientConn is the caller's end. It reports the underlying connection's
// addresses and turns the pipe's closed errors into ECONNRESET after a reset.
type clientConn struct {
	net.Conn
	l *link
}

func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.l.reset() {
		return n, c.resetErr("read")
	}
	return n, err
}

func (c *clientConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && c.l.reset() {
		return n, c.resetErr("write")
	}
	return n, err
}

func (c *clientConn) resetErr(op string) error {
	return &net.OpError{
		Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: os.NewSyscallError(op, syscall.ECONNRESET),
	}
}

func (c *clientConn) LocalAddr() net.Addr  { return c.l.inner.LocalAddr() }
func (c *clientConn) RemoteAddr() net.Addr { return c.l.inner.RemoteAddr() }
