//go:build e2ekubelet

package e2e

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Generous: a kubelet on a loaded 2-core machine is slow, and a pod's volume
// waits for attach (attach-detach controller, external-attacher, RouterOS).
const lanePodTimeout = 6 * time.Minute

const (
	fsMode    = corev1.PersistentVolumeFilesystem
	blockMode = corev1.PersistentVolumeBlock
	rwo       = corev1.ReadWriteOnce
)

// writeScript writes 16 MiB of random data, prints its checksum and keeps the
// pod running (so that its mounts can be looked at).
const writeFS = `dd if=/dev/urandom of=/data/f bs=1M count=16 2>/dev/null && sync && sha256sum /data/f | awk '{print "sum="$1}'; sleep 3600`
const readFS = `sha256sum /data/f | awk '{print "sum="$1}'`
const writeBlock = `dd if=/dev/urandom of=/dev/xvda bs=1M count=16 conv=fsync 2>/dev/null && dd if=/dev/xvda bs=1M count=16 2>/dev/null | sha256sum | awk '{print "sum="$1}'; sleep 3600`
const readBlock = `dd if=/dev/xvda bs=1M count=16 2>/dev/null | sha256sum | awk '{print "sum="$1}'`

// waitLog waits until the pod's log has key=value and returns the value.
func (e *testEnv) waitLog(p *corev1.Pod, key string, timeout time.Duration) string {
	e.t.Helper()
	var v string
	if err := waitFor(e.ctx(), timeout, time.Second, key+"= in the log of "+p.Name, func(context.Context) (bool, error) {
		v = e.logValue(p, key)
		return v != "", nil
	}); err != nil {
		e.describe(p.Name)
		e.t.Fatal(err)
	}
	return v
}

// pluginCalls counts the node plugin's log lines with msg for the volume.
func pluginCalls(ln *laneNode, msg, handle string) int {
	b, err := os.ReadFile(ln.plugin.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"`+msg+`"`) && strings.Contains(l, handle) {
			n++
		}
	}
	return n
}

// pluginLines returns the node plugin's log lines with msg for the volume.
func pluginLines(ln *laneNode, msg, handle string) []string {
	b, _ := os.ReadFile(ln.plugin.logPath)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"`+msg+`"`) && strings.Contains(l, handle) {
			out = append(out, l)
		}
	}
	return out
}

// mountsOf lists the node's mounts whose path mentions the PV or the hash of
// its handle.
func mountsOf(ln *laneNode, pv *corev1.PersistentVolume) []string {
	hash := fmt.Sprintf("%x", sha256.Sum256([]byte(pv.Spec.CSI.VolumeHandle)))
	var out []string
	for _, m := range mountsUnder(ln.root) {
		if strings.Contains(m, pv.Name) || strings.Contains(m, hash) {
			out = append(out, strings.TrimPrefix(m, ln.root+"/"))
		}
	}
	return out
}

