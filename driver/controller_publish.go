package driver

import (
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// readOnlyGrants remembers the readonly flag of each publish the controller
// granted, per volume and node, so that a publish of the same volume to the
// same node with the other flag is ALREADY_EXISTS (PUBLISH_READONLY). It is
// kept in memory: after a restart the first publish of a pair sets it again,
// which accepts one mismatched retry rather than refusing a valid one.
type readOnlyGrants struct {
	mu sync.Mutex
	m  map[[2]string]bool
}

// admit records readonly for volume on node, or refuses a change of it.
func (g *readOnlyGrants) admit(volume, node string, readonly, held bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := [2]string{volume, node}
	if prev, ok := g.m[key]; ok && held && prev != readonly {
		return status.Errorf(codes.AlreadyExists, "volume %s is already published to node %s with readonly=%v", volume, node, prev)
	}
	if g.m == nil {
		g.m = map[[2]string]bool{}
	}
	g.m[key] = readonly
	return nil
}

// forget drops the record of volume on node ("" for every node). The common
// case, one node, is a map delete: unpublish must not scan every grant.
func (g *readOnlyGrants) forget(volume, node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if node != "" {
		delete(g.m, [2]string{volume, node})
		return
	}
	for k := range g.m {
		if k[0] == volume {
			delete(g.m, k)
		}
	}
}

// holds reports whether node holds a claim on volume.
func (d *Driver) holds(volume, node string) bool {
	for _, c := range d.attach.Holders(volume) {
		if c.Node == node {
			return true
		}
	}
	return false
}

// checkNodeLimit refuses a publish that would give node more volumes than
// MaxVolumesPerNode (0: no limit) with RESOURCE_EXHAUSTED; the scheduler
// normally keeps within it from NodeGetInfo, this catches what slips past.
func (d *Driver) checkNodeLimit(volume, node string) error {
	limit := d.opts.MaxVolumesPerNode
	if limit <= 0 {
		return nil
	}
	var n int64
	for _, c := range d.attach.Snapshot() {
		if c.Node == node && c.Volume != volume {
			n++
		}
	}
	if n >= limit {
		return status.Errorf(codes.ResourceExhausted, "node %s already holds %d volumes, its limit; publish %s elsewhere or detach one", node, n, volume)
	}
	return nil
}
