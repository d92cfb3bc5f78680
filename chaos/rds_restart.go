package chaos

import (
	"context"
	"fmt"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSRestart, func(params) (Fault, error) { return RDSRestart{}, nil })
}

// RDSRestart brings a crashed RDS back on the same address. Applied to an RDS
// that is serving, it is a reboot: a crash followed at once by the restart.
// It has no Undo: a restart is an event, not a state.
type RDSRestart struct{}

// Name implements Fault.
func (RDSRestart) Name() string { return catalog.RDSRestart }

// Apply implements Fault.
func (f RDSRestart) Apply(_ context.Context, t Targets) (Undo, error) {
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	reboot := emu.Serving()
	if reboot {
		emu.Crash()
	}
	if err := emu.Restart(); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	logApplied(f, "addr", emu.Addr(), "reboot", reboot)
	return nil, nil
}
