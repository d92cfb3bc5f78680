package chaos

import "context"

func init() {
	register(Spec{
		Name: "leader.loss",
		Doc: "The controller leader cannot renew its Lease (an API server hiccup): it exits and comes back as a " +
			"standby; another replica, or the same one, leads once the Lease expires.",
		build: func(params) (Fault, error) { return LeaderLoss{}, nil },
	})
}

// LeaderLoss takes the Lease from the leading controller replica. It is an
// event: it has no Undo.
type LeaderLoss struct{}

// Name implements Fault.
func (LeaderLoss) Name() string { return "leader.loss" }

// Apply implements Fault.
func (f LeaderLoss) Apply(_ context.Context, t Targets) (Undo, error) {
	c, err := t.controller(f.Name())
	if err != nil {
		return nil, err
	}
	if err := c.LoseLeadership(); err != nil {
		return nil, err
	}
	logApplied(f)
	return nil, nil
}
