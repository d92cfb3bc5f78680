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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 2: a pod with nodeName node-a makes the attach-detach controller
// create a VolumeAttachment; the external-attacher calls ControllerPublish
// and sets status.attached; the node stages and publishes (loop device, real
// ext4). Data written there is still there after the pod moves to node-b.
func TestAttachPublishAndMove(t *testing.T) {
	e := newTestEnv(t, "attach")
	a, b := e.node("attach-node-a"), e.node("attach-node-b")
	e.pvc("data", "256Mi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	pv := e.waitBound("data", 60*time.Second)

	start := time.Now()
	pod := e.pod("app", a.name, false, nil, "data")
	va := e.waitAttached(pv, a.name, 60*time.Second)
	t.Logf("scenario2: attached to %s %.2fs after the pod was created", a.name, time.Since(start).Seconds())
	if va.Spec.Attacher != driverName || va.Spec.NodeName != a.name || ptrString(va.Spec.Source.PersistentVolumeName) != pv.Name {
		t.Fatalf("unexpected VolumeAttachment spec: %+v", va.Spec)
	}
	if !hasFinalizer(va.Finalizers, "external-attacher/rds-csi-mikrotik-com") {
		t.Errorf("VolumeAttachment finalizers %v: want the external-attacher's", va.Finalizers)
	}
	if va.Status.AttachmentMetadata["filePath"] == "" {
		t.Errorf("publish context %v has no filePath", va.Status.AttachmentMetadata)
	}
	e.waitRunning("app", 60*time.Second)
	t.Logf("scenario2: staged and published on %s %.2fs after the pod was created", a.name, time.Since(start).Seconds())

	// The ADC reports the attachment in the node's status.
	if err := e.waitInNodeStatus(pv, a.name, 10*time.Second); err != nil {
		t.Error(err)
	}

	// A real filesystem on a real block device.
	target := a.targetPath(pod, pv.Name)
	if fs := mountFSType(target); fs != "ext4" {
		t.Fatalf("target %s: filesystem %q, want ext4", target, fs)
	}
	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(target, "payload.bin"), payload)

	// Move: delete the pod (kubelet unmounts), the ADC detaches, and a pod on
	// node-b gets the volume.
	start = time.Now()
	e.deletePod("app", 60*time.Second)
	e.waitDetached(pv, a.name, 60*time.Second)
	t.Logf("scenario2: detached from %s %.2fs after the pod deletion", a.name, time.Since(start).Seconds())
	if devs := loopDevices(e.c.dir); len(devs) != 0 {
		t.Errorf("loop devices still attached after unstage: %v", devs)
	}
	pod = e.pod("app", b.name, false, nil, "data")
	e.waitAttached(pv, b.name, 60*time.Second)
	e.waitRunning("app", 60*time.Second)
	t.Logf("scenario2: moved to %s in %.2fs", b.name, time.Since(start).Seconds())
	got, err := os.ReadFile(filepath.Join(b.targetPath(pod, pv.Name), "payload.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("data written on node-a differs on node-b")
	}

	// Clean up: pod, PVC; the disk goes with it.
	e.deletePod("app", 60*time.Second)
	e.waitDetached(pv, b.name, 60*time.Second)
	e.deletePVCAndWait("data", pv, 60*time.Second)
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func hasFinalizer(fs []string, f string) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}

// mountFSType returns the filesystem type mounted at path ("" if none).
func mountFSType(path string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		if len(f) >= 5 && unescapeMount(f[4]) == path {
			if g := strings.Fields(post); len(g) > 0 {
				return g[0]
			}
		}
	}
	return ""
}

// writeSynced writes a file and syncs it and its directory: what an
// application that cares about its data does.
func writeSynced(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// deletePVCAndWait deletes a PVC and waits until its PV and the disk are gone.
func (e *testEnv) deletePVCAndWait(name string, pv *corev1.PersistentVolume, timeout time.Duration) {
	e.t.Helper()
	if err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx(), name, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if err := waitFor(e.ctx(), timeout, 200*time.Millisecond, "PV "+pv.Name+" deleted", func(ctx context.Context) (bool, error) {
		_, err := e.c.admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return err != nil, nil
	}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := os.Stat(e.backingFile(pv)); err == nil {
		e.t.Errorf("backing file of %s still exists", pv.Name)
	}
}
