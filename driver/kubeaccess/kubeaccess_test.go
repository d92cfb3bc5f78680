package kubeaccess_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/controlplane"
	"github.com/rds-csi/rds-csi/driver/kubeaccess"
	"github.com/rds-csi/rds-csi/driver/leader"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
)

const driverNamespace = "rds-csi"

// wait bounds the only real-time waits: informers and the event broadcaster
// work asynchronously even on a fake clientset.
const wait = 20 * time.Second

// access is one API action reduced to what RBAC sees.
type access struct {
	group, resource, verb string
	namespace             string
}

func (a access) String() string {
	g := a.group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s %s/%s (namespace %q)", a.verb, g, a.resource, a.namespace)
}

// recorder collects every action a fake clientset sees.
type recorder struct {
	mu  sync.Mutex
	got []access
}

func (r *recorder) install(cs *fake.Clientset) {
	react := func(a k8stesting.Action) (bool, runtime.Object, error) {
		res := a.GetResource().Resource
		if sub := a.GetSubresource(); sub != "" {
			res += "/" + sub
		}
		r.mu.Lock()
		r.got = append(r.got, access{a.GetResource().Group, res, a.GetVerb(), a.GetNamespace()})
		r.mu.Unlock()
		return false, nil, nil
	}
	cs.PrependReactor("*", "*", react)
	cs.PrependWatchReactor("*", func(a k8stesting.Action) (bool, watch.Interface, error) {
		_, _, _ = react(a)
		return false, nil, nil
	})
}

func (r *recorder) actions() []access {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func (r *recorder) saw(verb, resource string) bool {
	for _, a := range r.actions() {
		if a.verb == verb && a.resource == resource {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func pv(volume string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv-" + volume},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: driver.DefaultName, VolumeHandle: volume,
			}},
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "apps", Name: "claim-" + volume, UID: types.UID("uid-claim-" + volume)},
		},
	}
}

func va(volume, node string, created time.Time) *storagev1.VolumeAttachment {
	pvName := "pv-" + volume
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "va-" + volume + "-" + node, CreationTimestamp: metav1.NewTime(created),
			Finalizers: []string{"external-attacher/rds-csi-mikrotik-com"}},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: driver.DefaultName, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pvName}},
		Status: storagev1.VolumeAttachmentStatus{Attached: true},
	}
}

func failedVA(volume, node string, created time.Time) *storagev1.VolumeAttachment {
	v := va(volume, node, created)
	v.Status = storagev1.VolumeAttachmentStatus{AttachError: &storagev1.VolumeError{Message: "rds: unavailable"}}
	return v
}

func readyNode(name string, since time.Time) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(since)}}}}
}

