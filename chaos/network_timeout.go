package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.NetworkTimeout, func(p params) (Fault, error) {
		d, err := p.duration("timeout")
		if err != nil {
			return nil, err
		}
		return NetworkTimeout{Timeout: d}, nil
	})
}

// NetworkTimeout is toxiproxy's timeout toxic, a black hole: connections stay
// open but no byte gets through in either direction, and new dials hang until
// their context ends. With Timeout > 0, connections open at Apply are closed
// Timeout later and each held dial fails with ETIMEDOUT Timeout after it
// began, both on the clock.
//
// Unlike toxiproxy, which drops the bytes on the floor (so a connection that
// lived through the toxic is garbage afterwards), the Network holds them and
// delivers them on Undo, as TCP retransmission does when a partition heals
// before the connection gives up; held dials then connect. Toxiproxy also
// accepts new connections and then swallows their handshake, where the Network
// holds the dial itself: either way the driver's Connect does not return until
// its context ends.
type NetworkTimeout struct {
	Timeout time.Duration
}

// Name implements Fault.
func (NetworkTimeout) Name() string { return catalog.NetworkTimeout }

// Apply implements Fault.
func (f NetworkTimeout) Apply(_ context.Context, t Targets) (Undo, error) {
	if f.Timeout < 0 {
		return nil, invalid(f, "timeout must not be negative, got %s", f.Timeout)
	}
	n, err := t.network(f.Name())
	if err != nil {
		return nil, err
	}
	tt := &timeoutToxic{timeout: f.Timeout, ended: make(chan struct{})}
	n.mu.Lock()
	if n.timeout != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", f.Name(), ErrActive)
	}
	n.timeout = tt
	if f.Timeout > 0 {
		tt.expiry = n.clk.AfterFunc(f.Timeout, func() { n.expireTimeout(tt) })
	}
	conns := len(n.links)
	n.mu.Unlock()
	logApplied(f, "timeout", f.Timeout, "conns", conns)
	return undoOnce(f, func(context.Context) error {
		n.mu.Lock()
		if n.timeout == tt {
			n.timeout = nil
		}
		n.mu.Unlock()
		if tt.expiry != nil {
			tt.expiry.Stop()
		}
		close(tt.ended)
		return nil
	}), nil
}

// timeoutToxic is an active network.timeout.
type timeoutToxic struct {
	timeout time.Duration
	ended   chan struct{} // closed by Undo
	expiry  clock.Timer
}

// expireTimeout closes every connection once the toxic's timeout ran out.
func (n *Network) expireTimeout(tt *timeoutToxic) {
	n.mu.Lock()
	if n.timeout != tt {
		n.mu.Unlock()
		return
	}
	links := n.linksLocked()
	n.mu.Unlock()
	for _, l := range links {
		l.close()
	}
}

// holdDial waits until the toxic ends (nil: dial now) or the dial must fail.
func (tt *timeoutToxic) holdDial(ctx context.Context, clk clock.Clock, closed <-chan struct{}) error {
	var expire <-chan time.Time
	if tt.timeout > 0 {
		timer := clk.Timer(tt.timeout)
		defer timer.Stop()
		expire = timer.C()
	}
	select {
	case <-tt.ended:
		return nil
	case <-closed:
		return ErrNetworkClosed
	case <-ctx.Done():
		return &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("held by network.timeout: %w", ctx.Err())}
	case <-expire:
		return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ETIMEDOUT)}
	}
}
