//go:build e2ekubelet

package e2e

import (
	"bufio"
	"context"
	"errors"
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

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The real-kubelet lane: the control plane of TestMain (etcd, kube-apiserver,
// kube-controller-manager with the attach-detach controller, two rds-csi
// controller replicas with csi-provisioner, csi-attacher and csi-resizer, the
// emulator), and next to it, per node, a containerd with its own root, state
// and socket, a real kubelet, the rds-csi node plugin and node-driver-registrar,
// all as processes. Nothing plays the kubelet: pods are created and the
// kubelet does the rest.

const (
	busyboxImage = "localhost/rds-csi-lane/busybox:1"
	// laneNamePrefix names what the lane leaves on the machine (cgroups,
	// bridges), distinct from kubelet-lane.sh's rds-csi-lane-* and rdscsilane0,
	// so that a stale clean-up never touches the probe's.
	laneCgroupPrefix = "rds-csi-e2ek-"
	laneBridgePrefix = "rdscsie2ek"
)

// laneNode is one machine of the lane.
type laneNode struct {
	c       *cluster
	name    string
	idx     int
	dir     string // c.dir/lane/<name>
	root    string // the kubelet's --root-dir
	ctrSock string
	backing string // the emulator's files as this node reaches them

	containerd, kubelet, plugin, registrar *proc
}

var (
	laneOnce  sync.Once
	laneErr   error
	laneNodes []*laneNode
)

func init() {
	atExit = append(atExit, stopLane)
	staleCleaners = append(staleCleaners, cleanStaleLane)
}

// lane starts the nodes once for the whole package (they are slow to start on
// a loaded machine) and returns them; a test that breaks one restores it.
func lane(t *testing.T) []*laneNode {
	t.Helper()
	laneOnce.Do(func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		laneErr = startLane(ctx, env, 2)
		fmt.Fprintf(os.Stderr, "e2e: lane nodes up in %.1fs (err %v)\n", time.Since(start).Seconds(), laneErr)
	})
	if laneErr != nil {
		var b strings.Builder
		env.procs.dump(&b, 40)
		t.Fatalf("lane: %v\n%s", laneErr, b.String())
	}
	return laneNodes
}

func laneDir(c *cluster) string { return filepath.Join(c.dir, "lane") }

func startLane(ctx context.Context, c *cluster, n int) error {
	dir := laneDir(c)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// One shared peer group for everything under the lane: the node plugin
	// mounts in the host's namespace, the kubelet runs in its own (for the
	// sysctls, below), containerd's shims bind the mounts into containers;
	// all must see each other's mounts.
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s rshared: %w", dir, err)
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(filepath.Dir(file)), "hack/e2e/kubelet-lane.sh")
	img := exec.CommandContext(ctx, "bash", script, "images")
	img.Env = append(os.Environ(), "DIR="+dir)
	if out, err := img.CombinedOutput(); err != nil {
		return fmt.Errorf("kubelet-lane.sh images: %w\n%s", err, out)
	}
	for i := 1; i <= n; i++ {
		ln := &laneNode{c: c, name: fmt.Sprintf("lane-node-%d", i), idx: i}
		laneNodes = append(laneNodes, ln)
		if err := ln.start(ctx); err != nil {
			return fmt.Errorf("%s: %w", ln.name, err)
		}
	}
	return nil
}

func (ln *laneNode) logs() string { return filepath.Join(ln.c.dir, "logs") }

func (ln *laneNode) start(ctx context.Context) error {
	c := ln.c
	ln.dir = filepath.Join(laneDir(c), ln.name)
	ln.root = filepath.Join(ln.dir, "kubelet")
	ln.ctrSock = filepath.Join(ln.dir, "containerd", "containerd.sock")
	for _, d := range []string{ln.root, filepath.Join(ln.dir, "containerd", "root"), filepath.Join(ln.dir, "containerd", "state"),
		filepath.Join(ln.dir, "cni", "net.d"), filepath.Join(ln.dir, "sysctl"), filepath.Join(ln.dir, "pod-logs"),
		filepath.Join(ln.dir, "volume-plugins"), filepath.Join(ln.dir, "certs"), filepath.Join(ln.dir, "rds-state")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return err
		}
	}
	if err := ln.startContainerd(ctx); err != nil {
		return err
	}
	if err := ln.startKubelet(ctx); err != nil {
		return err
	}
	return ln.startPlugin(ctx)
}

