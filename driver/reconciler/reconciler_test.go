package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

// The restart the outage needed: 1,000 attachments over 50 nodes, some of
// them live migrations, and a Node informer that syncs late. Nothing may be
// decided before every cache has synced, and when Start returns the manager
// must hold every claim.
func TestStartRebuildsThousandAttachments(t *testing.T) {
	const nodes, single, pairs, pending = 50, 900, 50, 10
	var o []runtime.Object
	for i := range nodes {
		o = append(o, node(fmt.Sprintf("n%02d", i)))
	}
	type want struct{ volume, nodes string }
	var wants []want
	for i := range single {
		vol := fmt.Sprintf("vol-%03d", i)
		n := fmt.Sprintf("n%02d", i%nodes)
		o = append(o, pv(vol, false), va(vol, n, true, t0.Add(-time.Duration(i)*time.Second)))
		wants = append(wants, want{vol, n})
	}
	// The outage's shape: attach attempts on other nodes, refused and
	// never attached. They must not become claims.
	for i := range pending {
		vol := fmt.Sprintf("vol-%03d", i)
		o = append(o, va(vol, fmt.Sprintf("n%02d", (i+1)%nodes), false, t0.Add(-time.Minute)))
	}
	migStart := map[string]time.Time{}
	for i := range pairs {
		vol := fmt.Sprintf("mig-%02d", i)
		src, dst := fmt.Sprintf("n%02d", i), fmt.Sprintf("n%02d", (i+1)%nodes)
		started := t0.Add(-time.Duration(i+1) * time.Second)
		migStart[vol] = started
		o = append(o, pv(vol, true), va(vol, src, true, t0.Add(-time.Hour)), va(vol, dst, true, started))
		wants = append(wants, want{vol, src + "," + dst})
	}

	e := newEnv(t, nil, o...)
	e.failWhen(func(a k8stesting.Action) bool { return a.GetVerb() == "list" && a.GetResource().Resource == "nodes" })
	started := make(chan error, 1)
	go func() { started <- e.r.Start(e.ctx) }()

	e.eventually("VolumeAttachments and PVs synced", func() bool { return e.r.vaInf.HasSynced() && e.r.pvInf.HasSynced() })
	if e.r.nodeInf.HasSynced() {
		t.Fatal("node informer synced although every node list fails")
	}
	if res := e.r.ReconcileOnce(e.ctx); res.Skipped == "" {
		t.Fatalf("reconcile ran with the node cache unsynced: %+v", res)
	}
	if e.r.Ready() || len(e.att.Snapshot()) != 0 {
		t.Fatalf("Ready=%v with %d claims before the node cache synced", e.r.Ready(), len(e.att.Snapshot()))
	}
	if _, err := e.r.NodeExists(e.ctx, "n00"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("NodeExists before sync: %v, want ErrNotReady", err)
	}
	select {
	case err := <-started:
		t.Fatalf("Start returned before the node cache synced: %v", err)
	default:
	}

	e.fail.Store(nil)
	if err := <-started; err != nil {
		t.Fatalf("Start: %v", err)
	}
	if !e.r.Ready() {
		t.Fatal("not Ready after Start")
	}
	if got := len(e.att.Snapshot()); got != single+2*pairs {
		t.Fatalf("%d claims after Start, want %d", got, single+2*pairs)
	}
	for _, w := range wants {
		if got := e.holders(w.volume); got != w.nodes {
			t.Fatalf("volume %s held by %q, want %q (no node may be marked gone)", w.volume, got, w.nodes)
		}
	}
	migs := e.att.Migrations()
	if len(migs) != pairs {
		t.Fatalf("%d migrations restored, want %d", len(migs), pairs)
	}
	for _, m := range migs {
		if !m.Since.Equal(migStart[m.Volume]) || !m.Deadline.Equal(migStart[m.Volume].Add(attachment.DefaultMigrationWindow)) {
			t.Fatalf("migration %s: since %v deadline %v, want the window from the target's VolumeAttachment (%v)", m.Volume, m.Since, m.Deadline, migStart[m.Volume])
		}
	}
	// Healthy holders refuse other nodes outright: nothing is lapsing.
	var ce *attachment.ConflictError
	if err := e.att.Publish("vol-000", "n01", attachment.SingleNode, 0); !errors.As(err, &ce) || !ce.LapsesAt.IsZero() {
		t.Fatalf("publish of a rebuilt volume elsewhere: %v, want a conflict with a healthy holder", err)
	}
	if ok, err := e.r.NodeExists(e.ctx, "n07"); !ok || err != nil {
		t.Fatalf("NodeExists(n07) = %v, %v", ok, err)
	}
	if got := e.r.metrics.migrationActive; testutilGauge(got) != pairs {
		t.Fatalf("rds_csi_migration_active = %v, want %d", testutilGauge(got), pairs)
	}
}

