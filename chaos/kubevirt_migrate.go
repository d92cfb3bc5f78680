package chaos

import (
	"context"
	"time"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.KubeVirtMigrate, func(p params) (Fault, error) {
		f := KubeVirtMigrate{VM: p.string("vm"), To: p.string("to"), Order: p.string("order")}
		var err error
		f.Delay, err = p.duration("delay")
		return f, err
	})
}

// KubeVirtMigrate live-migrates one VM. It is an event: it has no Undo.
type KubeVirtMigrate struct {
	VM, To, Order string
	Delay         time.Duration
}

// Name implements Fault.
func (KubeVirtMigrate) Name() string { return catalog.KubeVirtMigrate }

// Apply implements Fault.
func (f KubeVirtMigrate) Apply(_ context.Context, t Targets) (Undo, error) {
	k, err := t.kubeVirt(f.Name())
	if err != nil {
		return nil, err
	}
	if err := k.Migrate(f.VM, f.To, f.Order, f.Delay); err != nil {
		return nil, err
	}
	logApplied(f, "vm", f.VM, "to", f.To, "order", f.Order, "delay", f.Delay)
	return nil, nil
}