// startContainerd: one containerd per node (own root, state, socket, CNI
// bridge and subnet), as each kind node has its own, rather than one
// containerd with a namespace per node: the kubelet talks to the CRI plugin,
// which serves one namespace (k8s.io) per containerd.
func (ln *laneNode) startContainerd(ctx context.Context) error {
	c := filepath.Join(ln.dir, "containerd")
	bridge := fmt.Sprintf("%s%d", laneBridgePrefix, ln.idx)
	cfg := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/rds-csi-lane/pause:1"
  # No CAP_SYS_RESOURCE in this sandbox: lowering an oom_score_adj fails.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %[5]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[6]q
    conf_dir = %[7]q
`, filepath.Join(c, "root"), filepath.Join(c, "state"), ln.ctrSock, ln.ctrSock+".ttrpc",
		os.Getenv("E2E_RUNC"), envOr("E2E_CNI_BIN_DIR", "/usr/lib/cni"), filepath.Join(ln.dir, "cni", "net.d"))
	if err := os.WriteFile(filepath.Join(c, "config.toml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{"cniVersion": "0.4.0", "name": "rds-csi-e2ek", "plugins": [
  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.%d.0/24"}]], "dataDir": %q}},
  {"type": "loopback"}]}`, bridge, 90+ln.idx, filepath.Join(ln.dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(ln.dir, "cni", "net.d", "10-lane.conflist"), []byte(cni), 0o600); err != nil {
		return err
	}
	ln.containerd = ln.c.procs.add(newProc(ln.logs(), "containerd-"+ln.name, os.Getenv("E2E_CONTAINERD"), "--config", filepath.Join(c, "config.toml")))
	if err := ln.containerd.Start(); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, 500*time.Millisecond, "containerd of "+ln.name, func(ctx context.Context) (bool, error) {
		return exec.CommandContext(ctx, ln.ctr("version")[0], ln.ctr("version")[1:]...).Run() == nil, nil
	}); err != nil {
		return err
	}
	for _, im := range []string{"pause", "busybox"} {
		args := ln.ctr("images", "import", filepath.Join(laneDir(ln.c), "images", im+".tar"))
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("ctr images import %s: %w\n%s", im, err, out)
		}
	}
	return nil
}

func (ln *laneNode) ctr(args ...string) []string {
	return append([]string{os.Getenv("E2E_CTR"), "--address", ln.ctrSock, "--namespace", "k8s.io"}, args...)
}

// cgroupRoot carries the test binary's pid, so that the clean-up of a killed
// run (kubelet-lane.sh clean) finds exactly its cgroups.
func (ln *laneNode) cgroupRoot() string {
	return laneCgroupPrefix + strconv.Itoa(os.Getpid()) + "-" + ln.name
}

func (ln *laneNode) startKubelet(ctx context.Context) error {
	c := ln.c
	kc, err := c.pki.kubeconfig("kubelet-"+ln.name, "system:node:"+ln.name, []string{"system:nodes"}, c.server)
	if err != nil {
		return err
	}
	if _, _, err := c.pki.issue("kubelet-serving-"+ln.name, "system:node:"+ln.name, []string{"system:nodes"}, true); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	hport, err := freePort()
	if err != nil {
		return err
	}
	// cgroupRoot must exist in every v1 hierarchy before the kubelet starts;
	// one per node, so that two kubelets never share a kubepods tree.
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		// cpu and cpuacct are symlinks to cpu,cpuacct: Stat follows them.
		if st, err := os.Stat(h); err != nil || !st.IsDir() || filepath.Base(h) == "unified" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(h, ln.cgroupRoot()), 0o755); err != nil {
			return err
		}
	}
	// The settings, and why, are in hack/e2e/README.md (kubelet-lane.sh
	// measured them): cgroup v1, no systemd, a shared disk, no registry.
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /%s
containerRuntimeEndpoint: unix://%s
address: 127.0.0.1
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: %s}
authorization: {mode: AlwaysAllow}
failSwapOn: false
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
enforceNodeAllocatable: []
protectKernelDefaults: false
makeIPTablesUtilChains: false
resolvConf: ""
serializeImagePulls: false
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
volumePluginDir: %s
podLogsDir: %s
`, ln.cgroupRoot(), ln.ctrSock, port, hport, c.pki.path("kubelet-serving-"+ln.name+".crt"), c.pki.path("kubelet-serving-"+ln.name+".key"),
		c.pki.path("ca.crt"), filepath.Join(ln.dir, "volume-plugins"), filepath.Join(ln.dir, "pod-logs"))
	if err := os.WriteFile(filepath.Join(ln.dir, "kubelet.yaml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	// The kubelet writes machine-wide sysctls at start; on a shared machine
	// they are not the lane's to change, so it runs in its own mount
	// namespace where those files are bind-mounted copies (README).
	shield := `set -e