// playedPaths are the paths the played kubelet (kubelet_test.go) uses for pv
// in pod uid, relative to the kubelet's root.
func playedPaths(pv *corev1.PersistentVolume, uid types.UID, block bool) (staging, target string) {
	if block {
		return filepath.Join("plugins/kubernetes.io/csi/volumeDevices/staging", pv.Name),
			filepath.Join("plugins/kubernetes.io/csi/volumeDevices/publish", pv.Name, string(uid))
	}
	return filepath.Join("plugins/kubernetes.io/csi", driverName, fmt.Sprintf("%x", sha256.Sum256([]byte(pv.Spec.CSI.VolumeHandle))), "globalmount"),
		filepath.Join("pods", string(uid), "volumes/kubernetes.io~csi", pv.Name, "mount")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// moveBetweenNodes: a pod on node 1 writes and checksums, is deleted, a pod on
// node 2 reads the same checksum; the real kubelet's paths are compared with
// the played one's.
func moveBetweenNodes(t *testing.T, name string, mode corev1.PersistentVolumeMode, write, read string) {
	nodes := lane(t)
	e := newTestEnv(t, name)
	block := mode == blockMode
	e.pvc("data", "64Mi", mode, rwo)
	pv := e.waitBound("data", 3*time.Minute)

	start := time.Now()
	w := e.createPod(lanePod("writer", nodes[0].name, "data", block, write))
	e.waitPhase(w.Name, corev1.PodRunning, lanePodTimeout)
	sum := e.waitLog(w, "sum", lanePodTimeout)
	t.Logf("writer on %s: sum %s after %.1fs", nodes[0].name, sum, time.Since(start).Seconds())

	// What the real kubelet asked for, from the mount table and the plugin's log.
	mounts := mountsOf(nodes[0], pv)
	t.Logf("real kubelet's mounts of %s on %s (relative to its root): %q", pv.Name, nodes[0].name, mounts)
	for _, msg := range []string{"Volume staged", "Volume published"} {
		for _, l := range pluginLines(nodes[0], msg, pv.Spec.CSI.VolumeHandle) {
			t.Logf("node plugin: %s", l)
		}
	}
	staging, target := playedPaths(pv, w.UID, block)
	if !block && !contains(mounts, staging) {
		t.Errorf("the played kubelet stages at %s; the real one's mounts are %q", staging, mounts)
	}
	if !contains(mounts, target) {
		t.Errorf("the played kubelet publishes at %s; the real one's mounts are %q", target, mounts)
	}
	if block {
		// NodeStage of a block volume mounts nothing; the plugin logs the
		// device only. The staging path is the directory the kubelet made.
		if _, err := os.Stat(filepath.Join(nodes[0].root, staging)); err != nil {
			t.Errorf("the played kubelet stages a block volume at %s: %v", staging, err)
		}
	}

	start = time.Now()
	e.deletePod(w.Name, lanePodTimeout)
	t.Logf("writer gone after %.1fs", time.Since(start).Seconds())
	if m := mountsOf(nodes[0], pv); len(m) != 0 {
		t.Errorf("mounts of %s left on %s after its pod is gone: %q", pv.Name, nodes[0].name, m)
	}

	start = time.Now()
	r := e.createPod(lanePod("reader", nodes[1].name, "data", block, read))
	e.waitPhase(r.Name, corev1.PodSucceeded, lanePodTimeout)
	got := e.logValue(r, "sum")
	t.Logf("reader on %s: sum %s after %.1fs", nodes[1].name, got, time.Since(start).Seconds())
	if got != sum {
		t.Fatalf("reader on %s read %q, writer on %s wrote %q", nodes[1].name, got, nodes[0].name, sum)
	}
	if va := e.va(pv, nodes[0].name); va != nil {
		t.Errorf("VolumeAttachment on %s still there after the volume moved: %+v", nodes[0].name, va.Status)
	}
	e.deletePod(r.Name, lanePodTimeout)
}

func TestLaneFilesystemMovesBetweenNodes(t *testing.T) {
	moveBetweenNodes(t, "lane-fs", fsMode, writeFS, readFS)
}

func TestLaneBlockMovesBetweenNodes(t *testing.T) {
	moveBetweenNodes(t, "lane-block", blockMode, writeBlock, readBlock)
}

// TestLaneKubeletRestart: the kubelet restarts under a running pod with a
// mounted volume; it reconstructs its state instead of mounting again.
func TestLaneKubeletRestart(t *testing.T) {
	nodes := lane(t)
	ln := nodes[0]
	e := newTestEnv(t, "lane-restart")
	e.pvc("data", "64Mi", fsMode, rwo)
	pv := e.waitBound("data", 3*time.Minute)
	w := e.createPod(lanePod("app", ln.name, "data", false, writeFS))
	p := e.waitPhase(w.Name, corev1.PodRunning, lanePodTimeout)
	sum := e.waitLog(w, "sum", lanePodTimeout)
	h := pv.Spec.CSI.VolumeHandle
	mountsBefore := mountsOf(ln, pv)
	staged, published := pluginCalls(ln, "Volume staged", h), pluginCalls(ln, "Volume published", h)
	ctrID := p.Status.ContainerStatuses[0].ContainerID
	t.Logf("before: mounts %q, staged %d, published %d, container %s", mountsBefore, staged, published, ctrID)

	start := time.Now()
	if err := ln.restartKubelet(e.ctx()); err != nil {
		t.Fatal(err)
	}
	t.Logf("kubelet back Ready after %.1fs", time.Since(start).Seconds())
	// The new kubelet must have synced the pod (its volume manager
	// reconstructs and reconciles on start); watch it for a while: a second
	// mount would come within a few sync periods (syncFrequency 5s).
	restarted := time.Now()
	if err := waitFor(e.ctx(), 3*time.Minute, 2*time.Second, "30s of the new kubelet with the pod", func(ctx context.Context) (bool, error) {
		cur, err := e.c.admin.CoreV1().Pods(e.ns).Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if cur.Status.Phase != corev1.PodRunning {
			return false, permanent(fmt.Errorf("pod %s after the kubelet restart", cur.Status.Phase))
		}
		return time.Since(restarted) > 30*time.Second, nil
	}); err != nil {
		t.Fatal(err)
	}
	cur, err := e.c.admin.CoreV1().Pods(e.ns).Get(e.ctx(), w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cur.Status.Phase != corev1.PodRunning || cur.Status.ContainerStatuses[0].ContainerID != ctrID || cur.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("pod after the kubelet restart: phase %s, container %s (was %s), restarts %d",
			cur.Status.Phase, cur.Status.ContainerStatuses[0].ContainerID, ctrID, cur.Status.ContainerStatuses[0].RestartCount)
	}
	mountsAfter := mountsOf(ln, pv)
	s2, p2 := pluginCalls(ln, "Volume staged", h), pluginCalls(ln, "Volume published", h)
	t.Logf("after: mounts %q, staged %d, published %d", mountsAfter, s2, p2)
	if strings.Join(mountsAfter, ",") != strings.Join(mountsBefore, ",") {
		t.Errorf("mounts changed across the kubelet restart: %q, then %q", mountsBefore, mountsAfter)
	}
	if s2 != staged || p2 != published {
		// A repeated NodeStage/NodePublish is allowed by CSI (idempotent) but
		// must not mount again; the mount table above is the real check.
		t.Logf("node plugin logged staged %d→%d, published %d→%d across the restart", staged, s2, published, p2)
	}
	_, target := playedPaths(pv, w.UID, false)
	f, err := os.Open(filepath.Join(ln.root, target, "f"))
	if err != nil {
		t.Fatal(err)
	}
	hsh := sha256.New()
	_, err = io.Copy(hsh, f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%x", hsh.Sum(nil)); got != sum {
		t.Errorf("data after the restart: %s, written %s", got, sum)
	}
	e.deletePod(w.Name, lanePodTimeout)
}

// TestLaneOnlineExpansion: the PVC grows while a pod uses it; the pod's df
// sees the new size (ControllerExpandVolume by csi-resizer, NodeExpandVolume
// by the kubelet).
func TestLaneOnlineExpansion(t *testing.T) {
	nodes := lane(t)
	ln := nodes[1]
	e := newTestEnv(t, "lane-expand")
	e.pvc("data", "64Mi", fsMode, rwo)
	pv := e.waitBound("data", 3*time.Minute)
	w := e.createPod(lanePod("app", ln.name, "data", false,
		`while true; do df -k /data | awk 'NR==2{print "size="$2}'; sleep 2; done`))
	e.waitPhase(w.Name, corev1.PodRunning, lanePodTimeout)
	before, _ := strconv.Atoi(e.waitLog(w, "size", lanePodTimeout))
	start := time.Now()
	patch := []byte(`{"spec":{"resources":{"requests":{"storage":"256Mi"}}}}`)
	if _, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Patch(e.ctx(), "data", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The controller half (csi-resizer, ControllerExpandVolume) must finish
	// either way: the PV grows.
	if err := waitFor(e.ctx(), lanePodTimeout, 2*time.Second, "PV "+pv.Name+" at 256Mi", func(ctx context.Context) (bool, error) {
		cur, err := e.c.admin.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := cur.Spec.Capacity[corev1.ResourceStorage]
		return c.Cmp(resource.MustParse("256Mi")) >= 0, nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("PV grown (ControllerExpandVolume) %.1fs after the PVC was patched", time.Since(start).Seconds())
	if !haveCapSysResource() {
		// Growing a mounted ext4 is the EXT4_IOC_RESIZE_FS ioctl, which the
		// kernel allows only with CAP_SYS_RESOURCE; this sandbox withholds
		// it (README). The kubelet's half can still be seen: it calls
		// NodeExpandVolume on the mounted volume, and resize2fs is refused.
		if err := waitFor(e.ctx(), lanePodTimeout, 2*time.Second, "the kubelet to call NodeExpandVolume", func(context.Context) (bool, error) {
			b, _ := os.ReadFile(ln.kubelet.logPath)
			return strings.Contains(string(b), "NodeExpandVolume") && strings.Contains(string(b), pv.Name), nil
		}); err != nil {
			t.Fatal(err)
		}
		e.deletePod(w.Name, lanePodTimeout)
		t.Skip("online expansion needs CAP_SYS_RESOURCE (ext4's EXT4_IOC_RESIZE_FS); this process lacks it: the kubelet called NodeExpandVolume and resize2fs answered \"Permission denied to resize filesystem\"")
	}
	var after int
	if err := waitFor(e.ctx(), lanePodTimeout, 2*time.Second, "df in the pod to grow past 200 MiB", func(context.Context) (bool, error) {
		lines := strings.Split(e.podLog(w), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			if v, ok := strings.CutPrefix(lines[i], "size="); ok {
				after, _ = strconv.Atoi(strings.TrimSpace(v))
				break
			}
		}
		return after > 200*1024, nil
	}); err != nil {
		e.describe(w.Name)
		t.Fatalf("%v (df said %d KiB before, %d KiB last)", err, before, after)
	}
	t.Logf("df in the pod: %d KiB before, %d KiB after, %.1fs after the PVC was patched", before, after, time.Since(start).Seconds())
	pvc, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx(), "data", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.Cmp(resource.MustParse("256Mi")) < 0 {
		t.Errorf("PVC capacity %s after the expansion", got.String())
	}
	e.deletePod(w.Name, lanePodTimeout)
}

// TestLaneFSGroup: the kubelet applies the pod's fsGroup to the mounted
// filesystem (the CSIDriver's default fsGroupPolicy, ReadWriteOnceWithFSType).
func TestLaneFSGroup(t *testing.T) {
	nodes := lane(t)
	e := newTestEnv(t, "lane-fsgroup")
	e.pvc("data", "64Mi", fsMode, rwo)
	e.waitBound("data", 3*time.Minute)
	const gid = 2345
	p := e.createPod(lanePod("app", nodes[0].name, "data", false,
		`touch /data/x && echo dir=$(stat -c %g /data) && echo file=$(stat -c %g /data/x) && echo id=$(id -G)`,
		func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To(int64(gid)), RunAsUser: ptr.To(int64(1000))}
		}))
	p = e.waitPhase(p.Name, corev1.PodSucceeded, lanePodTimeout)
	dir, file, ids := e.logValue(p, "dir"), e.logValue(p, "file"), e.logValue(p, "id")
	t.Logf("fsGroup %d: volume root gid %s, new file gid %s, process groups %s", gid, dir, file, ids)
	if dir != strconv.Itoa(gid) || file != strconv.Itoa(gid) {
		t.Errorf("fsGroup %d: the volume's root has gid %s, a new file %s", gid, dir, file)
	}
	e.deletePod(p.Name, lanePodTimeout)
}

// TestLaneNodeShutdown: node 1 shuts down (kubelet stopped, its containers
// and node plugin gone, its mounts and loop devices with them); with the
// out-of-service taint the pod-GC and the attach-detach controller let go
// of its pod and volume at once, and the volume moves to node 2.
func TestLaneNodeShutdown(t *testing.T) { laneNodeShutdown(t, true) }

// TestLaneNodeShutdownWithoutTaint: the same shutdown, handled as a cluster
// without the out-of-service taint must handle it. Nothing lets go by
// itself: the pod stays (its containers are still reported running, so the
// attach-detach controller keeps the volume), until an administrator
// force-deletes it; then the attach-detach controller waits its fixed
// maxWaitForUnmountDuration (6 minutes; no kube-controller-manager flag
// shortens it) before it force-detaches, and only then does the volume
// move. The test takes that long on purpose: it is the wait users live
// through, and the driver must not add to it.
func TestLaneNodeShutdownWithoutTaint(t *testing.T) { laneNodeShutdown(t, false) }

// forceDetachWait bounds the wait for the attach-detach controller's force
// detach: its 6 minutes, plus the attacher's and kubelet's retries.
const forceDetachWait = 10 * time.Minute

func laneNodeShutdown(t *testing.T, outOfService bool) {
	nodes := lane(t)
	ln := nodes[0]
	name := "lane-shutdown"
	if !outOfService {
		name = "lane-shutdown-notaint"
	}
	e := newTestEnv(t, name)
	e.pvc("data", "64Mi", fsMode, rwo)
	pv := e.waitBound("data", 3*time.Minute)
	w := e.createPod(lanePod("app", ln.name, "data", false, writeFS))
	e.waitPhase(w.Name, corev1.PodRunning, lanePodTimeout)
	sum := e.waitLog(w, "sum", lanePodTimeout)

	start := time.Now()
	ln.shutdown()
	t.Cleanup(func() {
		if err := ln.boot(context.Background()); err != nil {
			t.Errorf("bring %s back: %v", ln.name, err)
		}
	})
	e.waitNotReady(ln.name, 3*time.Minute)
	t.Logf("%s NotReady %.1fs after its shutdown", ln.name, time.Since(start).Seconds())
	released := time.Now()
	detachWait := lanePodTimeout
	if outOfService {
		e.taintOutOfService(ln.name)
		t.Cleanup(func() { e.untaint(ln.name, corev1.TaintNodeOutOfService) })
		released = time.Now()
		e.waitPodGone(w.Name, lanePodTimeout)
		t.Logf("pod on %s deleted %.1fs after the taint", ln.name, time.Since(released).Seconds())
	} else {
		// Nothing frees the volume while the pod exists: its VolumeAttachment
		// must still be there well after NotReady.
		time.Sleep(20 * time.Second)
		if e.va(pv, ln.name) == nil {
			t.Fatalf("VolumeAttachment on %s gone without the taint or a pod deletion: the volume was let go while its pod may still run", ln.name)
		}
		released = time.Now()
		if err := e.c.admin.CoreV1().Pods(e.ns).Delete(e.ctx(), w.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
		e.waitPodGone(w.Name, lanePodTimeout)
		t.Logf("pod on %s force-deleted", ln.name)
		detachWait = forceDetachWait
	}
	e.waitDetached(pv, ln.name, detachWait)
	t.Logf("VolumeAttachment on %s gone %.1fs after the pod was released", ln.name, time.Since(released).Seconds())
	r := e.createPod(lanePod("reader", nodes[1].name, "data", false, readFS))
	e.waitPhase(r.Name, corev1.PodSucceeded, lanePodTimeout)
	if got := e.logValue(r, "sum"); got != sum {
		t.Fatalf("reader on %s read %q after the move, written %q", nodes[1].name, got, sum)
	}
	t.Logf("volume moved to %s %.1fs after the pod was released (%.1fs after the shutdown)", nodes[1].name,
		time.Since(released).Seconds(), time.Since(start).Seconds())
	e.deletePod(r.Name, lanePodTimeout)
}

func (e *testEnv) untaint(node, key string) {
	n, err := e.c.admin.CoreV1().Nodes().Get(e.ctx(), node, metav1.GetOptions{})
	if err != nil {
		e.t.Errorf("untaint %s: %v", node, err)
		return
	}
	var keep []corev1.Taint
	for _, tn := range n.Spec.Taints {
		if tn.Key != key {
			keep = append(keep, tn)
		}
	}
	n.Spec.Taints = keep
	if _, err := e.c.admin.CoreV1().Nodes().Update(e.ctx(), n, metav1.UpdateOptions{}); err != nil {
		e.t.Errorf("untaint %s: %v", node, err)
	}
}

// haveCapSysResource: whether this process (and so the node plugin it
// starts) holds CAP_SYS_RESOURCE (bit 24 of CapEff).
func haveCapSysResource() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}
