package chaos

import "context"

func init() {
	register(Spec{
		Name: "controller.restart",
		Doc: "Crashed controller replicas start again; each rebuilds its state from the VolumeAttachments " +
			"before serving, as a standby or as the leader when the Lease is free.",
		build: func(params) (Fault, error) { return ControllerRestart{}, nil },
	})
}

// ControllerRestart starts crashed controller replicas. It is an event, not a
// state: it has no Undo.
type ControllerRestart struct{}

// Name implements Fault.
func (ControllerRestart) Name() string { return "controller.restart" }

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