// A deleted node keeps its claims for the grace period, then loses them; the
// next publish elsewhere succeeds and the PVC says why.
func TestNodeDeletedGracePeriod(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"), list(pv("vol-2", false)))...)
	e.start()

	e.deleteNode("n1")
	res := e.reconcile()
	if !slices.Equal(res.NodesGone, []string{"n1"}) {
		t.Fatalf("NodesGone = %v, want [n1]", res.NodesGone)
	}
	var ce *attachment.ConflictError
	if err := e.att.Publish("vol-1", "n2", attachment.SingleNode, 0); !errors.As(err, &ce) || !ce.LapsesAt.Equal(t0.Add(30*time.Second)) {
		t.Fatalf("publish during grace: %v, want a conflict lapsing at t0+30s", err)
	}
	if err := e.att.Publish("vol-2", "n1", attachment.SingleNode, 0); !errors.Is(err, attachment.ErrNodeGone) {
		t.Fatalf("publish to the deleted node: %v, want ErrNodeGone", err)
	}
	if got := summary(e.rec.take()); !slices.Equal(got, []string{"PersistentVolumeClaim:default/claim-vol-1 Warning AttachmentConflict"}) {
		t.Fatalf("events during grace: %v", got)
	}

	e.clk.Add(30*time.Second - time.Millisecond)
	if res := e.reconcile(); res.StaleCleared != 0 || e.holders("vol-1") != "n1!" {
		t.Fatalf("cleared before the grace period ended: %+v, holders %q", res, e.holders("vol-1"))
	}
	e.clk.Add(time.Millisecond)
	res = e.reconcile()
	if res.StaleCleared != 1 || e.holders("vol-1") != "" {
		t.Fatalf("after grace: %+v, holders %q", res, e.holders("vol-1"))
	}
	evs := e.rec.take()
	if len(evs) == 0 || evs[0].String() != "PersistentVolumeClaim:default/claim-vol-1 Normal StaleAttachmentCleared" ||
		!strings.Contains(evs[0].Message, "claim of node n1 on volume vol-1 lapsed") {
		t.Fatalf("events after grace: %v", evs)
	}
	if err := e.att.Publish("vol-1", "n2", attachment.SingleNode, 0); err != nil {
		t.Fatalf("publish elsewhere after grace: %v", err)
	}
	if got := e.action(actionStaleCleared); got != 1 {
		t.Fatalf("reconcile_total{stale_cleared} = %v, want 1", got)
	}
}

// A kubelet restart: NotReady for 20 s with a 30 s grace. NotReady is not
// gone, so nothing may be cleared, marked or reported.
func TestKubeletRestartIsNotGone(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"), attachedVolume("vol-2", "n1"))...)
	e.start()
	e.run()

	runs := e.runs()
	e.updateNode("n1", notReady(e.clk.Now()))
	e.eventually("the NotReady transition to trigger a run", func() bool { return e.runs() > runs })
	for range 20 {
		e.clk.Add(time.Second)
	}
	e.updateNode("n1", ready(e.clk.Now()))
	runs = e.runs()
	e.r.Trigger("test")
	e.eventually("a run after the node is back", func() bool { return e.runs() > runs })

	if evs := e.rec.take(); len(evs) != 0 {
		t.Fatalf("a kubelet restart produced %d events: %v", len(evs), summary(evs))
	}
	if e.holders("vol-1") != "n1" || e.holders("vol-2") != "n1" {
		t.Fatalf("holders %q, %q: want n1 healthy", e.holders("vol-1"), e.holders("vol-2"))
	}
	if e.action(actionNodeGone) != 0 || e.action(actionStaleCleared) != 0 {
		t.Fatal("a NotReady node was reported gone")
	}
}

