//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Scenario 1: a PVC with Immediate binding is provisioned by the real
// external-provisioner through CreateVolume into a disk on the emulator and a
// bound PV; deleting the PVC removes the PV, the disk and its backing file.
func TestProvisionAndDelete(t *testing.T) {
	e := newTestEnv(t, "provision")
	start := time.Now()
	e.pvc("data", "1Gi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	pv := e.waitBound("data", 60*time.Second)
	t.Logf("scenario1: PVC bound to %s in %.2fs", pv.Name, time.Since(start).Seconds())

	if pv.Spec.CSI == nil || pv.Spec.CSI.Driver != driverName {
		t.Fatalf("PV %s is not an %s volume: %+v", pv.Name, driverName, pv.Spec.PersistentVolumeSource)
	}
	handle := pv.Spec.CSI.VolumeHandle
	if !strings.HasPrefix(handle, "pvc-") {
		t.Errorf("volume handle %q: want pvc-<uid>", handle)
	}
	if got := pv.Spec.Capacity.Storage().String(); got != "1Gi" {
		t.Errorf("PV capacity %s, want 1Gi", got)
	}
	// The disk: RouterOS knows it, and its sparse backing file exists with the
	// requested size.
	out := e.routeros("/disk print detail where slot=" + handle)
	if !strings.Contains(out, `slot="`+handle+`"`) || !strings.Contains(out, "nvme-tcp-export=yes") {
		t.Fatalf("emulator has no exported disk %s:\n%s", handle, out)
	}
	file := e.backingFile(pv)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("backing file: %v", err)
	}
	if st.Size() != 1<<30 {
		t.Errorf("backing file %s is %d bytes, want %d", file, st.Size(), 1<<30)
	}

	// Delete the PVC: the PV (reclaim policy Delete) goes, and with it the disk
	// and the file.
	start = time.Now()
	if err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx(), "data", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(e.ctx(), 60*time.Second, 200*time.Millisecond, "PV "+pv.Name+" deleted", func(ctx context.Context) (bool, error) {
		_, err := e.c.admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scenario1: PV deleted %.2fs after the PVC", time.Since(start).Seconds())
	if out := e.routeros("/disk print detail where slot=" + handle); strings.Contains(out, `slot="`+handle+`"`) {
		t.Errorf("disk %s still on the emulator:\n%s", handle, out)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("backing file %s still exists (err=%v)", file, err)
	}
	if out := e.routeros("/file print detail"); strings.Contains(out, handle) {
		t.Errorf("/file still lists %s:\n%s", handle, out)
	}
}
