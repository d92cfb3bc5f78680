//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/driver/recovery"
)

const (
	// outageAfterFirstFailure: how long RDS stays down once the attach to
	// the surviving node has failed (the attacher then waits 32s).
	outageAfterFirstFailure = 35 * time.Second
	// recoveryTarget: RDS serving again to every displaced volume attached.
	recoveryTarget = 10 * time.Second
)

// Scenario 3, the night this driver was built for: node-a dies (its kubelet
// stops heartbeating, its machine powers off) and RDS crashes at the same
// moment. The node-lifecycle controller marks node-a NotReady; the operator
// (this test) applies the out-of-service taint, as Kubernetes documents for
// a node that is known to be down. From there nothing is manual: the
// taint-eviction controller and the pod GC remove the pod, the attach-detach
// controller detaches at once (out-of-service), the external-attacher's
// ControllerUnpublish completes although RDS is down, and the replacement pod
// on node-b is attached as soon as RDS is back.
func TestNodeFailureWithRDSCrash(t *testing.T) {
	e := newTestEnv(t, "nodefail")
	a, b := e.node("fail-node-a"), e.node("fail-node-b")
	e.pvc("db", "256Mi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	pv := e.waitBound("db", 60*time.Second)
	pod := e.pod("db-0", a.name, false, nil, "db")
	e.waitAttached(pv, a.name, 60*time.Second)
	e.waitRunning("db-0", 60*time.Second)
	payload := make([]byte, 256<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(a.targetPath(pod, pv.Name), "wal.bin"), payload)

	// The failure: node-a and RDS at once.
	t0 := time.Now()
	since := func() float64 { return time.Since(t0).Seconds() }
	a.fail()
	e.c.emu.Kill()
	t.Logf("scenario3: +%.1fs node-a stopped heartbeating and powered off; RDS emulator killed (SIGKILL)", since())

	// Kubernetes notices; the operator's one step is the out-of-service taint,
	// applied as soon as the node is NotReady (the node is known to be down).
	notReady := e.waitNotReadyAndTaint(a.name).Sub(t0).Seconds()
	t.Logf("scenario3: +%.1fs node-lifecycle controller marked %s NotReady; +%.1fs out-of-service taint applied", notReady, a.name, since())

	// The StatefulSet's part: when the old pod is gone, its replacement is
	// created on the surviving node.
	e.waitPodGone("db-0", 90*time.Second)
	t.Logf("scenario3: +%.1fs pod db-0 removed from %s (taint eviction + pod GC)", since(), a.name)
	e.waitDetached(pv, a.name, 60*time.Second)
	detached := since()
	t.Logf("scenario3: +%.1fs VolumeAttachment on %s gone (ControllerUnpublish with RDS down)", detached, a.name)
	pod = e.pod("db-0", b.name, false, nil, "db")

	// The attach on node-b must wait for RDS; see it fail first.
	if err := waitFor(e.ctx(), 60*time.Second, 100*time.Millisecond, "attach to "+b.name+" to fail while RDS is down", func(ctx context.Context) (bool, error) {
		va := e.va(pv, b.name)
		return va != nil && va.Status.AttachError != nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	va := e.va(pv, b.name)
	t.Logf("scenario3: +%.1fs attach to %s refused while RDS is down: %s", since(), b.name, va.Status.AttachError.Message)
	if !strings.Contains(va.Status.AttachError.Message, "Unavailable") && !strings.Contains(va.Status.AttachError.Message, "RDS") {
		t.Errorf("attach error while RDS is down: %q, want UNAVAILABLE", va.Status.AttachError.Message)
	}

	// RDS stays down long enough for the external-attacher's backoff (at its
	// defaults: 1s doubling) to grow past the recovery target: without the
	// controller's retry annotation, its next try would come only after
	// the next step of 32s.
	select {
	case <-time.After(outageAfterFirstFailure):
	case <-e.ctx().Done():
		t.Fatal(e.ctx().Err())
	}

	// RDS comes back.
	if err := e.c.restartEmulator(e.ctx()); err != nil {
		t.Fatal(err)
	}
	back := since()
	t.Logf("scenario3: +%.1fs RDS emulator back", back)
	va = e.waitAttached(pv, b.name, 90*time.Second)
	reattached := since()
	if va.Annotations[recovery.RetryAnnotation] == "" {
		t.Errorf("VolumeAttachment %s attached without the controller's retry annotation %s: the attacher's own backoff "+
			"decided the recovery", va.Name, recovery.RetryAnnotation)
	}
	if err := e.waitInNodeStatus(pv, b.name, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	inStatus := since()
	e.waitRunning("db-0", 60*time.Second)
	running := since()
	t.Logf("scenario3: +%.1fs attached to %s; +%.1fs in its node status (attach-detach controller); +%.1fs staged and published there",
		reattached, b.name, inStatus, running)
	t.Logf("scenario3 RESULT: node failure to reattachment %.1fs, to pod running %.1fs "+
		"(node-monitor-grace-period %s, NotReady at +%.1fs, driver grace period %s, RDS down +0.0s..+%.1fs)",
		reattached, running, nodeMonitorGracePeriod, notReady, driverGracePeriod, back)
	t.Logf("scenario3 RECOVERY: RDS serving again to every displaced volume attached %.1fs (target 10s, external-attacher at its "+
		"default retry); to the attach-detach controller's node status %.1fs (its own backoff, 500ms doubling to 2m2s)",
		reattached-back, inStatus-back)
	if d := reattached - back; d > recoveryTarget.Seconds() {
		t.Errorf("RDS serving again to the volume attached took %.1fs, want at most %v", d, recoveryTarget)
	}

	got, err := os.ReadFile(filepath.Join(b.targetPath(pod, pv.Name), "wal.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("synced data written on node-a is not what node-b reads")
	}
	// No VolumeAttachment is left behind for the dead node.
	vas, err := e.c.admin.StorageV1().VolumeAttachments().List(e.ctx(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vas.Items {
		if v.Spec.NodeName == a.name {
			t.Errorf("VolumeAttachment %s still on dead node %s (finalizers %v)", v.Name, a.name, v.Finalizers)
		}
	}

	// Clean up; the dead node is deleted as its cloud provider would.
	e.deletePod("db-0", 60*time.Second)
	e.waitDetached(pv, b.name, 60*time.Second)
	e.deletePVCAndWait("db", pv, 60*time.Second)
	if err := e.c.admin.CoreV1().Nodes().Delete(e.ctx(), a.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}
