package chaos

import (
	"context"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSHang, func(params) (Fault, error) { return RDSHang{}, nil })
}

// RDSHang makes every command block: connections and sessions open, nothing
// answers, as when the box's storage stalls. Undo releases the blocked
// commands, which then complete normally. Faults().Hanging tells how many are
// blocked.
type RDSHang struct{}

// Name implements Fault.
func (RDSHang) Name() string { return catalog.RDSHang }

// Apply implements Fault.
func (f RDSHang) Apply(_ context.Context, t Targets) (Undo, error) {
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	emu.Faults().HangAll()
	logApplied(f)
	return undoOnce(f, func(context.Context) error {
		emu.Faults().Release()
		return nil
	}), nil
}
