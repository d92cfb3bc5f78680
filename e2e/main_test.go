//go:build e2e || e2ekubelet

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// env is the control plane shared by every test of the package.
var env *cluster

// nodes started by tests, stopped at the end.
var (
	nodesMu  sync.Mutex
	allNodes []*node
)

// atExit runs, last registered first, before the control plane stops; and
// staleCleaners run before a run starts, on what killed runs left. They are
// how files of one build tag only (the real-kubelet lane, e2ekubelet) add
// their own processes and leftovers to the shared harness.
var (
	atExit        []func()
	staleCleaners []func()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: must run as root (loop devices, mounts)")
		return 1
	}
	start := time.Now()
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(file))
	bins, err := toolBinaries(repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	cleanStaleRuns()
	dir, err := os.MkdirTemp("", "rds-csi-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	keep := os.Getenv("E2E_KEEP") != ""
	defer func() {
		if !keep {
			unmountUnder(dir)
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "e2e: kept", dir)
		}
	}()

	// The driver and the emulator, built from this tree.
	binDir := filepath.Join(dir, "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/rds-csi", "./cmd/rds-emulator")
	build.Dir, build.Stdout, build.Stderr = repo, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build rds-csi:", err)
		return 1
	}
	bins.rdsCSI, bins.emulator = filepath.Join(binDir, "rds-csi"), filepath.Join(binDir, "rds-emulator")
	fmt.Fprintf(os.Stderr, "e2e: versions: %s\n", bins.versions)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := startCluster(ctx, dir, bins)
	defer func() {
		for i := len(atExit) - 1; i >= 0; i-- {
			atExit[i]()
		}
		nodesMu.Lock()
		for _, n := range allNodes {
			n.stop()
		}
		nodesMu.Unlock()
		if c != nil {
			c.stop()
		}
		// Anything still attached to the emulator's files (a test that died
		// half-way) is detached, so no loop device outlives the run.
		unmountUnder(dir)
		for dev := range loopDevices(dir) {
			_ = exec.Command("losetup", "-d", dev).Run()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start control plane:", err)
		c.procs.dump(os.Stderr, 40)
		return 1
	}
	env = c
	if err := c.waitControllerReady(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		c.procs.dump(os.Stderr, 40)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: control plane and driver up in %.1fs (dir %s)\n", time.Since(start).Seconds(), dir)
	code := m.Run()
	if code != 0 {
		keep = keep || os.Getenv("CI") == ""
	}
	return code
}

// cleanStaleRuns releases what a run that was killed (a go test timeout, a
// SIGKILL) left behind: its mounts and loop devices. Runs whose test binary is
// alive, and kept directories (E2E_KEEP), are left alone apart from that.
func cleanStaleRuns() {
	for _, f := range staleCleaners {
		f()
	}
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "rds-csi-e2e-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue // alive (or not ours to judge)
		}
		unmountUnder(d)
		for dev := range loopDevices(d) {
			_ = exec.Command("losetup", "-d", dev).Run()
		}
		os.RemoveAll(filepath.Join("/dev/shm", filepath.Base(d)+"-etcd"))
	}
}

// waitControllerReady waits for a leader with its sidecars connected.
func (c *cluster) waitControllerReady(ctx context.Context) error {
	return waitFor(ctx, 90*time.Second, 200*time.Millisecond, "an rds-csi leader with provisioner and attacher leases", func(ctx context.Context) (bool, error) {
		holder, err := c.leader(ctx)
		if err != nil || holder == "" {
			return false, err
		}
		for _, l := range []string{"rds-csi-mikrotik-com", "external-attacher-leader-rds-csi-mikrotik-com"} {
			lease, err := c.admin.CoordinationV1().Leases(csiNamespace).Get(ctx, l, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("sidecar lease %s: %w", l, err)
			}
			if ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
				return false, nil
			}
		}
		return true, nil
	})
}

// setup is the per-test part: a namespace, a StorageClass, log tails on failure.
type testEnv struct {
	t  *testing.T
	c  *cluster
	ns string
	sc string
}