d=$1
shift
for f in vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
	c=$d/$(echo "$f" | tr / .)
	cat "/proc/sys/$f" >"$c"
	mount --bind "$c" "/proc/sys/$f"
done
exec "$@"`
	ln.kubelet = c.procs.add(newProc(ln.logs(), "kubelet-"+ln.name, "unshare",
		"--mount", "--propagation", "unchanged", "sh", "-c", shield, "sh", filepath.Join(ln.dir, "sysctl"),
		os.Getenv("E2E_KUBELET"), "--config="+filepath.Join(ln.dir, "kubelet.yaml"),
		"--kubeconfig="+kc, "--root-dir="+ln.root, "--cert-dir="+filepath.Join(ln.dir, "certs"),
		"--hostname-override="+ln.name, "--v=2"))
	if err := ln.kubelet.Start(); err != nil {
		return err
	}
	return ln.waitReady(ctx, 4*time.Minute)
}

func (ln *laneNode) waitReady(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, time.Second, "node "+ln.name+" Ready", func(ctx context.Context) (bool, error) {
		if !ln.kubelet.Running() {
			return false, permanent(errors.New("kubelet exited"))
		}
		n, err := ln.c.admin.CoreV1().Nodes().Get(ctx, ln.name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, cd := range n.Status.Conditions {
			if cd.Type == corev1.NodeReady {
				return cd.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

// startPlugin: the rds-csi node plugin and node-driver-registrar, the two
// containers of the node DaemonSet, as processes; the kubelet's plugin
// watcher finds the registrar's socket and calls NodeGetInfo itself.
func (ln *laneNode) startPlugin(ctx context.Context) error {
	c := ln.c
	// The emulator's files "as this node sees it", through a bind mount of its
	// own (see addNode: the loop data plane tells devices apart by path).
	ln.backing = filepath.Join(ln.dir, "rds-state")
	if err := unix.Mount(c.emuState, ln.backing, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount the emulator state: %w", err)
	}
	pdir := filepath.Join(ln.root, "plugins", driverName)
	if err := os.MkdirAll(pdir, 0o750); err != nil {
		return err
	}
	sock := filepath.Join(pdir, "csi.sock")
	ln.plugin = c.procs.add(newProc(ln.logs(), "node-"+ln.name, c.bins.rdsCSI,
		"--mode=node", "--node-id="+ln.name, "--endpoint=unix://"+sock,
		"--data-plane=loop", "--loop-backing-dir="+ln.backing, "--kubelet-dir="+ln.root,
		"--node-state-dir="+filepath.Join(ln.dir, "plugin-state"), "--v=5"))
	if err := ln.plugin.Start(); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, 500*time.Millisecond, "node plugin socket of "+ln.name, func(context.Context) (bool, error) {
		_, err := os.Stat(sock)
		return err == nil, nil
	}); err != nil {
		return err
	}
	ln.registrar = c.procs.add(newProc(ln.logs(), "registrar-"+ln.name, os.Getenv("E2E_NODE_DRIVER_REGISTRAR"),
		"--csi-address="+sock, "--kubelet-registration-path="+sock,
		"--plugin-registration-path="+filepath.Join(ln.root, "plugins_registry"), "--v=4"))
	if err := ln.registrar.Start(); err != nil {
		return err
	}
	return waitFor(ctx, 3*time.Minute, time.Second, "CSINode "+ln.name+" lists "+driverName, func(ctx context.Context) (bool, error) {
		cn, err := c.admin.StorageV1().CSINodes().Get(ctx, ln.name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, d := range cn.Spec.Drivers {
			if d.Name == driverName {
				return true, nil
			}
		}
		return false, nil
	})
}

// restartKubelet stops the kubelet process (SIGTERM) and starts it again,
// containers and mounts left as they are.
func (ln *laneNode) restartKubelet(ctx context.Context) error {
	ln.kubelet.Stop(30 * time.Second)
	if err := ln.kubelet.Start(); err != nil {
		return err
	}
	return ln.waitBack(ctx)
}

// waitBack waits for a (re)started kubelet to renew its node Lease: the Node
// stays Ready across a short restart, so Ready alone would not say that the
// new instance is up.
func (ln *laneNode) waitBack(ctx context.Context) error {
	since := time.Now()
	if err := waitFor(ctx, 4*time.Minute, time.Second, "the new kubelet of "+ln.name+" to renew its Lease", func(ctx context.Context) (bool, error) {
		if !ln.kubelet.Running() {
			return false, permanent(errors.New("kubelet exited"))
		}
		l, err := ln.c.admin.CoordinationV1().Leases("kube-node-lease").Get(ctx, ln.name, metav1.GetOptions{})
		if err != nil || l.Spec.RenewTime == nil {
			return false, nil
		}
		return l.Spec.RenewTime.Time.After(since), nil
	}); err != nil {
		return err
	}
	return ln.waitReady(ctx, 4*time.Minute)
}

// shims are the containerd-shim processes of this node's containerd: they
// outlive it (they are not its children), found by the socket they were
// given.
func (ln *laneNode) shims() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(b), ln.ctrSock) {
			out = append(out, pid)
		}
	}
	return out
}

// stop ends the node: the kubelet first (it would restart what goes away),
// the containers through containerd, then the rest, and removes its mounts,
// loop devices, bridge and cgroups.
func (ln *laneNode) stop() {
	if ln.kubelet != nil {
		ln.kubelet.Stop(10 * time.Second)
	}
	if ln.containerd != nil && ln.containerd.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		a := ln.ctr("tasks", "ls", "-q")
		out, _ := exec.CommandContext(ctx, a[0], a[1:]...).Output()
		for _, id := range strings.Fields(string(out)) {
			k := ln.ctr("tasks", "kill", "-s", "SIGKILL", id)
			_ = exec.CommandContext(ctx, k[0], k[1:]...).Run()
		}
		for _, id := range strings.Fields(string(out)) {
			_ = waitFor(ctx, 20*time.Second, 500*time.Millisecond, "task "+id+" stopped", func(ctx context.Context) (bool, error) {
				d := ln.ctr("tasks", "delete", id)
				err := exec.CommandContext(ctx, d[0], d[1:]...).Run()
				return err == nil, nil
			})
		}
		cancel()
	}
	for _, p := range []*proc{ln.registrar, ln.plugin, ln.containerd} {
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	for _, pid := range ln.shims() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if ln.dir != "" {
		unmountUnder(ln.dir)
		for dev := range loopDevices(ln.dir) {
			_ = exec.Command("losetup", "-d", dev).Run()
		}
	}
	_ = exec.Command("ip", "link", "del", fmt.Sprintf("%s%d", laneBridgePrefix, ln.idx)).Run()
	removeCgroups(ln.cgroupRoot())
}

// removeCgroups removes the cgroup tree name in every v1 hierarchy, deepest
// first (a cgroup with live tasks stays, and says so by failing).
func removeCgroups(name string) {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
	for _, h := range hs {
		var dirs []string
		_ = filepath.WalkDir(h, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = unix.Rmdir(dirs[i])
		}
	}
}

func stopLane() {
	for i := len(laneNodes) - 1; i >= 0; i-- {
		laneNodes[i].stop()
	}
	if env != nil {
		unmountUnder(laneDir(env))
	}
}

// cleanStaleLane releases what a killed lane run left (its pods' processes,
// containerd shims, mounts, loop devices, cgroups, bridges): one
// implementation, kubelet-lane.sh clean, which make e2e-kubelet also runs
// after the tests, however they ended.
func cleanStaleLane() {
	_, file, _, _ := runtime.Caller(0)
	cmd := exec.Command("bash", filepath.Join(filepath.Dir(filepath.Dir(file)), "hack/e2e/kubelet-lane.sh"), "clean")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: kubelet-lane.sh clean:", err)
	}
}

// --- pods ---

// lanePod is a busybox pod on a node running script with the PVC at /data
// (filesystem) or /dev/xvda (block).
func lanePod(name, nodeName, claim string, block bool, script string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	ctr := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"/bin/sh", "-c", script}}
	if block {
		ctr.VolumeDevices = []corev1.VolumeDevice{{Name: "data", DevicePath: "/dev/xvda"}}
	} else {
		ctr.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			RestartPolicy:                 corev1.RestartPolicyNever,
			Containers:                    []corev1.Container{ctr},
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(2)),
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func (e *testEnv) createPod(p *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	out, err := e.c.admin.CoreV1().Pods(e.ns).Create(e.ctx(), p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// waitPhase waits for the pod to reach phase (or fails early on a terminal
// phase that is not it).
func (e *testEnv) waitPhase(name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	e.t.Helper()
	var p *corev1.Pod
	if err := waitFor(e.ctx(), timeout, time.Second, "pod "+name+" "+string(phase), func(ctx context.Context) (bool, error) {
		var err error
		p, err = e.c.admin.CoreV1().Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if p.Status.Phase == phase {
			return true, nil
		}
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, permanent(fmt.Errorf("pod %s is %s, not %s: %s", name, p.Status.Phase, phase, e.podLog(p)))
		}
		return false, nil
	}); err != nil {
		e.describe(name)
		e.t.Fatal(err)
	}
	return p
}

// describe logs the pod's status and events, for a failure.
func (e *testEnv) describe(name string) {
	p, err := e.c.admin.CoreV1().Pods(e.ns).Get(e.ctx(), name, metav1.GetOptions{})
	if err == nil {
		e.t.Logf("pod %s: phase %s, conditions %+v, containers %+v", name, p.Status.Phase, p.Status.Conditions, p.Status.ContainerStatuses)
	}
	evs, err := e.c.admin.CoreV1().Events(e.ns).List(e.ctx(), metav1.ListOptions{})
	if err == nil {
		for _, ev := range evs.Items {
			e.t.Logf("event %s %s: %s %s", ev.InvolvedObject.Name, ev.Reason, ev.Type, ev.Message)
		}
	}
}

// podLog is the app container's output, read from the node's podLogsDir
// (CRI log format: "<time> <stream> <tag> <text>"): the kubelet listens on
// loopback only and the Node's address is not dialled.
func (e *testEnv) podLog(p *corev1.Pod) string {
	var ln *laneNode
	for _, n := range laneNodes {
		if n.name == p.Spec.NodeName {
			ln = n
		}
	}
	if ln == nil {
		return ""
	}
	files, _ := filepath.Glob(filepath.Join(ln.dir, "pod-logs", fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID), "app", "*.log"))
	var b strings.Builder
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			parts := strings.SplitN(sc.Text(), " ", 4)
			if len(parts) == 4 {
				b.WriteString(parts[3])
				if parts[2] == "F" {
					b.WriteString("\n")
				}
			}
		}
		fh.Close()
	}
	return b.String()
}

// logValue returns the text after "key=" on the pod log's line for key.
func (e *testEnv) logValue(p *corev1.Pod, key string) string {
	for _, l := range strings.Split(e.podLog(p), "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// mountsUnder lists the mount points below dir (in this, the host's, mount
// namespace, where the node plugin mounts), with repeats.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		if mp := unescapeMount(f[4]); strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// shutdown is the machine going down: the kubelet stops, its containers and
// the node plugin die, and what it had mounted or attached is gone (the
// machine's kernel would take them along). containerd, the registrar and the
// emulator-state bind mount stay: boot brings the rest back.
func (ln *laneNode) shutdown() {
	ln.kubelet.Stop(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := ln.ctr("tasks", "ls", "-q")
	out, _ := exec.CommandContext(ctx, a[0], a[1:]...).Output()
	for _, id := range strings.Fields(string(out)) {
		k := ln.ctr("tasks", "kill", "-s", "SIGKILL", id)
		_ = exec.CommandContext(ctx, k[0], k[1:]...).Run()
	}
	ln.plugin.Stop(0)
	unmountUnder(ln.root)
	for dev := range loopDevices(ln.dir) {
		_ = exec.Command("losetup", "-d", dev).Run()
	}
}

// boot starts the kubelet and the node plugin again after shutdown.
func (ln *laneNode) boot(ctx context.Context) error {
	if err := ln.plugin.Start(); err != nil {
		return err
	}
	if err := ln.kubelet.Start(); err != nil {
		return err
	}
	return ln.waitBack(ctx)
}
