//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	failoverVolumes     = 200
	failoverVolsPerPod  = 10
	failoverPodsOnFaily = 3 // of the 20 pods, these many run on the node that fails
)

// Scenario 4: leader failover and a full controller restart with 200
// attached volumes. After each, the new leader's attachment state must be
// rebuilt from the real VolumeAttachments: a rogue VolumeAttachment that
// would hand an attached volume to a second node is refused naming the
// holder, and the external-attacher's ListVolumes reconcile (every 5s) finds
// every attachment still published. A node that fails while the controller
// is down keeps no VolumeAttachment with a finalizer.
func TestControllerFailoverWith200Volumes(t *testing.T) {
	e := newTestEnv(t, "failover")
	healthy, failing, spare := e.node("fo-node-c"), e.node("fo-node-d"), e.node("fo-node-e")
	ctx := e.ctx()

	start := time.Now()
	for i := 0; i < failoverVolumes; i++ {
		e.pvc(fmt.Sprintf("vol-%03d", i), "64Mi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	}
	if err := waitFor(ctx, 120*time.Second, 200*time.Millisecond, "all PVCs bound", func(ctx context.Context) (bool, error) {
		list, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		bound := 0
		for _, p := range list.Items {
			if p.Status.Phase == corev1.ClaimBound {
				bound++
			}
		}
		return bound == failoverVolumes, fmt.Errorf("%d of %d bound", bound, failoverVolumes)
	}); err != nil {
		t.Fatal(err)
	}
	pvs := make([]*corev1.PersistentVolume, failoverVolumes)
	for i := range pvs {
		pvs[i] = e.waitBound(fmt.Sprintf("vol-%03d", i), 10*time.Second)
	}
	t.Logf("scenario4: %d PVCs provisioned and bound in %.1fs", failoverVolumes, time.Since(start).Seconds())

	start = time.Now()
	pods := failoverVolumes / failoverVolsPerPod
	nodeOf := func(p int) *node {
		if p < failoverPodsOnFaily {
			return failing
		}
		return healthy
	}
	for p := 0; p < pods; p++ {
		var claims []string
		for v := 0; v < failoverVolsPerPod; v++ {
			claims = append(claims, fmt.Sprintf("vol-%03d", p*failoverVolsPerPod+v))
		}
		e.pod(fmt.Sprintf("app-%02d", p), nodeOf(p).name, false, map[string]string{noMountAnnotation: "true"}, claims...)
	}
	for p := 0; p < pods; p++ {
		e.waitRunning(fmt.Sprintf("app-%02d", p), 180*time.Second)
	}
	e.expectAttached(pvs, func(i int) string { return nodeOf(i / failoverVolsPerPod).name })
	t.Logf("scenario4: %d volumes attached through the attach-detach controller in %.1fs", failoverVolumes, time.Since(start).Seconds())

	// 1. Leader failover: the leader's Pod dies (SIGKILL, all containers) and
	// stays away, as when its node dies; at the same moment a worker node
	// with 30 attached volumes fails.
	old, err := e.c.leader(ctx)
	if err != nil || old == "" {
		t.Fatalf("no leader: %q %v", old, err)
	}
	start = time.Now()
	dead := e.c.replicaNamed(old)
	dead.down()
	failing.fail()
	var next string
	if err := waitFor(ctx, 60*time.Second, 100*time.Millisecond, "a new leader", func(ctx context.Context) (bool, error) {
		next, err = e.c.leader(ctx)
		return err == nil && next != "" && next != old, err
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scenario4: leader %s killed; %s leads after %.1fs (lease %s)", old, next, time.Since(start).Seconds(), controllerLease)
	e.expectStartupReconciliation(next, start)
	e.expectRogueRefused(pvs[failoverVolumes-1], healthy.name, spare.name)
	t.Logf("scenario4: failover to a serving leader with rebuilt state took %.1fs", time.Since(start).Seconds())
	if err := dead.up(); err != nil { // the old leader's Pod comes back, as a standby
		t.Fatal(err)
	}

	// 2. The failed node is NotReady and tainted out-of-service; while its
	// pods are being removed and its volumes detached, the whole controller
	// restarts (both replicas at once).
	e.waitNotReadyAndTaint(failing.name)
	restart := time.Now()
	for _, r := range e.c.replicas {
		r.kill()
	}
	if err := waitFor(ctx, 120*time.Second, 200*time.Millisecond, "no VolumeAttachment on "+failing.name, func(ctx context.Context) (bool, error) {
		vas, err := e.c.admin.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, v := range vas.Items {
			if v.Spec.NodeName == failing.name {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scenario4: %d VolumeAttachments of failed %s released %.1fs after the failure, across a full controller restart",
		failoverPodsOnFaily*failoverVolsPerPod, failing.name, time.Since(start).Seconds())
	lead, err := e.c.leader(ctx)
	if err != nil || lead == "" {
		t.Fatalf("no leader after the restart: %q %v", lead, err)
	}
	e.expectStartupReconciliation(lead, restart)
	e.expectRogueRefused(pvs[failoverVolumes-2], healthy.name, spare.name)
	onHealthy := pvs[failoverPodsOnFaily*failoverVolsPerPod:]
	e.expectStillPublished(onHealthy, func(int) string { return healthy.name })

	// Clean up in bulk: pods, then claims.
	start = time.Now()
	if err := e.c.admin.CoreV1().Pods(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 120*time.Second, 500*time.Millisecond, "every VolumeAttachment of the scenario gone", func(ctx context.Context) (bool, error) {
		vas, err := e.c.admin.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, v := range vas.Items {
			if strings.HasPrefix(v.Spec.NodeName, "fo-") {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 120*time.Second, 500*time.Millisecond, "every PV of the scenario deleted", func(ctx context.Context) (bool, error) {
		list, err := e.c.admin.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, pv := range list.Items {
			if pv.Spec.StorageClassName == e.sc {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.c.admin.CoreV1().Nodes().Delete(ctx, failing.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	t.Logf("scenario4: clean-up (%d pods, %d detaches, %d deletes) took %.1fs", pods-failoverPodsOnFaily,
		failoverVolumes-failoverPodsOnFaily*failoverVolsPerPod, failoverVolumes, time.Since(start).Seconds())
}

// expectAttached checks every PV's VolumeAttachment on its node is attached.
func (e *testEnv) expectAttached(pvs []*corev1.PersistentVolume, nodeFor func(int) string) {
	e.t.Helper()
	if err := waitFor(e.ctx(), 120*time.Second, 500*time.Millisecond, "all volumes attached", func(ctx context.Context) (bool, error) {
		byName, err := e.vaMap(ctx)
		if err != nil {
			return false, err
		}
		for i, pv := range pvs {
			va, ok := byName[vaName(pv.Spec.CSI.VolumeHandle, nodeFor(i))]
			if !ok || !va.Status.Attached {
				return false, fmt.Errorf("%s on %s not attached", pv.Name, nodeFor(i))
			}
		}
		return true, nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) vaMap(ctx context.Context) (map[string]storagev1.VolumeAttachment, error) {
	vas, err := e.c.admin.StorageV1().VolumeAttachments().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := map[string]storagev1.VolumeAttachment{}
	for _, v := range vas.Items {
		m[v.Name] = v
	}
	return m, nil
}

// expectStillPublished waits past an external-attacher ListVolumes reconcile
// (every 5s) and checks that no attachment was marked detached: the new
// leader reported every volume published where it was.
func (e *testEnv) expectStillPublished(pvs []*corev1.PersistentVolume, nodeFor func(int) string) {
	e.t.Helper()
	deadline := time.Now().Add(6 * time.Second)
	for time.Now().Before(deadline) {
		byName, err := e.vaMap(e.ctx())
		if err != nil {
			e.t.Fatal(err)
		}
		for i, pv := range pvs {
			va, ok := byName[vaName(pv.Spec.CSI.VolumeHandle, nodeFor(i))]
			if !ok || !va.Status.Attached || va.DeletionTimestamp != nil {
				e.t.Fatalf("%s on %s: attachment lost after the controller came back (present %v)", pv.Name, nodeFor(i), ok)
			}
		}
		time.Sleep(time.Second)
	}
}

// expectRogueRefused creates a VolumeAttachment handing pv (attached to
// holder) to other, as a buggy or racing client might, and expects the new
// leader to refuse it naming the holder: it knows the attachment although it
// never saw the ControllerPublish that made it.
func (e *testEnv) expectRogueRefused(pv *corev1.PersistentVolume, holder, other string) {
	e.t.Helper()
	ctx := e.ctx()
	name := "e2e-rogue-" + pv.Name
	_, err := e.c.admin.StorageV1().VolumeAttachments().Create(ctx, &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: driverName, NodeName: other,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv.Name}},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var msg string
	if err := waitFor(ctx, 60*time.Second, 100*time.Millisecond, "the rogue VolumeAttachment refused", func(ctx context.Context) (bool, error) {
		va, err := e.c.admin.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if va.Status.Attached {
			return false, fmt.Errorf("%s attached to %s although %s holds it: the new leader lost the attachment state", pv.Name, other, holder)
		}
		if va.Status.AttachError != nil {
			msg = va.Status.AttachError.Message
			// Refusals for other reasons (not ready yet) are retried.
			return strings.Contains(msg, holder), nil
		}
		return false, nil
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("scenario4: rogue attachment of %s to %s refused: %s", pv.Name, other, msg)
	if err := e.c.admin.StorageV1().VolumeAttachments().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := waitFor(ctx, 60*time.Second, 100*time.Millisecond, "the rogue VolumeAttachment gone", func(ctx context.Context) (bool, error) {
		_, err := e.c.admin.StorageV1().VolumeAttachments().Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// expectStartupReconciliation waits for the StartupReconciliation event the
// leader posts on its Pod after rebuilding its state.
func (e *testEnv) expectStartupReconciliation(leader string, after time.Time) {
	e.t.Helper()
	var msg string
	if err := waitFor(e.ctx(), 30*time.Second, 200*time.Millisecond, "StartupReconciliation event of "+leader, func(ctx context.Context) (bool, error) {
		evs, err := e.c.admin.CoreV1().Events(csiNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			ts := ev.LastTimestamp.Time
			if ts.IsZero() {
				ts = ev.EventTime.Time
			}
			if ev.Reason == "StartupReconciliation" && ev.InvolvedObject.Name == leader && !ts.Before(after.Truncate(time.Second)) {
				msg = ev.Message
				return true, nil
			}
		}
		return false, nil
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Logf("scenario4: %s: StartupReconciliation: %s", leader, msg)
}

var taintMu sync.Mutex

// waitNotReadyAndTaint waits for the node-lifecycle controller to mark the
// node NotReady and applies the out-of-service taint.
func (e *testEnv) waitNotReadyAndTaint(name string) (notReadyAt time.Time) {
	e.t.Helper()
	taintMu.Lock()
	defer taintMu.Unlock()
	e.waitNotReady(name, nodeMonitorGracePeriod+30*time.Second)
	notReadyAt = time.Now()
	e.taintOutOfService(name)
	return notReadyAt
}
