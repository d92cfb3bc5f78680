package reconciler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

// Fencer revokes hosts on RDS (the controller with --restrict-hosts). The
// reconciler fences a claim's host before it clears the claim, so that a
// node cut off from Kubernetes but still reaching RDS cannot write a volume
// that moves elsewhere.
type Fencer interface {
	// Fence makes volume's export allow only its holders other than nodes,
	// and returns once RDS shows it (nil when there is nothing to fence).
	Fence(ctx context.Context, volume string, nodes []string) error
	// ApplyPending brings every export whose claims changed in line with
	// them; an error leaves them pending for the next run.
	ApplyPending(ctx context.Context) error
	// MarkChanged records that volume's claims changed outside a CSI call.
	MarkChanged(volume string)
}

// fenceRetry is how soon a run whose fencing failed is retried when nothing
// else wakes the reconciler (a reconnect triggers a run at once).
const fenceRetry = 10 * time.Second

// fenceTimeout bounds the storage work of one run: a hung RDS must not hold
// the reconciler (and every claim decision behind it) for the driver's whole
// operation timeout; what is left undone stays pending.
const fenceTimeout = 15 * time.Second

// fenceLapsing fences the host of every claim in claims that has lapsed by
// now, volume by volume. It reports whether every one was fenced: only then
// may the sweep clear them, since a cleared claim is what lets the volume be
// published elsewhere.
func (r *Reconciler) fenceLapsing(ctx context.Context, claims []attachment.Claim, now time.Time) (bool, []error) {
	lapsing := map[string][]string{}
	for _, c := range claims {
		if c.Stale(now) {
			lapsing[c.Volume] = append(lapsing[c.Volume], c.Node)
		}
	}
	ok := true
	var errs []error
	if len(lapsing) == 0 {
		return true, nil
	}
	ctx, cancel := r.clk.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	for _, vol := range slices.Sorted(maps.Keys(lapsing)) {
		nodes := lapsing[vol]
		slices.Sort(nodes)
		if err := r.o.Fencer.Fence(ctx, vol, nodes); err != nil {
			ok = false
			errs = append(errs, fmt.Errorf("fence before clearing: %w", err))
			continue
		}
		klog.InfoS("Fenced lapsed claims' hosts on RDS before clearing them", "volume", vol, "nodes", nodes)
	}
	return ok, errs
}

// markChanged tells the fencer about every volume whose holders differ
// between before and after.
func (r *Reconciler) markChanged(before, after []attachment.Claim) {
	type key struct{ vol, node string }
	b := make(map[key]bool, len(before))
	for _, c := range before {
		b[key{c.Volume, c.Node}] = true
	}
	changed := map[string]bool{}
	for _, c := range after {
		k := key{c.Volume, c.Node}
		if !b[k] {
			changed[c.Volume] = true
		}
		delete(b, k)
	}
	for k := range b {
		changed[k.vol] = true
	}
	for _, vol := range slices.Sorted(maps.Keys(changed)) {
		r.o.Fencer.MarkChanged(vol)
	}
}

// applyPending is the fencer's ApplyPending, bounded like fencing.
func (r *Reconciler) applyPending(ctx context.Context) error {
	ctx, cancel := r.clk.WithTimeout(ctx, fenceTimeout)
	defer cancel()
	return r.o.Fencer.ApplyPending(ctx)
}
