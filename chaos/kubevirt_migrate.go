package chaos

import (
	"context"
	"time"
)

func init() {
	register(Spec{
		Name: "kubevirt.migrate",
		Doc: "A KubeVirt live migration moves a VM: its disk is attached on the target and detached from the source, " +
			"in the given order, delay apart.",
		Params: []Param{
			{Name: "vm", Required: true, Doc: "the VM, named by its disk volume"},
			{Name: "to", Required: true, Doc: "the target node"},
			{Name: "order", Default: "attach-first", Doc: "attach-first (KubeVirt's way) or detach-first"},
			{Name: "delay", Default: "0s", Doc: "time between the two halves"},
		},
		build: func(p params) (Fault, error) {
			f := KubeVirtMigrate{VM: p.string("vm"), To: p.string("to"), Order: p.string("order")}
			if f.Order != "attach-first" && f.Order != "detach-first" {
				return nil, p.bad("order", "want attach-first or detach-first")
			}
			var err error
			f.Delay, err = p.duration("delay")
			return f, err
		},
	})
}

// KubeVirtMigrate live-migrates one VM. It is an event: it has no Undo.
type KubeVirtMigrate struct {
	VM, To, Order string
	Delay         time.Duration
}

// Name implements Fault.
func (KubeVirtMigrate) Name() string { return "kubevirt.migrate" }

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