// The out-of-service taint is the operator saying the node is down: grace,
// then clear. Removing it within the grace keeps the claims.
func TestOutOfServiceTaint(t *testing.T) {
	for _, tc := range []struct {
		name        string
		removeAfter time.Duration // 0: never removed
		want        string        // holders after an hour
		wantEvents  []string
	}{
		// Nothing deletes the VolumeAttachment here (no attach-detach
		// controller), so once the claim is gone its finalizer is reported.
		{"cleared after grace", 0, "", []string{
			"PersistentVolumeClaim:default/claim-vol-1 Normal StaleAttachmentCleared",
			"PersistentVolumeClaim:default/claim-vol-1 Warning VolumeAttachmentStuck",
		}},
		{"removed within grace", 10 * time.Second, "n1", []string{"PersistentVolumeClaim:default/claim-vol-1 Normal GracePeriodUsed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
			e.start()
			e.updateNode("n1", outOfServiceTaint(e.clk.Now()))
			if res := e.reconcile(); !slices.Equal(res.NodesGone, []string{"n1"}) {
				t.Fatalf("NodesGone = %v", res.NodesGone)
			}
			if tc.removeAfter > 0 {
				e.clk.Add(tc.removeAfter)
				e.updateNode("n1", untaint)
				if res := e.reconcile(); !slices.Equal(res.NodesBack, []string{"n1"}) {
					t.Fatalf("NodesBack = %v", res.NodesBack)
				}
			}
			e.clk.Add(time.Hour)
			e.reconcile()
			if got := e.holders("vol-1"); got != tc.want {
				t.Fatalf("holders after an hour: %q, want %q", got, tc.want)
			}
			if got := summary(e.rec.take()); !slices.Equal(got, tc.wantEvents) {
				t.Fatalf("events: %v, want %v", got, tc.wantEvents)
			}
		})
	}
}

// After a controller restart the grace period resumes from when the node
// went, not from the restart.
func TestStartupResumesGrace(t *testing.T) {
	for _, tc := range []struct {
		name    string
		node    []runtime.Object // nil: the node was deleted
		cleared bool             // at start-up
		lapses  time.Time        // otherwise
	}{
		{"taint added a minute ago", list(node("n1", outOfServiceTaint(t0.Add(-time.Minute)))), true, time.Time{}},
		{"taint added 10s ago", list(node("n1", outOfServiceTaint(t0.Add(-10*time.Second)))), false, t0.Add(20 * time.Second)},
		{"taint without TimeAdded", list(node("n1", outOfServiceTaint(time.Time{}))), false, t0.Add(30 * time.Second)},
		{"node deleted while down", nil, false, t0.Add(30 * time.Second)},
		{"node being deleted", list(node("n1", func(n *corev1.Node) {
			d := metav1.NewTime(t0.Add(-20 * time.Second))
			n.DeletionTimestamp, n.Finalizers = &d, []string{"example.com/hold"}
		})), false, t0.Add(10 * time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, objs(tc.node, list(node("n2")), attachedVolume("vol-1", "n1"))...)
			if err := e.r.Start(e.ctx); err != nil {
				t.Fatal(err)
			}
			evs := e.rec.take()
			startup := evs[len(evs)-1]
			if startup.String() != "Pod:kube-system/rds-csi-controller-0 Normal StartupReconciliation" {
				t.Fatalf("last start-up event %v", startup)
			}
			if tc.cleared {
				if e.holders("vol-1") != "" || !strings.Contains(startup.Message, "1 nodes gone; 1 stale claims cleared") {
					t.Fatalf("holders %q, start-up event %q: want the lapsed claim cleared at start-up", e.holders("vol-1"), startup.Message)
				}
				return
			}
			hs := e.att.Holders("vol-1")
			if len(hs) != 1 || !hs[0].LapsesAt().Equal(tc.lapses) {
				t.Fatalf("holders %+v, want n1 lapsing at %v", hs, tc.lapses)
			}
			e.clk.Set(tc.lapses)
			if res := e.reconcile(); res.StaleCleared != 1 {
				t.Fatalf("at the lapse: %+v", res)
			}
		})
	}
}

// NotReady costs a node its claims only if the operator opts in, and then
// only after the timeout plus the grace.
func TestNotReadyTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		goneAt  time.Duration // from t0; 0 = never
	}{
		{"default never", 0, 0},
		{"opt-in 2m", 2 * time.Minute, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.NotReadyTimeout = tc.timeout },
				objs(list(node("n1", notReady(t0)), node("n2")), attachedVolume("vol-1", "n1"))...)
			e.start()
			if tc.goneAt == 0 {
				e.clk.Add(24 * time.Hour)
				if res := e.reconcile(); len(res.NodesGone) != 0 || e.holders("vol-1") != "n1" {
					t.Fatalf("NotReady for a day without opt-in: %+v, holders %q", res, e.holders("vol-1"))
				}
				return
			}
			e.clk.Set(t0.Add(tc.goneAt - time.Millisecond))
			if res := e.reconcile(); len(res.NodesGone) != 0 {
				t.Fatalf("gone before the timeout: %+v", res)
			}
			e.clk.Set(t0.Add(tc.goneAt))
			if res := e.reconcile(); !slices.Equal(res.NodesGone, []string{"n1"}) {
				t.Fatalf("not gone at the timeout: %+v", res)
			}
			e.clk.Add(30*time.Second - time.Millisecond)
			if e.reconcile(); e.holders("vol-1") != "n1!" {
				t.Fatalf("cleared before timeout+grace: %q", e.holders("vol-1"))
			}
			e.clk.Add(time.Millisecond)
			if res := e.reconcile(); res.StaleCleared != 1 {
				t.Fatalf("not cleared at timeout+grace: %+v", res)
			}
			// Ready again: back, and publishable.
			e.updateNode("n1", ready(e.clk.Now()))
			if res := e.reconcile(); !slices.Equal(res.NodesBack, []string{"n1"}) {
				t.Fatalf("not back when Ready: %+v", res)
			}
		})
	}
}

