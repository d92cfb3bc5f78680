package chaos

import (
	"context"
	"fmt"
)

func init() {
	register(Spec{
		Name: "rds.restart",
		Doc: "The RDS comes back after a crash, listening on the same address. If it is serving, " +
			"it reboots: connections drop and it serves again at once.",
		build: func(params) (Fault, error) { return RDSRestart{}, nil },
	})
}

// RDSRestart brings a crashed RDS back on the same address. Applied to an RDS
// that is serving, it is a reboot: a crash followed at once by the restart.
// It has no Undo: a restart is an event, not a state.
type RDSRestart struct{}

// Name implements Fault.
func (RDSRestart) Name() string { return "rds.restart" }

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