func newTestEnv(t *testing.T, name string) *testEnv {
	t.Helper()
	if env == nil {
		t.Fatal("no control plane")
	}
	ctx := context.Background()
	e := &testEnv{t: t, c: env, ns: "e2e-" + name, sc: "rds-" + name}
	if _, err := env.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The ServiceAccount admission plugin wants the default ServiceAccount.
	if err := waitFor(ctx, 30*time.Second, 100*time.Millisecond, "default ServiceAccount in "+e.ns, func(ctx context.Context) (bool, error) {
		_, err := env.admin.CoreV1().ServiceAccounts(e.ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.admin.StorageV1().StorageClasses().Create(ctx, &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: e.sc},
		Provisioner:          driverName,
		Parameters:           map[string]string{"dataPlane": "loop", "fsType": "ext4", "gracePeriod": driverGracePeriod.String()},
		ReclaimPolicy:        ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode:    ptr.To(storagev1.VolumeBindingImmediate),
		AllowVolumeExpansion: ptr.To(true),
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var b strings.Builder
			env.procs.dump(&b, 25)
			t.Log("process log tails:\n" + b.String())
		}
	})
	return e
}

func (e *testEnv) ctx() context.Context { return context.Background() }

// node starts a node plugin, with extra flags besides the harness's own,
// and registers the node.
func (e *testEnv) node(name string, extra ...string) *node {
	e.t.Helper()
	n, err := e.c.addNode(e.ctx(), name, extra...)
	if err != nil {
		e.t.Fatalf("node %s: %v", name, err)
	}
	nodesMu.Lock()
	allNodes = append(allNodes, n)
	nodesMu.Unlock()
	return n
}

