package chaos

import (
	"context"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSLatency, func(p params) (Fault, error) {
		d, err := p.duration("latency")
		if err != nil {
			return nil, err
		}
		return validated(RDSLatency{Latency: d})
	})
}

// RDSLatency slows every command down by Latency on the emulator's clock, as
// a busy box does; the network is not involved (see NetworkLatency for that).
// Undo restores the latency that was set before.
type RDSLatency struct {
	Latency time.Duration
}

// Name implements Fault.
func (RDSLatency) Name() string { return catalog.RDSLatency }

func (f RDSLatency) validate() error {
	if f.Latency <= 0 {
		return invalid(f, "latency must be positive, got %s", f.Latency)
	}
	return nil
}

// Apply implements Fault.
func (f RDSLatency) Apply(_ context.Context, t Targets) (Undo, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	prev := emu.Faults().Snapshot().Latency
	emu.Faults().SetLatency(f.Latency)
	logApplied(f, "latency", f.Latency, "previous", prev)
	return undoOnce(f, func(context.Context) error {
		emu.Faults().SetLatency(prev)
		return nil
	}, "latency", prev), nil
}
