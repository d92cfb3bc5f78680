package chaos

import (
	"context"

	"github.com/rds-csi/rds-csi/chaos/catalog"
)

func init() {
	register(catalog.LeaderLoss, func(params) (Fault, error) { return LeaderLoss{}, nil })
}

// LeaderLoss takes the Lease from the leading controller replica. It is an
// event: it has no Undo.
type LeaderLoss struct{}

// Name implements Fault.
func (LeaderLoss) Name() string { return catalog.LeaderLoss }

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
