package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.NetworkResetPeer, func(p params) (Fault, error) {
		d, err := p.duration("timeout")
		if err != nil {
			return nil, err
		}
		return NetworkResetPeer{Timeout: d}, nil
	})
}

// NetworkResetPeer is toxiproxy's reset_peer toxic: connections end with a
// TCP reset. The caller's reads and writes fail with ECONNRESET (errors.Is
// syscall.ECONNRESET), RDS gets a RST where the underlying connection is TCP.
// Connections open at Apply are reset Timeout after it, new ones Timeout after
// their dial, on the clock; 0 resets at once. As with toxiproxy, a new dial
// succeeds and the connection is reset afterwards. Undo stops resetting;
// connections already reset stay dead, those waiting for their Timeout are
// spared.
type NetworkResetPeer struct {
	Timeout time.Duration
}

// Name implements Fault.
func (NetworkResetPeer) Name() string { return catalog.NetworkResetPeer }

// Apply implements Fault.
func (f NetworkResetPeer) Apply(_ context.Context, t Targets) (Undo, error) {
	if f.Timeout < 0 {
		return nil, invalid(f, "timeout must not be negative, got %s", f.Timeout)
	}
	n, err := t.network(f.Name())
	if err != nil {
		return nil, err
	}
	rt := &resetToxic{timeout: f.Timeout}
	n.mu.Lock()
	if n.reset != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", f.Name(), ErrActive)
	}
	n.reset = rt
	var now []*link
	for _, l := range n.linksLocked() {
		if rt.arm(n, l) {
			now = append(now, l)
		}
	}
	n.mu.Unlock()
	for _, l := range now {
		l.resetPeer()
	}
	logApplied(f, "timeout", f.Timeout, "reset", len(now))
	return undoOnce(f, func(context.Context) error {
		n.mu.Lock()
		if n.reset == rt {
			n.reset = nil
		}
		timers := rt.timers
		rt.timers = nil
		n.mu.Unlock()
		for _, t := range timers {
			t.Stop()
		}
		return nil
	}), nil
}

// resetToxic is an active network.reset_peer.
type resetToxic struct {
	timeout time.Duration
	timers  []clock.Timer // guarded by Network.mu
}

// arm schedules l's reset; it reports true when l must be reset now. The
// caller holds n.mu.
func (rt *resetToxic) arm(n *Network, l *link) (now bool) {
	if rt.timeout == 0 {
		return true
	}
	rt.timers = append(rt.timers, n.clk.AfterFunc(rt.timeout, func() {
		n.mu.Lock()
		active := n.reset == rt
		n.mu.Unlock()
		if active {
			l.resetPeer()
		}
	}))
	return false
}