// A deleted node that is re-created is back only once it is Ready.
func TestNodeRecreated(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	e.start()
	e.deleteNode("n1")
	e.reconcile()
	e.createNode(node("n1", notReady(e.clk.Now())))
	if res := e.reconcile(); len(res.NodesBack) != 0 || e.holders("vol-1") != "n1!" {
		t.Fatalf("re-created but NotReady: %+v, holders %q", res, e.holders("vol-1"))
	}
	e.clk.Add(5 * time.Second)
	e.updateNode("n1", ready(e.clk.Now()))
	if res := e.reconcile(); !slices.Equal(res.NodesBack, []string{"n1"}) || e.holders("vol-1") != "n1" {
		t.Fatalf("re-created and Ready: %+v, holders %q", res, e.holders("vol-1"))
	}
}

// Two live migrations at once keep their own windows and their own ends.
func TestConcurrentMigrations(t *testing.T) {
	e := newEnv(t, nil,
		node("n1"), node("n2"), node("n3"), node("n4"),
		pv("mig-a", true), va("mig-a", "n1", true, t0.Add(-time.Hour)), va("mig-a", "n2", true, t0.Add(-time.Minute)),
		pv("mig-b", true), va("mig-b", "n3", true, t0.Add(-time.Hour)), va("mig-b", "n4", true, t0.Add(-4*time.Minute)),
	)
	e.start()
	migs := e.att.Migrations()
	if len(migs) != 2 || !migs[0].Deadline.Equal(t0.Add(4*time.Minute)) || !migs[1].Deadline.Equal(t0.Add(time.Minute)) {
		t.Fatalf("migrations %+v", migs)
	}
	if g := testutilGauge(e.r.metrics.migrationActive); g != 2 {
		t.Fatalf("migration_active = %v, want 2", g)
	}

	// mig-a completes: its source detaches.
	e.att.Unpublish("mig-a", "n1")
	e.deleteVA(vaName("mig-a", "n1"))
	if got := summary(e.rec.take()); !slices.Equal(got, []string{
		"PersistentVolumeClaim:default/claim-mig-a Normal VolumeDetached",
		"PersistentVolumeClaim:default/claim-mig-a Normal MigrationCompleted",
	}) {
		t.Fatalf("events on completing mig-a: %v", got)
	}
	// mig-b overruns its window; mig-a is not affected.
	e.clk.Add(time.Minute)
	res := e.reconcile()
	if !slices.Equal(res.OverdueMigrations, []string{"mig-b"}) {
		t.Fatalf("overdue %v, want [mig-b]", res.OverdueMigrations)
	}
	if got := summary(e.rec.take()); !slices.Equal(got, []string{"PersistentVolumeClaim:default/claim-mig-b Warning MigrationTimedOut"}) {
		t.Fatalf("events at mig-b's deadline: %v", got)
	}
	if e.holders("mig-a") != "n2" || e.holders("mig-b") != "n3,n4" {
		t.Fatalf("holders a=%q b=%q", e.holders("mig-a"), e.holders("mig-b"))
	}
	// Reported once, not on every run.
	e.clk.Add(time.Minute)
	e.reconcile()
	if evs := e.rec.take(); len(evs) != 0 {
		t.Fatalf("MigrationTimedOut repeated: %v", summary(evs))
	}
	if c, to := testutilCounter(e.r.metrics.migrations.WithLabelValues(resultCompleted)), testutilCounter(e.r.metrics.migrations.WithLabelValues(resultTimedOut)); c != 1 || to != 1 {
		t.Fatalf("migrations_total completed=%v timed_out=%v, want 1 and 1", c, to)
	}
	if g := testutilGauge(e.r.metrics.migrationActive); g != 1 {
		t.Fatalf("migration_active = %v, want 1", g)
	}
}