// runController drives every code path of the controller that talks to the
// Kubernetes API: the reconciler's start-up rebuild (informers, a node
// deletion confirmed with a GET), drift repair in both directions (GETs of
// VolumeAttachments), the attach-retry nudge after a reconnect (a patch),
// events on PVCs and on the Pod (create, then patch of a
// repeated event), and a Lease acquired and released by the leader elector.
func runController(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := libclock.NewMock()
	clk.Set(t0)

	cs := fake.NewClientset(
		readyNode("n1", t0.Add(-time.Hour)), readyNode("n2", t0.Add(-time.Hour)),
		pv("vol-a"), va("vol-a", "n1", t0.Add(-time.Hour)),
		// vol-b's node is gone: the rebuild restores the claim, and the
		// node evaluation confirms the deletion with the API server.
		pv("vol-b"), va("vol-b", "gone", t0.Add(-time.Hour)),
		pv("vol-c"),
		// vol-d's attach failed while RDS was down: the reconnect
		// re-queues it with the external-attacher (a patch).
		pv("vol-d"), failedVA("vol-d", "n2", t0.Add(-time.Hour)),
	)
	rec.install(cs)

	// The controller as the binary assembles it; RDS is never dialled (the
	// connection manager is not started), only the API server matters here.
	cp, err := controlplane.New(controlplane.Seams{Clock: clock.FromLibrary(clk), Kube: cs, Connector: noRDS{}}, controlplane.Options{
		Driver: driver.Options{BasePath: "/storage-pool/k8s", NVMeAddress: "10.0.0.1"},
		Reconciler: reconciler.Options{Interval: time.Minute,
			Identity: &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: driverNamespace, Name: "rds-csi-controller-0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	// Start and Run are called one by one (not through cp.Run) so that the
	// drift below happens between them.
	r, att := cp.Reconciler, cp.Attachments
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	// Drift, one way: a claim the manager lost while its VolumeAttachment
	// still says attached is restored after a GET.
	att.Unpublish("vol-a", "n1")
	// Drift, the other way: a claim without a VolumeAttachment is dropped
	// after a GET answers NotFound, once it is older than one interval.
	if err := att.Publish("vol-c", "n2", attachment.SingleNode, 0); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Minute)
	res := r.ReconcileOnce(ctx)
	if res.Err != nil || res.ClaimsRestored != 1 || res.ClaimsDropped != 1 {
		t.Fatalf("reconcile did not take the drift paths: %+v", res)
	}

	// Run owns the event broadcaster's shutdown. It starts after the
	// drift run so that the two cannot race for the same repairs.
	runDone := make(chan struct{})
	go func() { defer close(runDone); r.Run(ctx) }()

	// Pod events; the repeated one is aggregated into a patch.
	r.RDSStateChanged(false, "connection refused")
	r.RDSStateChanged(true, "connected")
	eventually(t, "patch volumeattachments", func() bool { return rec.saw("patch", "volumeattachments") })
	r.RDSStateChanged(false, "connection refused")

	for _, want := range [][2]string{{"get", "nodes"}, {"get", "volumeattachments"}, {"patch", "volumeattachments"},
		{"create", "events"}, {"patch", "events"},
		{"list", "persistentvolumes"}, {"watch", "persistentvolumes"}} {
		eventually(t, want[0]+" "+want[1], func() bool { return rec.saw(want[0], want[1]) })
	}
	cancel()
	<-runDone

	// Leader election: acquire (get + create), then release on cancel
	// (update).
	lcs := fake.NewClientset()
	rec.install(lcs)
	l, err := leader.NewLease(lcs, driverNamespace, "rds-csi-controller", "rds-csi-controller-0", leader.LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(lctx, func(context.Context) { lcancel() })
	}()
	select {
	case <-done:
	case <-time.After(wait):
		lcancel()
		t.Fatal("leader election did not lead and return")
	}
	if !rec.saw("update", "leases") {
		t.Fatal("releasing the Lease did not update it")
	}
	return rec
}

// noRDS is a connector that never reaches RDS.
type noRDS struct{}

func (noRDS) Connect(context.Context) (rds.Conn, error) {
	return nil, errors.New("no RDS in this test")
}

// TestControllerAccessIsListed is the cross-check with teeth: every action
// the controller's code performs must be granted by kubeaccess.Controller,
// and every verb the list grants must have been used.
func TestControllerAccessIsListed(t *testing.T) {
	rec := runController(t)
	used := map[access]bool{}
	var missing []string
	for _, a := range rec.actions() {
		namespaced := a.namespace == driverNamespace
		key := access{a.group, a.resource, a.verb, ""}
		used[key] = true
		if !kubeaccess.Allows(kubeaccess.Controller, a.group, a.resource, a.verb, namespaced) {
			missing = append(missing, a.String())
		}
		if !namespaced && a.resource == "leases" {
			t.Errorf("%s: the Lease must live in the driver's namespace", a)
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	if len(missing) > 0 {
		t.Errorf("the code performs actions kubeaccess.Controller does not grant:\n  %s", strings.Join(missing, "\n  "))
	}
	var unused []string
	for _, r := range kubeaccess.Controller {
		for _, v := range r.Verbs {
			if !used[access{r.Group, r.Resource, v, ""}] {
				unused = append(unused, fmt.Sprintf("%s %s/%s", v, r.Group, r.Resource))
			}
		}
	}
	if len(unused) > 0 {
		t.Errorf("kubeaccess.Controller grants verbs the code never used (least privilege):\n  %s", strings.Join(unused, "\n  "))
	}
}

func TestRulesWellFormed(t *testing.T) {
	for name, rules := range map[string][]kubeaccess.Rule{"Controller": kubeaccess.Controller, "Node": kubeaccess.Node} {
		seen := map[string]bool{}
		for _, r := range rules {
			k := r.Group + "/" + r.Resource
			if seen[k] {
				t.Errorf("%s: %s listed twice", name, k)
			}
			seen[k] = true
			if r.Resource == "" || len(r.Verbs) == 0 || r.Why == "" {
				t.Errorf("%s: incomplete rule %+v", name, r)
			}
			if !sort.StringsAreSorted(r.Verbs) || len(slices.Compact(slices.Clone(r.Verbs))) != len(r.Verbs) {
				t.Errorf("%s: %s verbs %v not sorted and unique", name, k, r.Verbs)
			}
			for _, v := range r.Verbs {
				if v == "*" {
					t.Errorf("%s: %s: wildcard verb", name, k)
				}
			}
		}
	}
}

func TestAllows(t *testing.T) {
	rules := []kubeaccess.Rule{
		{Group: "", Resource: "nodes", Verbs: []string{"get"}},
		{Group: "coordination.k8s.io", Resource: "leases", Verbs: []string{"get"}, Namespaced: true},
	}
	for _, c := range []struct {
		group, resource, verb string
		namespaced, want      bool
	}{
		{"", "nodes", "get", false, true},
		{"", "nodes", "get", true, true},
		{"", "nodes", "list", false, false},
		{"storage.k8s.io", "nodes", "get", false, false},
		{"coordination.k8s.io", "leases", "get", true, true},
		{"coordination.k8s.io", "leases", "get", false, false},
	} {
		if got := kubeaccess.Allows(rules, c.group, c.resource, c.verb, c.namespaced); got != c.want {
			t.Errorf("Allows(%q, %q, %q, namespaced=%v) = %v, want %v", c.group, c.resource, c.verb, c.namespaced, got, c.want)
		}
	}
}
