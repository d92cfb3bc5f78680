package reconciler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

// t0 is where every test clock starts, so messages carry readable dates.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

const (
	driverName        = "rds.csi.mikrotik.com"
	attacherFinalizer = "external-attacher/rds-csi-mikrotik-com"
)

// propagation bounds the only real-time waits in these tests: an object
// written through the fake clientset reaching the informer caches.
const propagation = 10 * time.Second

// recorded is one event, with the object it was recorded on.
type recorded struct {
	Object, Type, Reason, Message string
}

func (e recorded) String() string { return e.Object + " " + e.Type + " " + e.Reason }

// refRecorder is the client-go FakeRecorder plus the name of the object
// each event was recorded on, which FakeRecorder does not print.
type refRecorder struct {
	*record.FakeRecorder
	mu     sync.Mutex
	events []recorded
}

func (f *refRecorder) Event(obj runtime.Object, typ, reason, msg string) {
	name := fmt.Sprintf("%T", obj)
	if ref, ok := obj.(*corev1.ObjectReference); ok {
		name = ref.Kind + ":" + ref.Namespace + "/" + ref.Name
	}
	f.mu.Lock()
	f.events = append(f.events, recorded{name, typ, reason, msg})
	f.mu.Unlock()
	f.FakeRecorder.Event(obj, typ, reason, msg)
}

// take returns and forgets the events so far, draining FakeRecorder's
// channel too so it never fills.
func (f *refRecorder) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.Events) > 0 {
		<-f.Events
	}
	out := f.events
	f.events = nil
	return out
}

func summary(evs []recorded) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.String()
	}
	return out
}

type env struct {
	t     testing.TB
	ctx   context.Context
	clk   *libclock.Mock
	cs    *fake.Clientset
	att   *attachment.Manager
	rec   *refRecorder
	reg   *prometheus.Registry
	r     *Reconciler
	runWG sync.WaitGroup
	// stop ends Run and the informers; cleanup calls it too.
	stop func()

	// fail, if set, makes the fake API answer an error for the actions it
	// returns true for. Installed before anything starts, so switching it
	// is race-free.
	fail atomic.Pointer[func(k8stesting.Action) bool]

	watchMu  sync.Mutex
	watching map[string]bool // resources whose watch has been opened
}

func newEnv(t testing.TB, tweak func(*Options), objs ...runtime.Object) *env {
	t.Helper()
	clk := libclock.NewMock()
	clk.Set(t0)
	e := &env{t: t, clk: clk, cs: fake.NewClientset(objs...), reg: prometheus.NewRegistry(), watching: map[string]bool{}}
	e.cs.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if f := e.fail.Load(); f != nil && (*f)(a) {
			return true, nil, apierrors.NewServiceUnavailable("injected: API unreachable")
		}
		return false, nil, nil
	})
	// A change written between an informer's list and its watch is lost
	// by the fake clientset (it replays additions, not deletions), so
	// start waits until every watch is open before the test writes.
	e.cs.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		e.watchMu.Lock()
		e.watching[a.GetResource().Resource] = true
		e.watchMu.Unlock()
		return false, nil, nil
	})
	e.rec = &refRecorder{FakeRecorder: record.NewFakeRecorder(100000)}
	var r *Reconciler
	e.att = attachment.New(attachment.Options{Clock: clock.FromLibrary(clk), Events: attachment.EventFunc(func(ev attachment.Event) { r.Event(ev) })})
	o := Options{
		DriverName:  driverName,
		Client:      e.cs,
		Attachments: e.att,
		Clock:       clock.FromLibrary(clk),
		Recorder:    e.rec,
		Registerer:  e.reg,
		Identity:    &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "rds-csi-controller-0"},
	}
	if tweak != nil {
		tweak(&o)
	}
	var err error
	r, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx = ctx
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			e.runWG.Wait()
			r.factory.Shutdown()
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *env) failWhen(f func(k8stesting.Action) bool) { e.fail.Store(&f) }

func (e *env) start() {
	e.t.Helper()
	if err := e.r.Start(e.ctx); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
	e.rec.take() // the StartupReconciliation event is checked where it matters
	// The fake serialises calls, so once the watch call has been seen, a
	// later write reaches it.
	e.eventually("informer watches open", func() bool {
		e.watchMu.Lock()
		defer e.watchMu.Unlock()
		return e.watching["nodes"] && e.watching["volumeattachments"] && e.watching["persistentvolumes"]
	})
}

// run starts Run in the background; cleanup waits for it.
func (e *env) run() {
	e.runWG.Add(1)
	go func() {
		defer e.runWG.Done()
		e.r.Run(e.ctx)
	}()
}

func (e *env) reconcile() Result {
	e.t.Helper()
	res := e.r.ReconcileOnce(e.ctx)
	if res.Skipped != "" {
		e.t.Fatalf("reconcile skipped: %s", res.Skipped)
	}
	return res
}

// eventually polls cond until it holds or propagation passes. It is only
// for waiting on informers and background goroutines; behaviour on the
// clock is driven by the test.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(propagation)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) runs() float64 {
	return testutil.ToFloat64(e.r.metrics.reconcile.WithLabelValues(actionRun))
}

