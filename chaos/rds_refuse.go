package chaos

import (
	"context"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSRefuse, func(params) (Fault, error) { return RDSRefuse{}, nil })
}

// RDSRefuse makes the RDS close new connections right after accept, before
// the SSH handshake, as a box whose SSH service is overloaded or restarting
// does; established connections are untouched. It shares the emulator's one
// reject switch with RDSSlowReconnect: do not overlap the two.
type RDSRefuse struct{}

// Name implements Fault.
func (RDSRefuse) Name() string { return catalog.RDSRefuse }

// Apply implements Fault.
func (f RDSRefuse) Apply(_ context.Context, t Targets) (Undo, error) {
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	emu.Faults().RejectConnections(true)
	logApplied(f)
	return undoOnce(f, func(context.Context) error {
		emu.Faults().RejectConnections(false)
		return nil
	}), nil
}