// API errors postpone decisions; they never clear a claim.
func TestAPIErrorsNeverClear(t *testing.T) {
	all := func(k8stesting.Action) bool { return true }
	for _, tc := range []struct {
		name string
		fail func(k8stesting.Action) bool
	}{
		{"node GET fails", func(a k8stesting.Action) bool { return a.GetVerb() == "get" && a.GetResource().Resource == "nodes" }},
		{"VolumeAttachment GET fails", func(a k8stesting.Action) bool {
			return a.GetVerb() == "get" && a.GetResource().Resource == "volumeattachments"
		}},
		{"lists fail: caches keep serving, GETs still confirm", func(a k8stesting.Action) bool { return a.GetVerb() == "list" }},
		{"everything fails", all},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
			e.start()
			// vol-2's claim has no VolumeAttachment, and n1 disappears
			// from the cache: both would be cleared if the API confirmed.
			if err := e.att.Publish("vol-2", "n2", attachment.SingleNode, 0); err != nil {
				t.Fatal(err)
			}
			e.deleteNode("n1")
			e.failWhen(tc.fail)
			e.clk.Add(time.Hour)
			res := e.reconcile()
			e.clk.Add(time.Hour)
			res2 := e.reconcile()

			wantErr := !strings.HasPrefix(tc.name, "lists fail")
			if (res.Err != nil) != wantErr || (res2.Err != nil) != wantErr {
				t.Fatalf("Err = %v / %v, want error: %v", res.Err, res2.Err, wantErr)
			}
			wantCount := 0.0
			if wantErr {
				wantCount = 2
			}
			if got := testutilCounter(e.r.metrics.reconcileErrors.WithLabelValues("reconcile")); got != wantCount {
				t.Fatalf("rds_csi_attachment_reconcile_errors_total{operation=\"reconcile\"} = %v, want %v", got, wantCount)
			}
			gone := tc.name == "VolumeAttachment GET fails" || strings.HasPrefix(tc.name, "lists fail")
			wantVol1 := "n1"
			if gone {
				// The node GET confirmed the deletion: grace, then clear,
				// which is not an API error's doing.
				wantVol1 = ""
			}
			if e.holders("vol-1") != wantVol1 {
				t.Fatalf("vol-1 held by %q, want %q", e.holders("vol-1"), wantVol1)
			}
			wantVol2 := "n2"
			if tc.name == "node GET fails" || strings.HasPrefix(tc.name, "lists fail") {
				wantVol2 = "" // the VolumeAttachment GET said NotFound
			}
			if e.holders("vol-2") != wantVol2 {
				t.Fatalf("vol-2 held by %q, want %q", e.holders("vol-2"), wantVol2)
			}
		})
	}
}

// With the API unreachable, Start gives up after CacheSyncTimeout on the
// clock; the reconciler refuses to decide until Run's retry rebuilds.
func TestStartUnreachableAPI(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CacheSyncTimeout = 30 * time.Second },
		objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	var down = func(a k8stesting.Action) bool { return a.GetVerb() == "list" || a.GetVerb() == "watch" }
	e.failWhen(down)
	started := make(chan error, 1)
	go func() { started <- e.r.Start(e.ctx) }()
	var err error
	e.eventually("Start to time out on the mock clock", func() bool {
		select {
		case err = <-started:
			return true
		default:
			e.clk.Add(time.Second)
			return false
		}
	})
	if !errors.Is(err, ErrNotReady) || e.r.Ready() {
		t.Fatalf("Start = %v, Ready = %v; want ErrNotReady and not Ready", err, e.r.Ready())
	}
	if _, err := e.r.NodeExists(e.ctx, "n1"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("NodeExists while degraded: %v", err)
	}
	if res := e.r.ReconcileOnce(e.ctx); res.Skipped == "" {
		t.Fatalf("reconciled while degraded: %+v", res)
	}

	e.run()
	e.fail.Store(nil)
	e.eventually("Run's retry to rebuild", e.r.Ready)
	if e.holders("vol-1") != "n1" {
		t.Fatalf("after the rebuild vol-1 is held by %q", e.holders("vol-1"))
	}
	e.eventually("the start-up event", func() bool {
		return slices.ContainsFunc(e.rec.take(), func(r recorded) bool { return r.Reason == "StartupReconciliation" })
	})
}

// Triggers coalesce: 100 of them during a run cause one more run, not 100,
// and never a parallel one.
func TestTriggersCoalesce(t *testing.T) {
	e := newEnv(t, nil, node("n1"))
	e.start()
	entered, release := make(chan struct{}), make(chan struct{})
	var first = true
	// The run confirms with the API that "ghost" is deleted; the first
	// such GET blocks, holding the run in progress.
	e.failWhen(func(a k8stesting.Action) bool {
		if g, ok := a.(k8stesting.GetAction); ok && a.GetResource().Resource == "nodes" && g.GetName() == "ghost" && first {
			first = false
			close(entered)
			<-release
		}
		return false
	})
	if err := e.att.Publish("vol-x", "ghost", attachment.SingleNode, 0); err != nil {
		t.Fatal(err)
	}
	runs := e.runs()
	e.run()
	e.r.Trigger("first")
	<-entered
	for i := range 100 {
		e.r.Trigger(fmt.Sprintf("burst-%d", i%7))
	}
	close(release)
	e.eventually("the extra run", func() bool { return e.runs() == runs+2 })
	if len(e.r.trigger) != 0 {
		t.Fatal("a third run is pending")
	}
	if got := e.r.takeReasons(); len(got) != 0 {
		t.Fatalf("reasons left over: %v", got)
	}
	if e.runs() != runs+2 {
		t.Fatalf("%v runs, want 2", e.runs()-runs)
	}
}

