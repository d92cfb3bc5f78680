package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/ownership"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/internal/keylock"
)

// DefaultName is the driver name, used everywhere: the CSIDriver object, the
// StorageClass provisioner, VolumeAttachments and the node registration.
const DefaultName = "rds.csi.mikrotik.com"

// Version is set at build time with -ldflags "-X .../driver.Version=v1.2.3".
var Version = "v0.0.0-dev"

// RDSConnection is the seam to RDS: a transport for RouterOS commands plus the
// connection state, which Probe reports without ever waiting on RDS.
type RDSConnection interface {
	rds.Transport
	State() rds.State
}

// NodeLookup tells whether a node ID names a node that exists. In a cluster it
// is answered from the Node informer's cache; standalone (csi-sanity) it is a
// fixed set.
type NodeLookup interface {
	NodeExists(ctx context.Context, nodeID string) (bool, error)
}

// StaticNodes is a NodeLookup over a fixed set of node IDs.
type StaticNodes map[string]bool

// NodeExists implements NodeLookup.
func (s StaticNodes) NodeExists(_ context.Context, id string) (bool, error) { return s[id], nil }

// DefaultGracePeriod is how long a claim outlives its node's disappearance
// when neither Options nor the StorageClass says otherwise.
const DefaultGracePeriod = 30 * time.Second

// DefaultOperationTimeout bounds one RPC's backend work when Options says
// nothing; the sidecars' --timeout must stay above the value in use.
const DefaultOperationTimeout = 2 * time.Minute

// Options configure a Driver. Zero values take the defaults noted.
type Options struct {
	Name   string // DefaultName
	NodeID string
	// BasePath is where backing files go unless a StorageClass says otherwise,
	// e.g. /storage-pool/k8s. AllowedBasePaths may add others, all in the same
	// pool; a StorageClass cannot point anywhere else on RDS.
	BasePath         string
	AllowedBasePaths []string
	// NVMeAddress and NVMePort are where nodes connect NVMe/TCP (4420).
	NVMeAddress string
	NVMePort    int
	// NQNPrefix is prepended to the slot to form each volume's NQN.
	NQNPrefix string
	// DefaultDataPlane is nvme or loop, when the StorageClass does not say.
	DefaultDataPlane string
	// GracePeriod is the default attachment grace period (30s).
	GracePeriod time.Duration
	// MaxVolumesPerNode is how many volumes ControllerPublishVolume lets one
	// node hold (RESOURCE_EXHAUSTED beyond); 0 means no limit.
	MaxVolumesPerNode int64
	// OperationTimeout bounds every RPC's backend work (2m), on top of the
	// caller's deadline.
	OperationTimeout time.Duration

	Clock clock.Clock
	RDS   RDSConnection
	Nodes NodeLookup
	// StateReady, when set, says whether the attachment state has been
	// rebuilt from the cluster. Until it has, calls that would decide from
	// an empty state (DeleteVolume's "is it still published?", published
	// nodes in listings) fail with UNAVAILABLE; publishes are refused by
	// the NodeLookup. Nil means always ready (standalone).
	StateReady  func() bool
	Attachments *attachment.Manager
	Registerer  prometheus.Registerer

	// RestrictHosts turns on storage-side access control: each export
	// allows only the host NQNs (driver/hostnqn) of the nodes holding a
	// claim on it (see fence.go). Off by default until validated on
	// hardware (deploy/README.md).
	RestrictHosts bool
	// OnRevocationPending, when set, is called after an unpublish left a
	// revocation to apply (the reconciler's trigger).
	OnRevocationPending func()
}

// Driver implements the CSI identity and controller services (and the node
// service when NodeID is set and a data plane is configured).
type Driver struct {
	// The embedded types answer Unimplemented for RPCs of newer spec versions
	// this driver does not know, instead of breaking the build.
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer

	opts Options
	clk  clock.Clock
	rds  *rds.Client
	// owner says which disks on RDS are this driver's: nothing else is ever
	// listed, adopted, copied, resized or deleted.
	owner  ownership.Rules
	attach *attachment.Manager
	// ops serialises operations per volume or snapshot ID.
	ops keylock.Set
	// readOnly is the readonly flag of each granted publish (PUBLISH_READONLY).
	readOnly readOnlyGrants
	// fence is what RestrictHosts still owes RDS.
	fence fencer
}

