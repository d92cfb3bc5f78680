package leader

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
)

// TestLeaseFailover: two replicas on one Lease; only one leads; when the leader
// dies the standby takes over. The failover time is logged (measured, not
// asserted: it is bounded by the lease timings, not by this code).
func TestLeaseFailover(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "graceful", true: "crash"}[crash], func(t *testing.T) { testFailover(t, crash) })
	}
}

func testFailover(t *testing.T, crash bool) {
	client := fake.NewSimpleClientset()
	// Leases keep whole seconds and client-go notices a renewal only when the
	// record's second changes, so a standby's view of expiry can be up to a
	// second early: 2s is the shortest lease that tells a crash from a release.
	opts := LeaseOptions{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 100 * time.Millisecond,
		KeepOnExit: crash}
	type replica struct {
		el     *Lease
		cancel context.CancelFunc
		led    chan struct{}
	}
	start := func(id string) *replica {
		el, err := NewLease(client, "kube-system", "rds-csi", id, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{el: el, cancel: cancel, led: make(chan struct{})}
		var once sync.Once
		go el.Run(ctx, func(ctx context.Context) { once.Do(func() { close(r.led) }); <-ctx.Done() })
		t.Cleanup(cancel)
		return r
	}
	a := start("replica-a")
	select {
	case <-a.led:
	case <-time.After(10 * time.Second):
		t.Fatal("replica-a never led")
	}
	b := start("replica-b")
	// Hold for a few renewals: the standby must not lead meanwhile.
	time.Sleep(opts.LeaseDuration + opts.RetryPeriod)
	if !a.el.IsLeader() || b.el.IsLeader() {
		t.Fatalf("leaders: a=%v b=%v, want only a", a.el.IsLeader(), b.el.IsLeader())
	}
	killed := time.Now()
	a.cancel()
	select {
	case <-b.led:
		took := time.Since(killed)
		t.Logf("failover took %v (lease %v, retry %v)", took, opts.LeaseDuration, opts.RetryPeriod)
		if crash && took < opts.LeaseDuration/2 {
			t.Fatalf("standby took a crashed leader's lease after %v, before it could have expired", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("standby never took over")
	}
	if !b.el.IsLeader() {
		t.Fatal("replica-b leads but does not say so")
	}
}

func TestAlways(t *testing.T) {
	var a Always
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	led := make(chan bool, 1)
	go func() { a.Run(ctx, func(context.Context) { led <- true }); close(done) }()
	<-led
	if !a.IsLeader() {
		t.Fatal("Always is not leading while running")
	}
	cancel()
	<-done
	if a.IsLeader() {
		t.Fatal("still leading after Run returned")
	}
}

func TestNewLeaseValidates(t *testing.T) {
	if _, err := NewLease(fake.NewSimpleClientset(), "", "x", "y", LeaseOptions{}); err == nil {
		t.Fatal("empty namespace accepted")
	}
}
