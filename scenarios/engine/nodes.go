package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// simNode is one Kubernetes node's CSI node plugin: the real NodeServer on
// an in-memory data plane, a fake mounter and a scripted mkfs/blkid.
type simNode struct {
	name   string
	dir    string
	plugin *driver.NodeServer
	plane  *simPlane
}

func (w *World) addNodePlugin(name string) error {
	dir := filepath.Join(w.tmp, name)
	plane := &simPlane{node: name, dir: filepath.Join(dir, "dev"), fab: w.fabric(), rds: w.target()}
	if err := os.MkdirAll(plane.dir, 0o700); err != nil {
		return err
	}
	ns, err := driver.NewNodeServer(driver.NodeOptions{NodeID: name, DataPlanes: map[string]dataplane.Plane{"nvme": plane},
		DefaultDataPlane: "nvme", StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mount.NewFakeMounter(nil),
		Exec: simExec{fab: plane.fab}, Clock: w.vc.view(), RestrictHosts: w.opts.RestrictHosts})
	if err != nil {
		return err
	}
	w.nodes[name] = &simNode{name: name, dir: dir, plugin: ns, plane: plane}
	return nil
}

func (n *simNode) paths(v *Volume) (staging, target string) {
	return filepath.Join(n.dir, "staging", v.ID), filepath.Join(n.dir, "pods", v.ID, "volume")
}

// stage is NodeStageVolume then NodePublishVolume, as the kubelet calls them.
func (n *simNode) stage(w *World, v *Volume, pctx map[string]string) error {
	staging, target := n.paths(v)
	ctx := w.ctx
	if _, err := n.plugin.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: v.ID, StagingTargetPath: staging,
		VolumeCapability: v.capability(), PublishContext: pctx, VolumeContext: v.volCtx}); err != nil {
		return err
	}
	_, err := n.plugin.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: v.ID, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: v.capability(), PublishContext: pctx, VolumeContext: v.volCtx})
	return err
}

// unstage is NodeUnpublishVolume then NodeUnstageVolume.
func (n *simNode) unstage(w *World, v *Volume) error {
	staging, target := n.paths(v)
	if _, err := n.plugin.NodeUnpublishVolume(w.ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.ID, TargetPath: target}); err != nil {
		return err
	}
	_, err := n.plugin.NodeUnstageVolume(w.ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.ID, StagingTargetPath: staging})
	return err
}

// fabric is the storage network as the nodes see it: which node has which
// volume connected, and which filesystems exist (mkfs writes them, blkid
// reads them), shared by every node.
type fabric struct {
	mu        sync.Mutex
	formatted map[string]string // volume ID → filesystem
	// connected: volume ID → the nodes that have it connected, sorted. A
	// set kept as a slice: the kubelet and the invariants walk it for every
	// volume after every instant, and it changes only on connect and
	// disconnect.
	connected map[string][]string
	devices   map[string]string    // device path → volume ID
	paths     map[string]*nvmePath // volume ID@node → its NVMe/TCP controller
}

func pathKey(volumeID, node string) string { return volumeID + "@" + node }

func (w *World) fabric() *fabric {
	if w.fab == nil {
		w.fab = &fabric{formatted: map[string]string{}, connected: map[string][]string{}, devices: map[string]string{},
			paths: map[string]*nvmePath{}}
	}
	return w.fab
}

// appendNodesOf appends to buf the nodes that have the volume's device
// connected, sorted: the kubelet and the invariants ask for
// every volume after every instant, into a buffer they keep.
func (f *fabric) appendNodesOf(buf []string, volumeID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(buf, f.connected[volumeID]...)
}

// simPlane is the in-memory data plane: "connecting" a volume creates a small
// sparse file standing for its block device, and an NVMe/TCP controller
// (nvmepath.go) that loses and regains RDS as the kernel's does.
type simPlane struct {
	node string
	dir  string
	fab  *fabric
	rds  rdsBox
}

// Name is "nvme": the simulated plane stands in for NVMe/TCP, which is what
// the controller's volumes ask for by default.
func (p *simPlane) Name() string { return "nvme" }

func (p *simPlane) device(t dataplane.Target) string { return filepath.Join(p.dir, t.VolumeID) }

