package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rds-csi/rds-csi/driver/exportacl"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// nodeRDS opens the node's own connection to RDS (--mode=node with
// --restrict-hosts and the loop data plane) from the --rds-* flags.
func nodeRDS(ctx context.Context, c config, reg prometheus.Registerer) (*rds.Manager, error) {
	connector, err := sshConnector(c)
	if err != nil {
		return nil, err
	}
	return exportacl.Connect(ctx, exportacl.Config{Connector: connector, Registerer: reg,
		ConnectTimeout: c.rdsConnectTimeout, CommandTimeout: c.rdsCommandTimeout})
}
