package chaos

import "context"

func init() {
	register(Spec{
		Name: "controller.crash",
		Doc: "The controller leader's process dies without releasing its Lease; its in-memory state is lost. " +
			"A standby takes over when the Lease expires. Undo restarts the crashed replica.",
		build: func(params) (Fault, error) { return ControllerCrash{}, nil },
	})
}

// ControllerCrash kills the leading controller replica.
type ControllerCrash struct{}

// Name implements Fault.
func (ControllerCrash) Name() string { return "controller.crash" }

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
