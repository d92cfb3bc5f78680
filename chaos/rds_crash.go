package chaos

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.RDSCrash, func(params) (Fault, error) { return RDSCrash{}, nil })
}

// RDSCrash crashes the RDS: connections drop, the listener closes, disks are
// kept, as on the real box whose disks outlive a crash. Undo restarts it on
// the same address, unless something (rds.restart) already did.
type RDSCrash struct{}

// Name implements Fault.
func (RDSCrash) Name() string { return catalog.RDSCrash }

// Apply implements Fault.
func (f RDSCrash) Apply(_ context.Context, t Targets) (Undo, error) {
	emu, err := t.rds(f.Name())
	if err != nil {
		return nil, err
	}
	emu.Crash()
	logApplied(f, "addr", emu.Addr())
	return undoOnce(f, func(context.Context) error {
		if emu.Serving() {
			klog.InfoS("RDS already serving; nothing to restart", "fault", f.Name())
			return nil
		}
		if err := emu.Restart(); err != nil {
			return fmt.Errorf("%s: restart: %w", f.Name(), err)
		}
		return nil
	}), nil
}