// pvc creates a PVC of the test's StorageClass.
func (e *testEnv) pvc(name, size string, mode corev1.PersistentVolumeMode, access corev1.PersistentVolumeAccessMode) *corev1.PersistentVolumeClaim {
	e.t.Helper()
	p, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(e.sc),
			AccessModes:      []corev1.PersistentVolumeAccessMode{access},
			VolumeMode:       ptr.To(mode),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitBound waits for a PVC to be bound and returns its PV.
func (e *testEnv) waitBound(name string, timeout time.Duration) *corev1.PersistentVolume {
	e.t.Helper()
	var pv *corev1.PersistentVolume
	if err := waitFor(e.ctx(), timeout, 200*time.Millisecond, "PVC "+name+" bound", func(ctx context.Context) (bool, error) {
		p, err := e.c.admin.CoreV1().PersistentVolumeClaims(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || p.Status.Phase != corev1.ClaimBound {
			return false, err
		}
		pv, err = e.c.admin.CoreV1().PersistentVolumes().Get(ctx, p.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		e.t.Fatal(err)
	}
	return pv
}

// pod creates a pod on nodeName using the PVCs (as a filesystem mount, or as a
// raw device when block).
func (e *testEnv) pod(name, nodeName string, block bool, annotations map[string]string, claims ...string) *corev1.Pod {
	e.t.Helper()
	ctr := corev1.Container{Name: "app", Image: "registry.invalid/e2e/app:never-pulled"}
	var vols []corev1.Volume
	for i, cl := range claims {
		vn := fmt.Sprintf("data%d", i)
		vols = append(vols, corev1.Volume{Name: vn, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: cl}}})
		if block {
			ctr.VolumeDevices = append(ctr.VolumeDevices, corev1.VolumeDevice{Name: vn, DevicePath: "/dev/xvd" + string(rune('a'+i))})
		} else {
			ctr.VolumeMounts = append(ctr.VolumeMounts, corev1.VolumeMount{Name: vn, MountPath: "/data" + fmt.Sprint(i)})
		}
	}
	p, err := e.c.admin.CoreV1().Pods(e.ns).Create(e.ctx(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:                     nodeName,
			Containers:                   []corev1.Container{ctr},
			Volumes:                      vols,
			AutomountServiceAccountToken: ptr.To(false),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitRunning waits until the kubelet stand-in has set the pod up.
func (e *testEnv) waitRunning(name string, timeout time.Duration) *corev1.Pod {
	e.t.Helper()
	var p *corev1.Pod
	if err := waitFor(e.ctx(), timeout, 200*time.Millisecond, "pod "+name+" running", func(ctx context.Context) (bool, error) {
		var err error
		p, err = e.c.admin.CoreV1().Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// deletePod deletes gracefully (the kubelet stand-in unmounts, then removes it)
// and waits until it is gone.
func (e *testEnv) deletePod(name string, timeout time.Duration) {
	e.t.Helper()
	if err := e.c.admin.CoreV1().Pods(e.ns).Delete(e.ctx(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	e.waitPodGone(name, timeout)
}

func (e *testEnv) waitPodGone(name string, timeout time.Duration) {
	e.t.Helper()
	if err := waitFor(e.ctx(), timeout, 200*time.Millisecond, "pod "+name+" gone", func(ctx context.Context) (bool, error) {
		_, err := e.c.admin.CoreV1().Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}); err != nil {
		e.t.Fatal(err)
	}
}

// va returns the VolumeAttachment of pv on nodeName (nil if none).
func (e *testEnv) va(pv *corev1.PersistentVolume, nodeName string) *storagev1.VolumeAttachment {
	v, err := e.c.admin.StorageV1().VolumeAttachments().Get(e.ctx(), vaName(pv.Spec.CSI.VolumeHandle, nodeName), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return v
}

// waitInNodeStatus waits for the attach-detach controller to list pv in
// the node's status.volumesAttached: what the kubelet waits for before it
// mounts.
func (e *testEnv) waitInNodeStatus(pv *corev1.PersistentVolume, nodeName string, timeout time.Duration) error {
	return waitFor(e.ctx(), timeout, 100*time.Millisecond, "volumesAttached in the status of "+nodeName, func(ctx context.Context) (bool, error) {
		n, err := e.c.admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, v := range n.Status.VolumesAttached {
			if strings.HasSuffix(string(v.Name), "^"+pv.Spec.CSI.VolumeHandle) {
				return true, nil
			}
		}
		return false, nil
	})
}

// waitAttached waits for pv's VolumeAttachment on nodeName to be attached.
func (e *testEnv) waitAttached(pv *corev1.PersistentVolume, nodeName string, timeout time.Duration) *storagev1.VolumeAttachment {
	e.t.Helper()
	var va *storagev1.VolumeAttachment
	if err := waitFor(e.ctx(), timeout, 100*time.Millisecond, "VolumeAttachment of "+pv.Name+" on "+nodeName+" attached", func(ctx context.Context) (bool, error) {
		va = e.va(pv, nodeName)
		if va == nil {
			return false, nil
		}
		if va.Status.AttachError != nil {
			return false, fmt.Errorf("attach error: %s", va.Status.AttachError.Message)
		}
		return va.Status.Attached, nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return va
}

// waitDetached waits for pv's VolumeAttachment on nodeName to be gone.
func (e *testEnv) waitDetached(pv *corev1.PersistentVolume, nodeName string, timeout time.Duration) {
	e.t.Helper()
	if err := waitFor(e.ctx(), timeout, 100*time.Millisecond, "VolumeAttachment of "+pv.Name+" on "+nodeName+" gone", func(ctx context.Context) (bool, error) {
		return e.va(pv, nodeName) == nil, nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// backingFile is where the emulator keeps pv's disk.
func (e *testEnv) backingFile(pv *corev1.PersistentVolume) string {
	fp := pv.Spec.CSI.VolumeAttributes["filePath"]
	if fp == "" {
		fp = "/storage-pool/k8s/" + pv.Spec.CSI.VolumeHandle + ".img"
	}
	return filepath.Join(e.c.emuState, "files", strings.TrimPrefix(fp, "/"))
}

// waitNotReady waits for the node-lifecycle controller to mark the node
// NotReady.
func (e *testEnv) waitNotReady(name string, timeout time.Duration) {
	e.t.Helper()
	if err := waitFor(e.ctx(), timeout, 200*time.Millisecond, name+" NotReady", func(ctx context.Context) (bool, error) {
		n, err := e.c.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status != corev1.ConditionTrue, nil
			}
		}
		return false, nil
	}); err != nil {
		e.t.Fatal(err)
	}
}

// taintOutOfService applies node.kubernetes.io/out-of-service=nodeshutdown:NoExecute,
// retrying on update conflicts.
func (e *testEnv) taintOutOfService(name string) {
	e.t.Helper()
	if err := waitFor(e.ctx(), 10*time.Second, 100*time.Millisecond, "taint "+name, func(ctx context.Context) (bool, error) {
		n, err := e.c.admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute})
		_, err = e.c.admin.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err == nil, err
	}); err != nil {
		e.t.Fatal(err)
	}
}
