package chaos

import (
	"context"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.ControllerRestart, func(params) (Fault, error) { return ControllerRestart{}, nil })
}

// ControllerRestart starts crashed controller replicas. It is an event, not a
// state: it has no Undo.
type ControllerRestart struct{}

// Name implements Fault.
func (ControllerRestart) Name() string { return catalog.ControllerRestart }

// Apply implements Fault.
func (f ControllerRestart) Apply(_ context.Context, t Targets) (Undo, error) {
	c, err := t.controller(f.Name())
	if err != nil {
		return nil, err
	}
	if err := c.RestartController(); err != nil {
		return nil, err
	}
	logApplied(f)
	return nil, nil
}