// New validates options and returns a Driver.
func New(opts Options) (*Driver, error) {
	if opts.Name == "" {
		opts.Name = DefaultName
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.NVMePort == 0 {
		opts.NVMePort = 4420
	}
	if opts.NQNPrefix == "" {
		opts.NQNPrefix = "nqn.2000-02.com.mikrotik:"
	}
	if opts.DefaultDataPlane == "" {
		opts.DefaultDataPlane = "nvme"
	}
	if opts.GracePeriod == 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.OperationTimeout == 0 {
		opts.OperationTimeout = DefaultOperationTimeout
	}
	if opts.NVMeAddress != "" {
		if err := dataplane.ValidateAddress(opts.NVMeAddress); err != nil {
			return nil, fmt.Errorf("NVMe/TCP address: %w", err)
		}
	}
	if opts.RDS == nil {
		return nil, errors.New("driver: no RDS connection")
	}
	if opts.Nodes == nil {
		opts.Nodes = StaticNodes{opts.NodeID: opts.NodeID != ""}
	}
	pool, err := poolRoot(opts.BasePath)
	if err != nil {
		return nil, err
	}
	for _, p := range opts.AllowedBasePaths {
		if r, err := poolRoot(p); err != nil || r != pool {
			return nil, fmt.Errorf("allowed base path %q: must be a directory in pool %s", p, pool)
		}
	}
	owner, err := ownership.New(append([]string{opts.BasePath}, opts.AllowedBasePaths...)...)
	if err != nil {
		return nil, err
	}
	if opts.Attachments == nil {
		opts.Attachments = attachment.New(attachment.Options{Clock: opts.Clock, GracePeriod: opts.GracePeriod,
			Events: attachment.EventFunc(LogAttachmentEvent)})
	}
	// One client rooted at the pool serves every allowed base path; the
	// driver checks paths against the allowed list before they reach it.
	client, err := rds.NewClient(opts.RDS, rds.ClientOptions{BasePath: pool, Clock: opts.Clock, Registerer: opts.Registerer})
	if err != nil {
		return nil, err
	}
	d := &Driver{
		opts:   opts,
		clk:    opts.Clock,
		rds:    client,
		owner:  owner,
		attach: opts.Attachments,
	}
	if opts.RestrictHosts {
		if err := d.fence.register(opts.Registerer); err != nil {
			return nil, err
		}
		// What a predecessor left pending is known only to RDS.
		d.fence.markAll()
	}
	return d, nil
}

// poolRoot returns "/<pool>" for a base path "/<pool>/<dir>...".
func poolRoot(base string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(base, "/"), "/")
	if !strings.HasPrefix(base, "/") || len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("base path %q: want /<pool>/<directory>", base)
	}
	return "/" + parts[0], nil
}

// stateReady fails with UNAVAILABLE while the attachment state is not rebuilt.
func (d *Driver) stateReady() error {
	if d.opts.StateReady != nil && !d.opts.StateReady() {
		return status.Error(codes.Unavailable, "attachment state is not rebuilt from the cluster yet; retry")
	}
	return nil
}

// Attachments exposes the attachment manager (the reconciler drives it).
func (d *Driver) Attachments() *attachment.Manager { return d.attach }

// poolName is the pool a base path lives in, as /disk print shows its mount point.
func poolName(base string) string {
	root, _ := poolRoot(base)
	return strings.TrimPrefix(root, "/")
}

// withTimeout bounds backend work of one RPC on the driver's clock.
func (d *Driver) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return d.clk.WithTimeout(ctx, d.opts.OperationTimeout)
}

// LogAttachmentEvent is the attachment events' sink without a cluster to
// post them to: conflicts and overdue migrations at the default level, the
// rest at --v=2.
func LogAttachmentEvent(e attachment.Event) {
	kv := []any{"type", string(e.Type), "volume", e.Volume, "node", e.Node}
	if e.OtherNode != "" {
		kv = append(kv, "otherNode", e.OtherNode)
	}
	switch e.Type {
	case attachment.Conflict, attachment.MigrationTimedOut:
		klog.InfoS("Attachment warning: "+e.Message, kv...)
	default:
		klog.V(2).InfoS("Attachment: "+e.Message, kv...)
	}
}
