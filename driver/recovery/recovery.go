package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// RetryAnnotation is set on a failed VolumeAttachment to make the
// external-attacher retry it now. Its value is when it was asked (RFC 3339,
// on the driver's clock); a new value is a new request.
const RetryAnnotation = "rds.csi.mikrotik.com/attach-retry-requested"

// Why a nudge was sent: the values of the reason label.
const (
	ReasonReconnect    = "reconnect"     // the RDS connection came back
	ReasonFailover     = "failover"      // a new leader took over
	ReasonClaimCleared = "claim_cleared" // a gone node's claim lapsed
)

// DefaultAPITimeout bounds one patch when Options says nothing.
const DefaultAPITimeout = 10 * time.Second

// Options configure a Tracker.
type Options struct {
	// DriverName selects the VolumeAttachments (spec.attacher).
	DriverName string
	Client     kubernetes.Interface
	// VolumeAttachments is a synced lister; Nudge and Check read only it.
	VolumeAttachments storagelisters.VolumeAttachmentLister
	// VolumeOf names a VolumeAttachment's volume handle ("" if unknown), to
	// nudge only the attachments of some volumes.
	VolumeOf func(*storagev1.VolumeAttachment) string
	// Clock is the only source of time; nil means the real clock.
	Clock clock.Clock
	// APITimeout bounds one patch (DefaultAPITimeout).
	APITimeout time.Duration
	// Completed, if set, is told of every completed recovery (the
	// reconciler turns it into an event on the controller).
	Completed func(took time.Duration, nudged int)
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Tracker nudges failed attachments and measures recoveries. Its methods
// are safe for concurrent use.
type Tracker struct {
	o       Options
	clk     clock.Clock
	nudges  *prometheus.CounterVec
	seconds prometheus.Histogram

	mu     sync.Mutex
	since  time.Time // start of the recovery in progress; zero when none
	nudged int       // attachments nudged during it
}

// New returns a Tracker.
func New(o Options) (*Tracker, error) {
	if o.DriverName == "" || o.Client == nil || o.VolumeAttachments == nil {
		return nil, errors.New("recovery: DriverName, Client and VolumeAttachments are required")
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	if o.APITimeout <= 0 {
		o.APITimeout = DefaultAPITimeout
	}
	t := &Tracker{
		o: o, clk: o.Clock,
		nudges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_attachment_retry_nudges_total",
			Help: "Failed VolumeAttachments the controller asked the external-attacher to retry at once, by reason (reconnect, failover, claim_cleared).",
		}, []string{"reason"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rds_csi_recovery_duration_seconds",
			Help:    "Time from the RDS connection coming back until no VolumeAttachment of the driver waits to attach.",
			Buckets: []float64{.5, 1, 2, 5, 10, 30, 60, 120, 300, 900},
		}),
	}
	for _, r := range []string{ReasonReconnect, ReasonFailover, ReasonClaimCleared} {
		t.nudges.WithLabelValues(r)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{t.nudges, t.seconds} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("recovery: register metrics: %w", err)
			}
		}
	}
	return t, nil
}

// failed reports whether va is ours, alive, and waiting on a failed attach.
func (t *Tracker) failed(va *storagev1.VolumeAttachment) bool {
	return t.pending(va) && va.Status.AttachError != nil
}

// pending reports whether va is ours, alive and not attached.
func (t *Tracker) pending(va *storagev1.VolumeAttachment) bool {
	return va.Spec.Attacher == t.o.DriverName && va.DeletionTimestamp == nil && !va.Status.Attached
}

// Failed counts the VolumeAttachments of the driver whose attach failed.
func (t *Tracker) Failed() int { return t.count(t.failed) }

// count counts the VolumeAttachments in the lister for which pred holds.
func (t *Tracker) count(pred func(*storagev1.VolumeAttachment) bool) int {
	vas, err := t.o.VolumeAttachments.List(labels.Everything())
	if err != nil {
		return 0
	}
	n := 0
	for _, va := range vas {
		if pred(va) {
			n++
		}
	}
	return n
}

// Nudge asks the external-attacher to retry every failed VolumeAttachment
// of the driver now; with volumes non-nil, only those of these volumes. It
// returns how many it patched. A failed patch is reported and the others
// are still tried: a nudge is an optimisation, the attacher's own retry
// remains.
func (t *Tracker) Nudge(ctx context.Context, reason string, volumes map[string]bool) (int, error) {
	vas, err := t.o.VolumeAttachments.List(labels.Everything())
	if err != nil {
		return 0, fmt.Errorf("recovery: list VolumeAttachments: %w", err)
	}
	sort.Slice(vas, func(i, j int) bool { return vas[i].Name < vas[j].Name })
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{
		RetryAnnotation: t.clk.Now().UTC().Format(time.RFC3339Nano)}}})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, va := range vas {
		if !t.failed(va) || (volumes != nil && (t.o.VolumeOf == nil || !volumes[t.o.VolumeOf(va)])) {
			continue
		}
		pctx, cancel := t.clk.WithTimeout(ctx, t.o.APITimeout)
		_, err := t.o.Client.StorageV1().VolumeAttachments().Patch(pctx, va.Name, types.MergePatchType, patch, metav1.PatchOptions{})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("nudge VolumeAttachment %s: %w", va.Name, err))
			continue
		}
		n++
		t.nudges.WithLabelValues(reason).Inc()
		klog.V(2).InfoS("Asked the external-attacher to retry a failed attach now", "volumeAttachment", va.Name,
			"node", va.Spec.NodeName, "reason", reason)
	}
	if n > 0 {
		t.mu.Lock()
		if !t.since.IsZero() {
			t.nudged += n
		}
		t.mu.Unlock()
		klog.InfoS("Failed attachments re-queued with the external-attacher", "count", n, "reason", reason)
	}
	return n, errors.Join(errs...)
}

// Begin starts measuring a recovery now (the RDS connection is back), if
// any VolumeAttachment of the driver waits to attach; a reconnect that
// displaced nothing is not a recovery. One already in progress starts over.
// A VolumeAttachment that never attaches (its node is gone) keeps the
// recovery open until it is deleted.
func (t *Tracker) Begin() {
	var since time.Time
	if t.count(t.pending) > 0 {
		since = t.clk.Now()
	}
	t.mu.Lock()
	t.since, t.nudged = since, 0
	t.mu.Unlock()
}

// End abandons the recovery in progress (the connection was lost again).
func (t *Tracker) End() {
	t.mu.Lock()
	t.since = time.Time{}
	t.mu.Unlock()
}

// Check completes the recovery in progress if no VolumeAttachment of the
// driver waits to attach. Call it on every VolumeAttachment change.
func (t *Tracker) Check() {
	t.mu.Lock()
	since := t.since
	t.mu.Unlock()
	if since.IsZero() {
		return
	}
	if t.count(t.pending) > 0 {
		return
	}
	t.mu.Lock()
	if !t.since.Equal(since) { // completed or restarted meanwhile
		t.mu.Unlock()
		return
	}
	took, nudged := t.clk.Since(since), t.nudged
	t.since = time.Time{}
	t.mu.Unlock()
	t.seconds.Observe(took.Seconds())
	klog.InfoS("Recovery complete: every VolumeAttachment is attached", "took", took, "nudged", nudged)
	if t.o.Completed != nil {
		t.o.Completed(took, nudged)
	}
}
