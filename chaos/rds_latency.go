package chaos

import (
	"context"
	"time"
)

func init() {
	register(Spec{
		Name: "rds.latency",
		Doc:  "Every RDS command takes latency longer, measured on the clock. Undo restores the previous latency.",
		Params: []Param{
			{Name: "latency", Required: true, Doc: "extra time per command, e.g. 2s"},
		},
		build: func(p params) (Fault, error) {
			d, err := p.duration("latency")
			if err != nil {
				return nil, err
			}
			return validated(RDSLatency{Latency: d})
		},
	})
}

// RDSLatency slows every command down by Latency on the emulator's clock, as
// a busy box does; the network is not involved (see NetworkLatency for that).
// Undo restores the latency that was set before.
type RDSLatency struct {
	Latency time.Duration
}

// Name implements Fault.
func (RDSLatency) Name() string { return "rds.latency" }

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