// Drift between the manager and VolumeAttachments is repaired both ways.
func TestDrift(t *testing.T) {
	detaching := func(v *storagev1.VolumeAttachment) *storagev1.VolumeAttachment {
		d := metav1.NewTime(t0)
		v.DeletionTimestamp = &d
		return v
	}
	for _, tc := range []struct {
		name  string
		setup func(e *env)
		after time.Duration // clock advance before the checked run
		want  map[string]string
		check func(t *testing.T, e *env, res Result)
	}{
		{
			name:  "attached VolumeAttachment without claim is restored",
			setup: func(e *env) { e.createVA(va("vol-2", "n2", true, t0)) },
			want:  map[string]string{"vol-1": "n1", "vol-2": "n2"},
			check: func(t *testing.T, e *env, res Result) {
				if res.ClaimsRestored != 1 || e.action(actionClaimRestored) != 1 {
					t.Fatalf("restored %d (metric %v), want 1", res.ClaimsRestored, e.action(actionClaimRestored))
				}
			},
		},
		{
			name:  "detaching VolumeAttachment is not restored",
			setup: func(e *env) { e.createVA(detaching(va("vol-2", "n2", true, t0))) },
			want:  map[string]string{"vol-1": "n1", "vol-2": ""},
		},
		{
			name:  "not yet attached is not restored",
			setup: func(e *env) { e.createVA(va("vol-2", "n2", false, t0)) },
			want:  map[string]string{"vol-1": "n1", "vol-2": ""},
		},
		{
			name: "claim without VolumeAttachment is dropped after an interval",
			setup: func(e *env) {
				if err := e.att.Publish("vol-2", "n2", attachment.SingleNode, 0); err != nil {
					e.t.Fatal(err)
				}
				if res := e.reconcile(); res.ClaimsDropped != 0 {
					e.t.Fatalf("a fresh claim was dropped: %+v", res)
				}
			},
			after: DefaultInterval,
			want:  map[string]string{"vol-1": "n1", "vol-2": ""},
			check: func(t *testing.T, e *env, res Result) {
				if res.ClaimsDropped != 1 || e.action(actionClaimDropped) != 1 {
					t.Fatalf("dropped %d, want 1", res.ClaimsDropped)
				}
			},
		},
		{
			name:  "claim whose VolumeAttachment was deleted by hand is dropped",
			setup: func(e *env) { e.deleteVA(vaName("vol-1", "n1")) },
			want:  map[string]string{"vol-1": ""},
		},
		{
			name: "claim with its VolumeAttachment is kept",
			setup: func(e *env) {
				if err := e.att.Publish("vol-2", "n2", attachment.SingleNode, 0); err != nil {
					e.t.Fatal(err)
				}
				e.createVA(va("vol-2", "n2", true, t0))
			},
			after: time.Hour,
			want:  map[string]string{"vol-1": "n1", "vol-2": "n2"},
		},
		{
			name:  "attached elsewhere while held is reported, once",
			setup: func(e *env) { e.createVA(va("vol-1", "n2", true, t0)) },
			want:  map[string]string{"vol-1": "n1"},
			check: func(t *testing.T, e *env, res Result) {
				if !slices.Equal(res.Conflicts, []string{vaName("vol-1", "n2")}) {
					t.Fatalf("conflicts %v", res.Conflicts)
				}
				if got := summary(e.rec.take()); !slices.Equal(got, []string{"PersistentVolumeClaim:default/claim-vol-1 Warning AttachmentConflict"}) {
					t.Fatalf("events %v", got)
				}
				e.reconcile()
				if evs := e.rec.take(); len(evs) != 0 || e.action(actionClaimConflict) != 1 {
					t.Fatalf("conflict reported again: %v", summary(evs))
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, objs(list(node("n1"), node("n2"), pv("vol-2", false)), attachedVolume("vol-1", "n1"))...)
			e.start()
			tc.setup(e)
			e.clk.Add(tc.after)
			res := e.reconcile()
			for vol, want := range tc.want {
				if got := e.holders(vol); got != want {
					t.Errorf("%s held by %q, want %q", vol, got, want)
				}
			}
			if tc.check != nil {
				tc.check(t, e, res)
			}
		})
	}
}

