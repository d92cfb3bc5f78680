package main

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// exportAllowList answers the loop data plane's question "which hosts does
// this volume's export allow?" from a complete read of the disk on RDS (the
// emulator). Anything short of a disk in the target's slot, with the
// target's file, printing the property, is an error and never "": an empty
// list would admit any host.
func exportAllowList(c *rds.Client) func(context.Context, dataplane.Target) (string, error) {
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

// nodeRDS opens the node's own connection to RDS (--mode=node with
// --restrict-hosts and the loop data plane). Start-up does not wait for it
// beyond --rds-connect-timeout: until it connects, attaches fail with
// UNAVAILABLE and the kubelet retries.
func nodeRDS(ctx context.Context, c config, reg prometheus.Registerer) (*rds.Manager, error) {
	connector, err := sshConnector(c)
	if err != nil {
		return nil, err
	}
	mgr, err := rds.NewManager(rds.ManagerConfig{Connector: connector, Registerer: reg,
		InitialConnectTimeout: c.rdsConnectTimeout, CommandTimeout: c.rdsCommandTimeout})
	if err != nil {
		return nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		klog.ErrorS(err, "RDS not reachable at start-up; the loop data plane refuses attaches until it is", "address", c.rdsAddress)
	}
	return mgr, nil
}
