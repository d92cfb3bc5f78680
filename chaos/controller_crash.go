package chaos

import (
	"context"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.ControllerCrash, func(params) (Fault, error) { return ControllerCrash{}, nil })
}

// ControllerCrash kills the leading controller replica.
type ControllerCrash struct{}

// Name implements Fault.
func (ControllerCrash) Name() string { return catalog.ControllerCrash }

// Apply implements Fault.
func (f ControllerCrash) Apply(_ context.Context, t Targets) (Undo, error) {
	c, err := t.controller(f.Name())
	if err != nil {
		return nil, err
	}
	if err := c.CrashController(); err != nil {
		return nil, err
	}
	logApplied(f)
	return undoOnce(f, func(context.Context) error { return c.RestartController() }), nil
}