// A VolumeAttachment of a gone node that still has its finalizer after the
// driver let go is reported, once, and forgotten when it goes.
func TestStuckFinalizerReport(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	e.start()
	e.deleteNode("n1")
	if res := e.reconcile(); len(res.StuckFinalizers) != 0 {
		t.Fatalf("reported during the grace period: %v", res.StuckFinalizers)
	}
	e.clk.Add(30 * time.Second)
	res := e.reconcile()
	name := vaName("vol-1", "n1")
	if !slices.Equal(res.StuckFinalizers, []string{name}) {
		t.Fatalf("stuck %v, want [%s]", res.StuckFinalizers, name)
	}
	evs := e.rec.take()
	if got := summary(evs); !slices.Equal(got, []string{
		"PersistentVolumeClaim:default/claim-vol-1 Normal StaleAttachmentCleared",
		"PersistentVolumeClaim:default/claim-vol-1 Warning VolumeAttachmentStuck",
	}) || !strings.Contains(evs[1].Message, attacherFinalizer) {
		t.Fatalf("events %v", evs)
	}
	e.reconcile()
	if evs := e.rec.take(); len(evs) != 0 || e.action(actionStuckFinalizer) != 1 {
		t.Fatalf("reported again: %v (metric %v)", summary(evs), e.action(actionStuckFinalizer))
	}
	e.deleteVA(name)
	if res := e.reconcile(); len(res.StuckFinalizers) != 0 || len(e.r.stuckReported) != 0 {
		t.Fatalf("still stuck after deletion: %v", res.StuckFinalizers)
	}
	// The deleted node holds nothing and has no attachments: forgotten.
	if e.r.isGone("n1") {
		t.Fatal("deleted node with nothing left is still tracked")
	}
}

// Run acts on a lapse when it happens, through the wake timer, not at the
// next periodic tick.
func TestRunWakesAtLapse(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	e.start()
	e.run()
	e.deleteNode("n1")
	e.eventually("the deletion to start the grace and arm the wake timer", func() bool {
		e.r.wakeMu.Lock()
		defer e.r.wakeMu.Unlock()
		return e.r.wakeAt.Equal(t0.Add(30 * time.Second))
	})
	e.clk.Add(30 * time.Second)
	e.eventually("the claim to be cleared at its lapse", func() bool { return e.holders("vol-1") == "" })
	if e.clk.Now().Sub(t0) >= DefaultInterval {
		t.Fatal("cleared by the periodic tick, not the wake timer")
	}
}

