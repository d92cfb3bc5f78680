package recovery

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/rds-csi/rds-csi/internal/clock"
)

const driverName = "rds.csi.mikrotik.com"

type vaOpt func(*storagev1.VolumeAttachment)

func failedAttach(va *storagev1.VolumeAttachment) {
	va.Status.AttachError = &storagev1.VolumeError{Message: "rds: unavailable"}
}
func attached(va *storagev1.VolumeAttachment) { va.Status.Attached = true }
func deleting(va *storagev1.VolumeAttachment) {
	now := metav1.Now()
	va.DeletionTimestamp = &now
}
func otherDriver(va *storagev1.VolumeAttachment) { va.Spec.Attacher = "other.csi.example.com" }

func newVA(name string, opts ...vaOpt) *storagev1.VolumeAttachment {
	va := &storagev1.VolumeAttachment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: driverName, NodeName: "n1"}}
	for _, o := range opts {
		o(va)
	}
	return va
}

// world is a Tracker on a fake clientset whose lister is fed by hand, so
// each case sees exactly the objects it lists.
type world struct {
	t       *Tracker
	cs      *fake.Clientset
	indexer cache.Indexer
	clk     *libclock.Mock
	done    []time.Duration
}

func newWorld(t *testing.T, vas ...*storagev1.VolumeAttachment) *world {
	t.Helper()
	objs := make([]runtime.Object, len(vas))
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for i, va := range vas {
		objs[i] = va
		if err := indexer.Add(va); err != nil {
			t.Fatal(err)
		}
	}
	w := &world{cs: fake.NewClientset(objs...), indexer: indexer, clk: libclock.NewMock()}
	w.clk.Set(time.Date(2026, 2, 5, 3, 10, 0, 0, time.UTC))
	var err error
	w.t, err = New(Options{DriverName: driverName, Client: w.cs, VolumeAttachments: storagelisters.NewVolumeAttachmentLister(indexer),
		VolumeOf: func(va *storagev1.VolumeAttachment) string { return "vol-" + va.Name },
		Clock:    clock.FromLibrary(w.clk), Registerer: prometheus.NewRegistry(),
		Completed: func(took time.Duration, nudged int) { w.done = append(w.done, took) }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) patched() []string {
	var names []string
	for _, a := range w.cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			names = append(names, p.GetName())
		}
	}
	return names
}

func TestNudgeTouchesOnlyFailedAttachmentsOfTheDriver(t *testing.T) {
	vas := []*storagev1.VolumeAttachment{
		newVA("a", failedAttach),
		newVA("b", failedAttach),
		newVA("pending-no-error"),
		newVA("attached", attached),
		newVA("being-deleted", failedAttach, deleting),
		newVA("foreign", failedAttach, otherDriver),
	}
	for _, c := range []struct {
		name    string
		volumes map[string]bool
		want    []string
	}{
		{"all", nil, []string{"a", "b"}},
		{"one volume", map[string]bool{"vol-b": true}, []string{"b"}},
		{"a volume without failures", map[string]bool{"vol-attached": true}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, vas...)
			n, err := w.t.Nudge(context.Background(), ReasonReconnect, c.volumes)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.patched(); n != len(c.want) || !slices.Equal(got, c.want) {
				t.Fatalf("patched %v (n=%d), want %v", got, n, c.want)
			}
			if got := testutil.ToFloat64(w.t.nudges.WithLabelValues(ReasonReconnect)); got != float64(len(c.want)) {
				t.Errorf("nudges metric = %v, want %d", got, len(c.want))
			}
		})
	}
}

// TestNudgeChangesOnlyTheAnnotation: the patch is a merge patch of the one
// annotation (the attacher ignores status-only changes; a spec change
// would be refused, and the status is the attacher's).
func TestNudgeChangesOnlyTheAnnotation(t *testing.T) {
	w := newWorld(t, newVA("a", failedAttach))
	if _, err := w.t.Nudge(context.Background(), ReasonFailover, nil); err != nil {
		t.Fatal(err)
	}
	var patch map[string]any
	for _, a := range w.cs.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			if err := json.Unmarshal(p.GetPatch(), &patch); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := `{"metadata":{"annotations":{"rds.csi.mikrotik.com/attach-retry-requested":"2026-02-05T03:10:00Z"}}}`
	if b, _ := json.Marshal(patch); string(b) != want {
		t.Fatalf("patch %s, want %s", b, want)
	}
	got, err := w.cs.StorageV1().VolumeAttachments().Get(context.Background(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.AttachError == nil || got.Spec.NodeName != "n1" {
		t.Errorf("the nudge changed more than the annotation: %+v", got)
	}
}

// TestNudgeKeepsGoingPastAFailedPatch: one refused patch is reported, the
// other attachments are still nudged.
func TestNudgeKeepsGoingPastAFailedPatch(t *testing.T) {
	w := newWorld(t, newVA("a", failedAttach), newVA("b", failedAttach))
	w.cs.PrependReactor("patch", "volumeattachments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.PatchAction).GetName() == "a" {
			return true, nil, errors.New("apiserver unavailable")
		}
		return false, nil, nil
	})
	n, err := w.t.Nudge(context.Background(), ReasonReconnect, nil)
	if n != 1 || err == nil {
		t.Fatalf("Nudge = %d, %v; want 1 and the error of the other", n, err)
	}
}

// TestRecoveryIsMeasuredUntilEveryAttachmentAttached: Begin with a pending
// attachment starts the clock; Check completes it only once none is
// pending; a reconnect that displaced nothing is no recovery; a lost
// connection abandons it.
func TestRecoveryIsMeasuredUntilEveryAttachmentAttached(t *testing.T) {
	w := newWorld(t, newVA("a", failedAttach), newVA("b", attached))
	w.t.Begin()
	w.clk.Add(1500 * time.Millisecond)
	w.t.Check()
	if len(w.done) != 0 {
		t.Fatal("recovery completed with an attachment still failed")
	}
	if err := w.indexer.Update(newVA("a", attached)); err != nil {
		t.Fatal(err)
	}
	w.t.Check()
	w.t.Check() // completes once
	if !slices.Equal(w.done, []time.Duration{1500 * time.Millisecond}) {
		t.Fatalf("completions %v, want one of 1.5s", w.done)
	}
	if got := testutil.CollectAndCount(w.t.seconds); got != 1 {
		t.Errorf("histogram series = %d", got)
	}

	w.t.Begin() // nothing pending: not a recovery
	w.t.Check()
	if len(w.done) != 1 {
		t.Fatalf("a reconnect that displaced nothing was reported: %v", w.done)
	}

	if err := w.indexer.Update(newVA("a", failedAttach)); err != nil {
		t.Fatal(err)
	}
	w.t.Begin()
	w.t.End()
	if err := w.indexer.Update(newVA("a", attached)); err != nil {
		t.Fatal(err)
	}
	w.t.Check()
	if len(w.done) != 1 {
		t.Fatalf("an abandoned recovery was reported: %v", w.done)
	}
}
