package dataplane

import (
	"context"
	"errors"
)

// Target identifies one volume's block device source. It is built from the
// publish and volume contexts; each data plane reads the fields it needs.
type Target struct {
	VolumeID string
	// NVMe/TCP: the subsystem to connect and where.
	NQN     string
	Address string
	Port    int
	// nvme connect options, decimal seconds; "" keeps nvme-cli's default.
	CtrlLossTmo, ReconnectDelay, KeepAliveTmo, FastIOFailTmo string
	// HostNQN and HostID are the identity the node connects with (nvme
	// connect --hostnqn, --hostid; driver/hostnqn derives both from the
	// node ID). "" leaves the data plane's default. With storage-side
	// access control the export admits only the host NQN it allows.
	HostNQN string
	HostID  string
	// FilePath is the backing file on RDS (/storage-pool/k8s/pvc-1.img); the loop
	// data plane opens the emulator's copy of it.
	FilePath string
}

// Plane makes volumes local block devices.
type Plane interface {
	// Name is "nvme" or "loop" (or "fake").
	Name() string
	// Attach connects the volume and returns its block device path. It is
	// idempotent: attaching an attached volume returns the same device.
	Attach(ctx context.Context, t Target) (device string, err error)
	// Device finds the block device of an attached volume without attaching
	// it, e.g. after a plugin restart. It returns "" and nil when the volume
	// is not attached.
	Device(ctx context.Context, t Target) (device string, err error)
	// Detach releases the volume. It is idempotent, and refuses with an error
	// wrapping ErrInUse while something on the node still uses the device.
	Detach(ctx context.Context, t Target) error
	// Rescan makes the device pick up a size change on RDS and returns the
	// new size in bytes.
	Rescan(ctx context.Context, t Target) (sizeBytes int64, err error)
}

// ControllerStater is implemented by data planes whose devices hang off a
// transport controller (NVMe/TCP). Volume health reports a controller that is
// not "live": its I/O waits or fails until it reconnects.
type ControllerStater interface {
	// ControllerState is the state of the controller the volume's device is
	// reached through ("live", "connecting", "resetting", ...), or "" when
	// the volume is not attached.
	ControllerState(ctx context.Context, t Target) (string, error)
}

var (
	// ErrNotAttached: an operation needs the volume attached and it is not.
	ErrNotAttached = errors.New("volume is not attached on this node")
	// ErrInUse: the device is mounted or held by something else on the node.
	ErrInUse = errors.New("device is in use on this node")
	// ErrHostNotAllowed: the export does not allow this node's host NQN
	// (storage-side access control); the storage refuses the connection.
	ErrHostNotAllowed = errors.New("the export does not allow this node's host")
	// ErrTargetUnreachable: the storage's address did not answer (refused,
	// no route, timed out). Transient as far as the node can tell: nothing
	// was changed, and a retry once the storage is back can succeed.
	ErrTargetUnreachable = errors.New("the storage target is unreachable")
)
