package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSSlowReconnect, func(p params) (Fault, error) {
		d, err := p.duration("delay")
		if err != nil {
			return nil, err
		}
		return validated(RDSSlowReconnect{Delay: d})
	})
}

// RDSSlowReconnect crashes the RDS (connections drop, disks kept) and brings
// it back slowly: the listener reopens at once, as on a booting box whose
// network is up before its services are, but every connection is closed right
// after accept until Delay has passed on the clock. The driver's reconnects in
// that window fail after TCP connected, which is the case its backoff must
// cover. Undo stops refusing at once. The refusal uses the emulator's reject
// switch, shared with RDSRefuse: when the delay ends the switch returns to
// what it was at Apply.
type RDSSlowReconnect struct {
	Delay time.Duration
}

// Name implements Fault.
func (RDSSlowReconnect) Name() string { return catalog.RDSSlowReconnect }

func (f RDSSlowReconnect) validate() error {
	if f.Delay <= 0 {
		return invalid(f, "delay must be positive, got %s", f.Delay)
	}
	return nil
}

// Apply implements Fault.
func (f RDSSlowReconnect) Apply(_ context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	inj := emu.Faults()
	before := inj.Rejecting()
	// Refuse before the crash so that nothing slips in between.
	inj.RejectConnections(true)
	emu.Crash()
	if err := emu.Restart(); err != nil {
		inj.RejectConnections(before)
		return nil, fmt.Errorf("%s: restart: %w", f.Name(), err)
	}
	var once sync.Once
	accept := func(reason string) {
		once.Do(func() {
			inj.RejectConnections(before)
			klog.InfoS("RDS accepts connections again", "fault", f.Name(), "reason", reason)
		})
	}
	timer := t.clock().AfterFunc(f.Delay, func() { accept("delay over") })
	logApplied(f, "delay", f.Delay, "addr", emu.Addr())
	return undoOnce(f, func(context.Context) error {
		timer.Stop()
		accept("undo")
		return nil
	}), nil
}
