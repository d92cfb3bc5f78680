package exportacl

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// AllowList answers "which hosts does this target's export allow?" from a
// complete read of the disk on RDS, as the loop data plane's AllowHost.
// Anything short of a disk in the target's slot, with the target's file,
// printing the property, is an error and never "": an empty list would
// admit any host.
func AllowList(c *rds.Client) func(context.Context, dataplane.Target) (string, error) {
	return func(ctx context.Context, t dataplane.Target) (string, error) {
		d, err := c.GetDisk(ctx, t.VolumeID)
		if err != nil {
			return "", err
		}
		if d.FilePath != t.FilePath {
			// Another disk took the slot: its export says nothing about
			// the file this node was asked to attach.
			return "", fmt.Errorf("disk in slot %q has file %q, not %q: %w", t.VolumeID, d.FilePath, t.FilePath, rds.ErrNotFound)
		}
		hosts, printed := d.AllowedHosts()
		if !printed {
			return "", fmt.Errorf("%w: disk %q printed no %s", rds.ErrFailed, t.VolumeID, rds.AllowHostProperty)
		}
		return strings.Join(hosts, ","), nil
	}
}

// Config is the node's connection to RDS.
type Config struct {
	Connector  rds.Connector
	Registerer prometheus.Registerer
	// ConnectTimeout bounds the first connection attempt; CommandTimeout
	// every command.
	ConnectTimeout, CommandTimeout time.Duration
}

// Connect opens the node's own connection to RDS. It does not wait beyond
// ConnectTimeout: until it connects, reads fail as unavailable (the loop
// plane refuses attaches and the kubelet retries).
func Connect(ctx context.Context, cfg Config) (*rds.Manager, error) {
	mgr, err := rds.NewManager(rds.ManagerConfig{Connector: cfg.Connector, Registerer: cfg.Registerer,
		InitialConnectTimeout: cfg.ConnectTimeout, CommandTimeout: cfg.CommandTimeout})
	if err != nil {
		return nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		klog.ErrorS(err, "RDS not reachable at start-up; the loop data plane refuses attaches until it is")
	}
	return mgr, nil
}