func (e *env) action(a string) float64 {
	return testutil.ToFloat64(e.r.metrics.reconcile.WithLabelValues(a))
}

// updateNode changes a node through the API and waits for the cache.
func (e *env) updateNode(name string, f func(*corev1.Node)) {
	e.t.Helper()
	n, err := e.cs.CoreV1().Nodes().Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	n = n.DeepCopy()
	f(n)
	n, err = e.cs.CoreV1().Nodes().Update(e.ctx, n, metav1.UpdateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.eventually("node "+name+" updated in cache", func() bool {
		// The fake clientset leaves resourceVersion empty, so compare
		// what the reconciler reads.
		c, err := e.r.nodes.Get(name)
		return err == nil && equality.Semantic.DeepEqual(c.Spec, n.Spec) && equality.Semantic.DeepEqual(c.Status, n.Status)
	})
}

func (e *env) deleteNode(name string) {
	e.t.Helper()
	if err := e.cs.CoreV1().Nodes().Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.eventually("node "+name+" gone from cache", func() bool {
		_, err := e.r.nodes.Get(name)
		return apierrors.IsNotFound(err)
	})
}

func (e *env) createNode(n *corev1.Node) {
	e.t.Helper()
	if _, err := e.cs.CoreV1().Nodes().Create(e.ctx, n, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.eventually("node "+n.Name+" in cache", func() bool {
		_, err := e.r.nodes.Get(n.Name)
		return err == nil
	})
}

func (e *env) createVA(va *storagev1.VolumeAttachment) {
	e.t.Helper()
	if _, err := e.cs.StorageV1().VolumeAttachments().Create(e.ctx, va, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.eventually("VolumeAttachment "+va.Name+" in cache", func() bool {
		_, err := e.r.vas.Get(va.Name)
		return err == nil
	})
}

func (e *env) deleteVA(name string) {
	e.t.Helper()
	if err := e.cs.StorageV1().VolumeAttachments().Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.eventually("VolumeAttachment "+name+" gone from cache", func() bool {
		_, err := e.r.vas.Get(name)
		return apierrors.IsNotFound(err)
	})
}

// holders returns the nodes holding volume, oldest first, with a '!' on
// those whose node is reported gone.
func (e *env) holders(volume string) string {
	var out []string
	for _, c := range e.att.Holders(volume) {
		s := c.Node
		if !c.GoneSince.IsZero() {
			s += "!"
		}
		out = append(out, s)
	}
	return strings.Join(out, ",")
}

// --- objects ---

type nodeOpt func(*corev1.Node)

func node(name string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour)),
		}}},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func notReady(since time.Time) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown, LastTransitionTime: metav1.NewTime(since),
		}}
	}
}

func ready(since time.Time) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since),
		}}
	}
}

// outOfServiceTaint adds the taint; a zero added leaves TimeAdded unset.
func outOfServiceTaint(added time.Time) nodeOpt {
	return func(n *corev1.Node) {
		t := corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}
		if !added.IsZero() {
			ta := metav1.NewTime(added)
			t.TimeAdded = &ta
		}
		n.Spec.Taints = append(n.Spec.Taints, t)
	}
}

func untaint(n *corev1.Node) { n.Spec.Taints = nil }

func pvName(volume string) string  { return "pv-" + volume }
func pvcName(volume string) string { return "claim-" + volume }

// pv is the PersistentVolume of volume, bound to PVC default/claim-<volume>.
// rwxBlock makes it a ReadWriteMany block volume (two holders allowed).
func pv(volume string, rwxBlock bool) *corev1.PersistentVolume {
	p := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName(volume)},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: driverName, VolumeHandle: volume,
			}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: pvcName(volume), UID: types.UID("uid-claim-" + volume)},
		},
	}
	if rwxBlock {
		block := corev1.PersistentVolumeBlock
		p.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
		p.Spec.VolumeMode = &block
	}
	return p
}

func vaName(volume, node string) string { return attachmentName(volume, driverName, node) }

// va is the attachment Kubernetes would create for volume on node, with
// the external-attacher's finalizer.
func va(volume, node string, attached bool, created time.Time) *storagev1.VolumeAttachment {
	pvn := pvName(volume)
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{
			Name: vaName(volume, node), CreationTimestamp: metav1.NewTime(created),
			Finalizers: []string{attacherFinalizer},
		},
		Spec: storagev1.VolumeAttachmentSpec{
			Attacher: driverName, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pvn},
		},
		Status: storagev1.VolumeAttachmentStatus{Attached: attached},
	}
}

// attachedVolume returns the PV and an attached VA for volume on node,
// created an hour before t0.
func attachedVolume(volume, node string) []runtime.Object {
	return []runtime.Object{pv(volume, false), va(volume, node, true, t0.Add(-time.Hour))}
}

func objs(groups ...[]runtime.Object) []runtime.Object {
	var out []runtime.Object
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func list(o ...runtime.Object) []runtime.Object { return o }