func (p *simPlane) Attach(_ context.Context, t dataplane.Target) (string, error) {
	dev := p.device(t)
	p.fab.mu.Lock()
	path := p.fab.paths[pathKey(t.VolumeID, p.node)]
	p.fab.mu.Unlock()
	if path != nil && path.state != pathDeleted {
		return dev, nil // connected, or reconnecting by itself
	}
	if !p.rds.Serving() {
		return "", fmt.Errorf("sim data plane: nvme connect %s: RDS does not answer", t.NQN)
	}
	if !p.rds.Admits(t.VolumeID, t.HostNQN) {
		return "", fmt.Errorf("sim data plane: nvme connect %s as host %q: %w", t.NQN, t.HostNQN, dataplane.ErrHostNotAllowed)
	}
	path, err := newPath(t, p.node, p.rds.Crashes())
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(dev, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	if err := f.Truncate(2 << 20); err != nil { // both probed MiB, zero
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	p.fab.mu.Lock()
	if nodes := p.fab.connected[t.VolumeID]; !slices.Contains(nodes, p.node) {
		i, _ := slices.BinarySearch(nodes, p.node)
		p.fab.connected[t.VolumeID] = slices.Insert(slices.Clip(nodes), i, p.node)
	}
	p.fab.devices[dev] = t.VolumeID
	p.fab.paths[pathKey(t.VolumeID, p.node)] = path
	p.fab.mu.Unlock()
	return dev, nil
}

// Device finds the volume's device; a deleted controller took it away.
func (p *simPlane) Device(_ context.Context, t dataplane.Target) (string, error) {
	p.fab.mu.Lock()
	defer p.fab.mu.Unlock()
	if path := p.fab.paths[pathKey(t.VolumeID, p.node)]; slices.Contains(p.fab.connected[t.VolumeID], p.node) && path != nil && path.state != pathDeleted {
		return p.device(t), nil
	}
	return "", nil
}

// ControllerState is what volume health reads from sysfs.
func (p *simPlane) ControllerState(_ context.Context, t dataplane.Target) (string, error) {
	p.fab.mu.Lock()
	defer p.fab.mu.Unlock()
	if path := p.fab.paths[pathKey(t.VolumeID, p.node)]; path != nil && path.state != pathDeleted {
		return path.state, nil
	}
	return "", nil
}

// Detach is nvme disconnect: it works whatever the controller's state.
func (p *simPlane) Detach(_ context.Context, t dataplane.Target) error {
	p.fab.mu.Lock()
	if nodes := p.fab.connected[t.VolumeID]; slices.Contains(nodes, p.node) {
		p.fab.connected[t.VolumeID] = slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == p.node })
	}
	delete(p.fab.paths, pathKey(t.VolumeID, p.node))
	p.fab.mu.Unlock()
	return nil
}

func (p *simPlane) Rescan(context.Context, dataplane.Target) (int64, error) {
	return 0, fmt.Errorf("sim data plane: %w", dataplane.ErrNotAttached)
}

// simExec answers the commands mount-utils runs: blkid from the fabric's
// filesystems, mkfs by recording one, fsck and resize by succeeding.
type simExec struct{ fab *fabric }

func (e simExec) Command(cmd string, args ...string) utilexec.Cmd {
	return e.CommandContext(context.Background(), cmd, args...)
}

func (e simExec) CommandContext(_ context.Context, cmd string, args ...string) utilexec.Cmd {
	out, err := e.run(cmd, args)
	action := func() ([]byte, []byte, error) { return out, nil, err }
	fc := &testingexec.FakeCmd{
		CombinedOutputScript: []testingexec.FakeAction{action},
		OutputScript:         []testingexec.FakeAction{action},
		RunScript:            []testingexec.FakeAction{action},
	}
	return testingexec.InitFakeCmd(fc, cmd, args...)
}

func (e simExec) LookPath(file string) (string, error) { return "/usr/sbin/" + file, nil }

func (e simExec) run(cmd string, args []string) ([]byte, error) {
	dev := ""
	if len(args) > 0 {
		dev = args[len(args)-1]
	}
	e.fab.mu.Lock()
	defer e.fab.mu.Unlock()
	vol := e.fab.devices[dev]
	switch {
	case cmd == "blkid":
		if fs := e.fab.formatted[vol]; fs != "" {
			return []byte("DEVNAME=" + dev + "\nTYPE=" + fs + "\n"), nil
		}
		return nil, &testingexec.FakeExitError{Status: 2}
	case strings.HasPrefix(cmd, "mkfs."):
		e.fab.formatted[vol] = strings.TrimPrefix(cmd, "mkfs.")
		return nil, nil
	}
	return nil, nil
}

// nodeNames lists the nodes that have a plugin, sorted.
func (w *World) nodeNames() []string {
	names := make([]string, 0, len(w.nodes))
	for n := range w.nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ensureNodePlugins gives every Node object a plugin (node.create). It
// reads the nodes through the engine's picture of them (kubeSim.nodes),
// which lists them again only after a write.
func (w *World) ensureNodePlugins() error {
	s, err := w.kube.nodes()
	if err != nil {
		return err
	}
	for _, n := range s.names {
		if _, ok := w.nodes[n]; !ok {
			if err := w.addNodePlugin(n); err != nil {
				return err
			}
		}
	}
	return nil
}
