//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"
)

var (
	vsClassGVR = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
	vsGVR      = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
)

// Beyond the six: the other two sidecars. A VolumeSnapshot goes
// through the snapshot-controller and csi-snapshotter to CreateSnapshot (an
// unexported copy on RDS); a PVC restored from it through the provisioner
// holds the data; growing that PVC goes through csi-resizer to
// ControllerExpandVolume, then NodeExpandVolume (the kubelet's part) grows
// the mounted ext4 online. Deleting the VolumeSnapshot removes the copy.
func TestSnapshotRestoreAndExpand(t *testing.T) {
	e := newTestEnv(t, "snapshot")
	if e.c.bins.snapshotter == "" || e.c.bins.snapshotController == "" {
		t.Fatal("csi-snapshotter or snapshot-controller missing: hack/e2e/tools.sh builds them (E2E_CSI_SNAPSHOTTER, E2E_SNAPSHOT_CONTROLLER)")
	}
	ctx := e.ctx()
	dyn, err := dynamic.NewForConfig(e.c.restCfg)
	if err != nil {
		t.Fatal(err)
	}
	n := e.node("snap-node-a")
	e.pvc("src", "256Mi", corev1.PersistentVolumeFilesystem, corev1.ReadWriteOnce)
	srcPV := e.waitBound("src", 60*time.Second)
	writer := e.pod("writer", n.name, false, nil, "src")
	e.waitRunning(writer.Name, 60*time.Second)
	payload := make([]byte, 512<<10)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(n.targetPath(writer, srcPV.Name), "data.bin"), payload)

	// Snapshot.
	class := "rds-" + e.ns
	if _, err := dyn.Resource(vsClassGVR).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotClass",
		"metadata": map[string]any{"name": class}, "driver": driverName, "deletionPolicy": "Delete",
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := dyn.Resource(vsGVR).Namespace(e.ns).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "snap"},
		"spec": map[string]any{"volumeSnapshotClassName": class,
			"source": map[string]any{"persistentVolumeClaimName": "src"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var handle string
	if err := waitFor(ctx, 60*time.Second, 200*time.Millisecond, "VolumeSnapshot ready", func(ctx context.Context) (bool, error) {
		vs, err := dyn.Resource(vsGVR).Namespace(e.ns).Get(ctx, "snap", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if msg, ok, _ := unstructured.NestedString(vs.Object, "status", "error", "message"); ok {
			return false, fmt.Errorf("snapshot error: %s", msg)
		}
		ready, _, _ := unstructured.NestedBool(vs.Object, "status", "readyToUse")
		content, _, _ := unstructured.NestedString(vs.Object, "status", "boundVolumeSnapshotContentName")
		if ready {
			vsc, err := dyn.Resource(schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}).
				Get(ctx, content, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			handle, _, _ = unstructured.NestedString(vsc.Object, "status", "snapshotHandle")
		}
		return ready && handle != "", nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("scenario7: snapshot %s ready in %.2fs", handle, time.Since(start).Seconds())
	if out := e.routeros("/disk print detail"); !strings.Contains(out, "snap-") {
		t.Errorf("no snapshot disk on the emulator:\n%s", out)
	}

	// Restore into a new PVC and read the data there.
	start = time.Now()
	if _, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "restored"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(e.sc),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("256Mi")}},
			DataSource:       &corev1.TypedLocalObjectReference{APIGroup: ptr.To("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "snap"},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pv := e.waitBound("restored", 60*time.Second)
	reader := e.pod("reader", n.name, false, nil, "restored")
	e.waitRunning(reader.Name, 60*time.Second)
	t.Logf("scenario7: restored PVC bound and mounted in %.2fs", time.Since(start).Seconds())
	target := n.targetPath(reader, pv.Name)
	got, err := os.ReadFile(filepath.Join(target, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("the restored volume does not hold the snapshot's data")
	}

	// Expand the restored PVC while it is mounted.
	before := fsSize(t, target)
	start = time.Now()
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"512Mi"}}}}`)
	if _, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Patch(ctx, "restored", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 60*time.Second, 200*time.Millisecond, "PV grown by csi-resizer", func(ctx context.Context) (bool, error) {
		p, err := e.c.admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return p.Spec.Capacity.Storage().Cmp(resource.MustParse("512Mi")) >= 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(e.backingFile(pv)); err != nil || st.Size() != 512<<20 {
		t.Errorf("backing file after ControllerExpandVolume: %v, size %d, want %d", err, sizeOf(st), 512<<20)
	}
	// The kubelet's part: NodeExpandVolume on the mounted volume.
	expand := func(ctx context.Context) error {
		_, err := n.csi.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{
			VolumeId: pv.Spec.CSI.VolumeHandle, VolumePath: target, StagingTargetPath: n.stagingPath(&podVol{pv: pv, handle: pv.Spec.CSI.VolumeHandle}),
			CapacityRange: &csi.CapacityRange{RequiredBytes: 512 << 20}, VolumeCapability: capability(pv),
		})
		return err
	}
	if !hasCapability(unix.CAP_SYS_RESOURCE) {
		// ext4's online resize needs CAP_SYS_RESOURCE, which this machine's
		// sandbox withholds even from root: check everything up to the grow.
		err := expand(ctx)
		if err == nil || !strings.Contains(err.Error(), "Permission denied to resize filesystem") {
			t.Fatalf("NodeExpandVolume without CAP_SYS_RESOURCE: %v, want resize2fs's permission error", err)
		}
		dev := mountSource(target)
		if size := blockSize(t, dev); size != 512<<20 {
			t.Errorf("device %s is %d bytes after the rescan, want %d", dev, size, 512<<20)
		}
		t.Logf("scenario7: expanded in %.2fs: PV and device %s at 512 MiB; online ext4 grow not possible here (no CAP_SYS_RESOURCE): %v",
			time.Since(start).Seconds(), dev, err)
	} else {
		if err := retryCSI(ctx, "NodeExpandVolume", expand); err != nil {
			t.Fatal(err)
		}
		after := fsSize(t, target)
		t.Logf("scenario7: expanded online in %.2fs: filesystem %d → %d MiB", time.Since(start).Seconds(), before>>20, after>>20)
		if after <= before || after < 400<<20 {
			t.Errorf("filesystem did not grow: %d → %d bytes", before, after)
		}
	}
	if got, err := os.ReadFile(filepath.Join(target, "data.bin")); err != nil || !bytes.Equal(got, payload) {
		t.Errorf("data changed by the expansion (err %v)", err)
	}

	// Clean up: pods, claims, and the snapshot with its copy on RDS.
	e.deletePod(writer.Name, 60*time.Second)
	e.deletePod(reader.Name, 60*time.Second)
	e.waitDetached(srcPV, n.name, 60*time.Second)
	e.waitDetached(pv, n.name, 60*time.Second)
	e.deletePVCAndWait("restored", pv, 60*time.Second)
	e.deletePVCAndWait("src", srcPV, 60*time.Second)
	if err := dyn.Resource(vsGVR).Namespace(e.ns).Delete(ctx, "snap", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(ctx, 60*time.Second, 200*time.Millisecond, "snapshot deleted on RDS", func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(vsGVR).Namespace(e.ns).Get(ctx, "snap", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, err
		}
		out, err := e.c.routeros("/disk print detail")
		return err == nil && !strings.Contains(out, "snap-"), nil
	}); err != nil {
		t.Fatal(err)
	}
	_ = dyn.Resource(vsClassGVR).Delete(ctx, class, metav1.DeleteOptions{})
}

func fsSize(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

// hasCapability reports whether this process has capability c in its
// effective set.
func hasCapability(c int) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			var mask uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &mask); err != nil {
				return false
			}
			return mask&(1<<uint(c)) != 0
		}
	}
	return false
}

// mountSource is the device mounted at path ("" if none).
func mountSource(path string) string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) >= 5 && unescapeMount(f[4]) == path && len(g) >= 2 {
			return g[1]
		}
	}
	return ""
}

// blockSize is a block device's size in bytes.
func blockSize(t *testing.T, dev string) int64 {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var size uint64
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); errno != 0 {
		t.Fatalf("BLKGETSIZE64 %s: %v", dev, errno)
	}
	return int64(size)
}