// The same scenario gives the same events in the same order, which the
// scenario runner's byte-for-byte comparison depends on.
func TestDeterministicEvents(t *testing.T) {
	scenario := func() []string {
		var o []runtime.Object
		for i := range 4 {
			o = append(o, node(fmt.Sprintf("n%d", i)))
		}
		for i := range 40 {
			vol := fmt.Sprintf("vol-%02d", 39-i)
			o = append(o, attachedVolume(vol, fmt.Sprintf("n%d", i%2))...)
		}
		e := newEnv(t, nil, o...)
		e.start()
		e.deleteNode("n0")
		e.updateNode("n1", outOfServiceTaint(e.clk.Now()))
		e.reconcile()
		e.clk.Add(time.Minute)
		e.reconcile()
		var out []string
		for _, ev := range e.rec.take() {
			out = append(out, ev.String()+" "+ev.Message)
		}
		return out
	}
	a, b := scenario(), scenario()
	if len(a) != 80 {
		t.Fatalf("%d events, want 80 (cleared + stuck for each of 40 volumes)", len(a))
	}
	if !slices.Equal(a, b) {
		t.Fatalf("two runs differ:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	var cleared []string
	for _, ev := range a {
		if strings.Contains(ev, " StaleAttachmentCleared ") {
			cleared = append(cleared, ev)
		}
	}
	if len(cleared) != 40 || !slices.IsSortedFunc(cleared, func(x, y string) int { return strings.Compare(volumeOf(x), volumeOf(y)) }) {
		t.Fatalf("StaleAttachmentCleared events not one per volume in volume order:\n%s", strings.Join(cleared, "\n"))
	}
}

func volumeOf(s string) string {
	i := strings.Index(s, "claim-")
	return s[i : i+len("claim-vol-00")]
}

func TestNodeExists(t *testing.T) {
	e := newEnv(t, nil, node("n1"))
	if _, err := e.r.NodeExists(context.Background(), "n1"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before Start: %v", err)
	}
	e.start()
	for _, tc := range []struct {
		node string
		want bool
	}{{"n1", true}, {"nope", false}} {
		if got, err := e.r.NodeExists(context.Background(), tc.node); got != tc.want || err != nil {
			t.Errorf("NodeExists(%s) = %v, %v; want %v", tc.node, got, err, tc.want)
		}
	}
}

func TestRDSStateChanged(t *testing.T) {
	e := newEnv(t, nil, node("n1"))
	e.start()
	for _, tc := range []struct {
		connected bool
		want      []string
		trigger   bool
	}{
		{true, nil, false}, // first report, connected: not news
		{false, []string{"Pod:kube-system/rds-csi-controller-0 Warning RDSDisconnected"}, false},
		{false, nil, false}, // repeated
		{true, []string{"Pod:kube-system/rds-csi-controller-0 Normal RDSReconnected"}, true},
		{true, nil, false},
	} {
		e.r.takeReasons()
		e.r.RDSStateChanged(tc.connected, "probe")
		if got := summary(e.rec.take()); !slices.Equal(got, tc.want) {
			t.Errorf("connected=%v: events %v, want %v", tc.connected, got, tc.want)
		}
		if got := slices.Contains(e.r.takeReasons(), "rds-reconnected"); got != tc.trigger {
			t.Errorf("connected=%v: triggered %v, want %v", tc.connected, got, tc.trigger)
		}
	}
}

// Without a Recorder the events go to the API server, on the PVC.
func TestDefaultRecorderWritesEventsOnPVC(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Recorder = nil }, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"))...)
	t.Cleanup(e.r.broadcaster.Shutdown)
	e.start()
	if err := e.att.Publish("vol-1", "n2", attachment.SingleNode, 0); err == nil {
		t.Fatal("publish elsewhere succeeded")
	}
	e.eventually("the event in the API", func() bool {
		evs, err := e.cs.CoreV1().Events("default").List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, ev := range evs.Items {
			if ev.Reason == "AttachmentConflict" && ev.Type == corev1.EventTypeWarning &&
				ev.InvolvedObject.Kind == "PersistentVolumeClaim" && ev.InvolvedObject.Name == "claim-vol-1" {
				return true
			}
		}
		return false
	})
}

// A volume without a PV or claim is logged, not an error, and does not
// stop the decision.
func TestEventWithoutPVC(t *testing.T) {
	e := newEnv(t, nil, node("n1"))
	e.start()
	if err := e.att.Publish("orphan", "n1", attachment.SingleNode, 0); err != nil {
		t.Fatal(err)
	}
	if evs := e.rec.take(); len(evs) != 0 {
		t.Fatalf("events without a PVC: %v", summary(evs))
	}
	if got := testutilCounter(e.r.metrics.attach.WithLabelValues(statusSuccess)); got != 1 {
		t.Fatalf("attach_total{success} = %v", got)
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t, nil)
	for _, o := range []Options{
		{Client: e.cs, Attachments: e.att},
		{DriverName: driverName, Attachments: e.att},
		{DriverName: driverName, Client: e.cs},
		{DriverName: driverName, Client: e.cs, Attachments: e.att, Interval: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	// The same registry twice: the second must say so, not panic.
	if _, err := New(Options{DriverName: driverName, Client: e.cs, Attachments: e.att, Registerer: e.reg, Recorder: e.rec}); err == nil {
		t.Error("registering the metrics twice was accepted")
	}
}

// Reconcile runs alongside publishes and unpublishes without a global lock:
// the race detector checks the sharing, and afterwards every volume still
// obeys the single-holder rule.
func TestConcurrentWithRPCs(t *testing.T) {
	var o []runtime.Object
	for i := range 4 {
		o = append(o, node(fmt.Sprintf("n%d", i)))
	}
	for i := range 20 {
		o = append(o, attachedVolume(fmt.Sprintf("vol-%02d", i), fmt.Sprintf("n%d", i%4))...)
	}
	e := newEnv(t, nil, o...)
	e.start()
	e.run()

	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 300 {
				vol := fmt.Sprintf("vol-%02d", (i*7+w)%20)
				n := fmt.Sprintf("n%d", (i+w)%4)
				if e.att.Publish(vol, n, attachment.SingleNode, 0) == nil && i%3 == 0 {
					e.att.Unpublish(vol, n)
				}
				if i%50 == 0 {
					e.r.Trigger("rpc")
				}
			}
		})
	}
	writers.Go(func() {
		e.updateNode("n3", outOfServiceTaint(e.clk.Now()))
		e.updateNode("n3", untaint)
	})
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-stop:
				return
			default:
				e.r.ReconcileOnce(e.ctx)
			}
		}
	}()
	writers.Wait()
	close(stop)
	<-loopDone
	for _, c := range e.att.Snapshot() {
		if hs := e.att.Holders(c.Volume); len(hs) != 1 {
			t.Fatalf("volume %s has %d holders: %+v", c.Volume, len(hs), hs)
		}
	}
}
