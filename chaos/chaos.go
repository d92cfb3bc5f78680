package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator"
)

// Fault is one deliberate failure. Apply starts it; the returned Undo (may be
// nil) ends it. A fault is a plain value: applying the same value twice starts
// two independent failures (or fails, when the target allows only one at a
// time).
type Fault interface {
	// Name is stable and used in scenario files and traces: "rds.crash",
	// "network.latency", "node.not-ready".
	Name() string
	Apply(ctx context.Context, t Targets) (Undo, error)
}

// Undo ends a fault. Every Undo returned by this package may be called more
// than once; calls after the first do nothing and return the first result.
type Undo func(ctx context.Context) error

// Targets is what faults act on. A fault needs only its own target; a missing
// one is an error wrapping ErrNoTarget.
type Targets struct {
	// RDS is the emulated RDS (rds.* faults).
	RDS *emulator.Emulator
	// Network is the link between the controller and RDS (network.* faults).
	Network *Network
	// Kube is the API server (node.* faults); tests pass the fake clientset.
	Kube kubernetes.Interface
	// Clock times every delay and stamps every timestamp; nil means the real
	// clock.
	Clock clock.Clock
	// Seed is the scenario's seed. Faults that draw random numbers derive
	// their streams from it unless they are given their own seed.
	Seed uint64
	// Controller is the controller deployment (controller.*, leader.*).
	Controller Controller
	// KubeVirt moves VMs (kubevirt.*).
	KubeVirt KubeVirt
}

// Errors wrapped by what Lookup and Apply return, for errors.Is.
var (
	// ErrUnknownFault: Lookup was given a name that is not in the catalogue.
	ErrUnknownFault = errors.New("unknown fault")
	// ErrBadParam: a parameter is unknown, missing or malformed.
	ErrBadParam = errors.New("bad fault parameter")
	// ErrNoTarget: Targets lacks what the fault acts on.
	ErrNoTarget = errors.New("fault target missing")
	// ErrActive: the target already suffers a fault of this kind.
	ErrActive = errors.New("fault already active")
)

func (t Targets) clock() clock.Clock {
	if t.Clock == nil {
		return clock.New()
	}
	return t.Clock
}

func (t Targets) rds(fault string) (*emulator.Emulator, error) {
	if t.RDS == nil {
		return nil, fmt.Errorf("%s: %w: Targets.RDS is nil", fault, ErrNoTarget)
	}
	return t.RDS, nil
}

func (t Targets) network(fault string) (*Network, error) {
	if t.Network == nil {
		return nil, fmt.Errorf("%s: %w: Targets.Network is nil", fault, ErrNoTarget)
	}
	return t.Network, nil
}

func (t Targets) kube(fault string) (kubernetes.Interface, error) {
	if t.Kube == nil {
		return nil, fmt.Errorf("%s: %w: Targets.Kube is nil", fault, ErrNoTarget)
	}
	return t.Kube, nil
}

// undoOnce logs the end of fault f and makes undo safe to call repeatedly.
func undoOnce(f Fault, undo func(ctx context.Context) error, kv ...any) Undo {
	var (
		once sync.Once
		err  error
	)
	return func(ctx context.Context) error {
		once.Do(func() {
			err = undo(ctx)
			if err != nil {
				klog.ErrorS(err, "Ending fault failed", append([]any{"fault", f.Name()}, kv...)...)
				return
			}
			klog.InfoS("Fault ended", append([]any{"fault", f.Name()}, kv...)...)
		})
		return err
	}
}

// logApplied records the start of a fault.
func logApplied(f Fault, kv ...any) {
	klog.InfoS("Fault applied", append([]any{"fault", f.Name()}, kv...)...)
}

// Controller is the controller deployment as the controller.* and leader.*
// faults act on it. The scenario runner implements it on its simulated
// replicas; on a cluster it would delete Pods and the Lease.
type Controller interface {
	// CrashController kills the leader's process; its Lease is not released.
	CrashController() error
	// RestartController starts every crashed replica again.
	RestartController() error
	// LoseLeadership makes the leader lose its Lease (it exits and comes back
	// as a standby).
	LoseLeadership() error
}

// KubeVirt moves virtual machines (kubevirt.* faults).
type KubeVirt interface {
	// Migrate live-migrates the VM whose disk is volume to node. order is
	// attach-first or detach-first; delay separates the two halves.
	Migrate(volume, to, order string, delay time.Duration) error
}

func (t Targets) controller(fault string) (Controller, error) {
	if t.Controller == nil {
		return nil, fmt.Errorf("%s: %w: Targets.Controller is nil", fault, ErrNoTarget)
	}
	return t.Controller, nil
}

func (t Targets) kubeVirt(fault string) (KubeVirt, error) {
	if t.KubeVirt == nil {
		return nil, fmt.Errorf("%s: %w: Targets.KubeVirt is nil", fault, ErrNoTarget)
	}
	return t.KubeVirt, nil
}
