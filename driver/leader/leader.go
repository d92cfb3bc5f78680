package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
)

// Elector campaigns for leadership.
type Elector interface {
	// Run campaigns until ctx ends. Each time this replica becomes leader,
	// lead runs with a context that is cancelled when leadership is lost;
	// afterwards Run campaigns again.
	Run(ctx context.Context, lead func(ctx context.Context))
	// IsLeader reports whether this replica leads right now.
	IsLeader() bool
}

// Always is the Elector of a process that is alone: it leads at once.
type Always struct{ leading atomic.Bool }

// Run calls lead once and returns when ctx ends.
func (a *Always) Run(ctx context.Context, lead func(ctx context.Context)) {
	a.leading.Store(true)
	defer a.leading.Store(false)
	lead(ctx)
	<-ctx.Done()
}

// IsLeader reports whether Run is running.
func (a *Always) IsLeader() bool { return a.leading.Load() }

// LeaseOptions are client-go's leader election timings. Failover after a
// leader dies without releasing takes up to LeaseDuration plus RetryPeriod. The
// Lease records whole seconds, so LeaseDuration must be at least a second.
type LeaseOptions struct {
	LeaseDuration time.Duration // 15s
	RenewDeadline time.Duration // 10s
	RetryPeriod   time.Duration // 2s
	// KeepOnExit leaves the Lease held when Run's context ends, as a crashed
	// process does; the standby then waits out LeaseDuration. Normal shutdown
	// releases it so the standby takes over at once.
	KeepOnExit bool
}

// Lease elects a leader through a coordination.k8s.io Lease.
type Lease struct {
	lock    resourcelock.Interface
	opts    LeaseOptions
	leading atomic.Bool
}

// NewLease returns an Elector on the Lease namespace/name; identity must be
// unique per replica (the Pod name).
func NewLease(client kubernetes.Interface, namespace, name, identity string, o LeaseOptions) (*Lease, error) {
	if namespace == "" || name == "" || identity == "" {
		return nil, errors.New("leader: lease namespace, name and identity are required")
	}
	if o.LeaseDuration != 0 && o.LeaseDuration < time.Second {
		return nil, errors.New("leader: the lease duration must be at least 1s (Leases record whole seconds)")
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = 10 * time.Second
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = 2 * time.Second
	}
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, namespace, name,
		client.CoreV1(), client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: identity})
	if err != nil {
		return nil, err
	}
	return &Lease{lock: lock, opts: o}, nil
}

// Run campaigns until ctx ends, leading whenever the Lease is ours.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context)) {
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            l.lock,
			LeaseDuration:   l.opts.LeaseDuration,
			RenewDeadline:   l.opts.RenewDeadline,
			RetryPeriod:     l.opts.RetryPeriod,
			ReleaseOnCancel: !l.opts.KeepOnExit,
			Name:            l.lock.Describe(),
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					l.leading.Store(true)
					klog.InfoS("Became leader", "lease", l.lock.Describe(), "identity", l.lock.Identity())
					lead(ctx)
				},
				OnStoppedLeading: func() {
					l.leading.Store(false)
					klog.InfoS("Leadership lost", "lease", l.lock.Describe(), "identity", l.lock.Identity())
				},
				OnNewLeader: func(id string) {
					if id != l.lock.Identity() {
						klog.InfoS("Following leader", "lease", l.lock.Describe(), "leader", id)
					}
				},
			},
		})
		if err != nil {
			// Only a misconfiguration gets here; New validated the timings.
			klog.ErrorS(err, "Leader election misconfigured")
			return
		}
		le.Run(ctx) // returns when leadership is lost or ctx ends
	}
}

// IsLeader reports whether this replica holds the Lease.
func (l *Lease) IsLeader() bool { return l.leading.Load() }
