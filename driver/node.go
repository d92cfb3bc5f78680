package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/mountinfo"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/internal/keylock"
)

// NodeOptions configure the node plugin.
type NodeOptions struct {
	NodeID string
	// DataPlanes by name ("nvme", "loop"); DefaultDataPlane is used when the
	// volume context does not choose. It may be left empty only when there
	// is a single plane.
	DataPlanes       map[string]dataplane.Plane
	DefaultDataPlane string
	// StateDir keeps one small file per staged volume (which data plane, which
	// target), so unstage and stats work after a plugin restart without RDS.
	StateDir string
	// KubeletDir confines every staging and target path (DefaultKubeletDir):
	// the plugin mounts, unmounts and removes nothing outside it, whatever a
	// caller asks.
	KubeletDir string
	// MaxVolumesPerNode is reported by NodeGetInfo; 0 means no limit.
	MaxVolumesPerNode int64
	// Mounter and Exec default to the host's; tests inject fakes.
	Mounter mount.Interface
	Exec    utilexec.Interface
	// OperationTimeout bounds every node call's work (2m), on Clock.
	OperationTimeout time.Duration
	// Clock is the only source of time; nil means the real clock.
	Clock clock.Clock
	// RestrictHosts makes the node connect with the host NQN and host ID
	// derived from NodeID (driver/hostnqn), the identity the controller
	// allows on the exports it publishes to this node.
	RestrictHosts bool
}

// DefaultKubeletDir is where the kubelet keeps staging and publish paths.
const DefaultKubeletDir = "/var/lib/kubelet"

// NodeServer is the CSI node service.
type NodeServer struct {
	csi.UnimplementedNodeServer
	opts NodeOptions
	// hostNQN and hostID are set with RestrictHosts.
	hostNQN, hostID string
	locks           keylock.Set // volume ID, held for the whole call
}

// NewNodeServer validates options and returns a node service.
func NewNodeServer(o NodeOptions) (*NodeServer, error) {
	if o.NodeID == "" {
		return nil, errors.New("node: --node-id is required")
	}
	if len(o.DataPlanes) == 0 {
		return nil, errors.New("node: no data plane configured")
	}
	var hostNQN, hostID string
	if o.RestrictHosts {
		var err error
		if hostNQN, err = hostnqn.For(o.NodeID); err != nil {
			return nil, fmt.Errorf("node: --restrict-hosts: %w", err)
		}
		if hostID, err = hostnqn.HostID(o.NodeID); err != nil {
			return nil, fmt.Errorf("node: --restrict-hosts: %w", err)
		}
	}
	if o.DefaultDataPlane == "" {
		// Picking one of several would pick by map order, a different
		// plane on each start: only a lone plane is its own default.
		if len(o.DataPlanes) > 1 {
			return nil, fmt.Errorf("node: data planes %s are configured and none is the default; set DefaultDataPlane",
				strings.Join(slices.Sorted(maps.Keys(o.DataPlanes)), ", "))
		}
		for name := range o.DataPlanes {
			o.DefaultDataPlane = name
		}
	}
	if _, ok := o.DataPlanes[o.DefaultDataPlane]; !ok {
		return nil, fmt.Errorf("node: default data plane %q is not configured", o.DefaultDataPlane)
	}
	if o.StateDir == "" {
		return nil, errors.New("node: a state directory is required")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: state dir: %w", err)
	}
	if o.KubeletDir == "" {
		o.KubeletDir = DefaultKubeletDir
	}
	if !filepath.IsAbs(o.KubeletDir) {
		return nil, fmt.Errorf("node: kubelet dir %q must be absolute", o.KubeletDir)
	}
	o.KubeletDir = filepath.Clean(o.KubeletDir)
	if o.Mounter == nil {
		o.Mounter = mount.New("")
	}
	if o.Exec == nil {
		o.Exec = utilexec.New()
	}
	if o.OperationTimeout == 0 {
		o.OperationTimeout = 2 * time.Minute
	}
	if o.Clock == nil {
		o.Clock = clock.New()
	}
	return &NodeServer{opts: o, hostNQN: hostNQN, hostID: hostID}, nil
}

// lock serialises calls for one volume; kubelet retries, so a call that finds
// the volume busy fails with ABORTED instead of waiting.
func (n *NodeServer) lock(id string) (func(), error) {
	unlock, ok := n.locks.TryLock(id)
	if !ok {
		return nil, status.Errorf(codes.Aborted, "an operation on volume %s is already in progress on this node", id)
	}
	return unlock, nil
}

// begin serialises a call on one volume and bounds its work by the operation
// timeout; done releases both.
func (n *NodeServer) begin(ctx context.Context, id string) (context.Context, func(), error) {
	unlock, err := n.lock(id)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := n.opts.Clock.WithTimeout(ctx, n.opts.OperationTimeout)
	return ctx, func() { cancel(); unlock() }, nil
}

var nodeCapabilities = []csi.NodeServiceCapability_RPC_Type{
	csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
	csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
	csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
	csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
}

// NodeGetCapabilities lists what the node service implements.
func (n *NodeServer) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, c := range nodeCapabilities {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: c}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodeGetInfo reports the node ID and the attach limit.
func (n *NodeServer) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.opts.NodeID, MaxVolumesPerNode: n.opts.MaxVolumesPerNode}, nil
}

// stagedVolume is what the node remembers about a staged volume.
type stagedVolume struct {
	DataPlane   string           `json:"dataPlane"`
	Target      dataplane.Target `json:"target"`
	Block       bool             `json:"block"`
	StagingPath string           `json:"stagingPath"`
	Device      string           `json:"device"` // at staging time; may change after an NVMe reconnect
	// ReadOnly: staged with the "ro" mount flag, so a read-only mount is
	// what was asked for, not the aftermath of an I/O error.
	ReadOnly bool `json:"readOnly,omitempty"`
	// Published are the target paths the volume is published at.
	Published map[string]publication `json:"published,omitempty"`
}

// statePath is the state file of a volume. Every RPC checks the ID's shape
// (checkVolumeID) first, so an ID can never name a file elsewhere.
func (n *NodeServer) statePath(id string) string {
	return filepath.Join(n.opts.StateDir, id+".json")
}

// checkVolumeID refuses IDs that cannot name a volume of this driver: they
// are NOT_FOUND without looking at anything, so an ID like "../x" reaches no
// file, lock or mount.
func checkVolumeID(id string) error {
	if !isVolumeID(id) {
		return status.Errorf(codes.NotFound, "volume %.80q is not a volume of this driver", id)
	}
	return nil
}

// confine resolves p, symlinks included, and checks that it lies strictly
// inside the kubelet directory. The part of p that does not exist yet is
// joined lexically to its longest existing, resolved prefix, so a symlink
// anywhere on the way cannot lead out. The resolved path is what the
// caller must act on. (A symlink swapped in after the check can still
// redirect a later mount; the kubelet dir is writable only by root.)
func (n *NodeServer) confine(kind, p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", status.Errorf(codes.InvalidArgument, "%s %.200q must be an absolute path under %s", kind, p, n.opts.KubeletDir)
	}
	root, err := resolveExisting(n.opts.KubeletDir)
	if err != nil {
		return "", status.Errorf(codes.Internal, "resolve kubelet dir %s: %v", n.opts.KubeletDir, err)
	}
	resolved, err := resolveExisting(filepath.Clean(p))
	if err != nil {
		return "", status.Errorf(codes.Internal, "resolve %s %s: %v", kind, p, err)
	}
	if !strings.HasPrefix(resolved, root+string(filepath.Separator)) {
		return "", status.Errorf(codes.InvalidArgument, "%s %.200q resolves to %s, outside the kubelet dir %s; refusing to touch it", kind, p, resolved, root)
	}
	return resolved, nil
}

// resolveExisting is filepath.EvalSymlinks for paths whose tail may not
// exist yet: it resolves the longest existing prefix and appends the rest.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return "", err
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

func (n *NodeServer) saveState(id string, s stagedVolume) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := n.statePath(id) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, n.statePath(id))
}

// loadState returns the staged volume, or ok=false if it is not staged here.
func (n *NodeServer) loadState(id string) (stagedVolume, bool, error) {
	var s stagedVolume
	b, err := os.ReadFile(n.statePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("state of volume %s is corrupt: %w", id, err)
	}
	return s, true, nil
}

// target builds the data plane target from the publish and volume contexts.
func target(id string, pc, vc map[string]string) (dataplane.Target, error) {
	get := func(k string) string {
		if v, ok := pc[k]; ok && v != "" {
			return v
		}
		return vc[k]
	}
	t := dataplane.Target{
		VolumeID: id, NQN: get(paramNQN), Address: get(paramNVMeAddress), FilePath: get(paramFilePath),
		CtrlLossTmo: get(paramCtrlLossTmo), ReconnectDelay: get(paramReconnectDelay), KeepAliveTmo: get(paramKeepAliveTmo),
		FastIOFailTmo: get(paramFastIOFailTmo),
	}
	if t.CtrlLossTmo == "" {
		// nvme-cli's own default (600 s) deletes the controller of a volume
		// that is still mounted when RDS is away longer than ten minutes; the
		// pod then sees I/O errors until someone remounts it by hand.
		t.CtrlLossTmo = dataplane.DefaultCtrlLossTmo
	}
	if p := get(paramNVMePort); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return t, status.Errorf(codes.InvalidArgument, "publish context: bad %s %q", paramNVMePort, p)
		}
		t.Port = port
	}
	if t.NQN == "" && t.FilePath == "" {
		return t, status.Error(codes.InvalidArgument, "publish context has neither an NQN nor a file path: was the volume published by this driver?")
	}
	return t, nil
}

func (n *NodeServer) plane(name string) (dataplane.Plane, error) {
	if name == "" {
		name = n.opts.DefaultDataPlane
	}
	p, ok := n.opts.DataPlanes[name]
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "data plane %q is not enabled on node %s", name, n.opts.NodeID)
	}
	return p, nil
}

// NodeStageVolume attaches the volume's block device and, for filesystem
// volumes, formats it only if it provably holds nothing, then mounts it at the
// staging path.
func (n *NodeServer) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, staging, vcap := req.GetVolumeId(), req.GetStagingTargetPath(), req.GetVolumeCapability()
	if err := require("volume ID", id, "staging target path", staging); err != nil {
		return nil, err
	}
	if vcap == nil {
		return nil, status.Error(codes.InvalidArgument, "volume capability missing")
	}
	if _, err := checkCapabilities([]*csi.VolumeCapability{vcap}); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	staging, err := n.confine("staging target path", staging)
	if err != nil {
		return nil, err
	}
	if err := validateNodeParams(req.GetVolumeContext()); err != nil {
		return nil, err
	}
	if err := validateNodeParams(req.GetPublishContext()); err != nil {
		return nil, err
	}
	t, err := target(id, req.GetPublishContext(), req.GetVolumeContext())
	if err != nil {
		return nil, err
	}
	t.HostNQN, t.HostID = n.hostNQN, n.hostID
	planeName := req.GetPublishContext()[paramDataPlane]
	if planeName == "" {
		planeName = req.GetVolumeContext()[paramDataPlane]
	}
	plane, err := n.plane(planeName)
	if err != nil {
		return nil, err
	}
	ctx, done, err := n.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()

	device, err := plane.Attach(ctx, t)
	if err != nil {
		return nil, dataPlaneStatus("attach", err)
	}
	block := vcap.GetBlock() != nil
	st := stagedVolume{DataPlane: plane.Name(), Target: t, Block: block, StagingPath: staging, Device: device,
		ReadOnly: slices.Contains(vcap.GetMount().GetMountFlags(), "ro")}
	if prev, ok, err := n.loadState(id); err == nil && ok {
		st.Published = prev.Published // a repeated stage keeps what is published
	}
	if err := n.saveState(id, st); err != nil {
		return nil, status.Errorf(codes.Internal, "record staged volume: %v", err)
	}
	if block {
		klog.InfoS("Volume staged", "volume", id, "device", device, "mode", "block")
		return &csi.NodeStageVolumeResponse{}, nil
	}

	// Already mounted here? Then it must be this device.
	mounted, err := n.mountedDevice(staging)
	if err != nil {
		return nil, err
	}
	if mounted != "" {
		if !sameDevice(mounted, device) {
			return nil, status.Errorf(codes.FailedPrecondition, "staging path %s holds %s, not volume %s's device %s", staging, mounted, id, device)
		}
		return &csi.NodeStageVolumeResponse{}, nil
	}
	if err := os.MkdirAll(staging, 0o750); err != nil {
		return nil, status.Errorf(codes.Internal, "create staging path: %v", err)
	}
	fsType := vcap.GetMount().GetFsType()
	if fsType == "" {
		fsType = req.GetVolumeContext()[paramFSType]
	}
	if fsType == "" {
		fsType = "ext4"
	}
	if err := n.formatAndMount(ctx, device, staging, fsType, vcap.GetMount().GetMountFlags()); err != nil {
		return nil, err
	}
	klog.InfoS("Volume staged", "volume", id, "device", device, "fsType", fsType, "stagingPath", staging)
	return &csi.NodeStageVolumeResponse{}, nil
}

// formatAndMount mounts device at path, formatting it first only when it
// provably holds nothing: blkid finds no signature AND the device's first and
// last MiB read back as zeros (RDS creates volumes as sparse, zero-filled files).
// A probe that fails, or a device with data but no recognised filesystem, is an
// error: formatting live data after a reconnect is the worst thing a storage
// driver can do, and a retry costs nothing.
func (n *NodeServer) formatAndMount(ctx context.Context, device, path, fsType string, flags []string) error {
	safe := mount.NewSafeFormatAndMount(n.opts.Mounter, ctxExec{n.opts.Exec, ctx})
	existing, err := safe.GetDiskFormat(device)
	if err != nil {
		return status.Errorf(codes.Internal, "probe filesystem on %s (not formatting): %v", device, err)
	}
	if existing == "" {
		empty, err := zeroEnds(device)
		if err != nil {
			return status.Errorf(codes.Internal, "read %s to confirm it is empty (not formatting): %v", device, err)
		}
		if !empty {
			return status.Errorf(codes.FailedPrecondition,
				"%s holds data but no filesystem blkid recognises; refusing to format it", device)
		}
	} else if existing != fsType {
		return status.Errorf(codes.FailedPrecondition, "%s already holds a %s filesystem, not the requested %s; not reformatting", device, existing, fsType)
	}
	if err := safe.FormatAndMount(device, path, fsType, flags); err != nil {
		return status.Errorf(codes.Internal, "format and mount %s at %s: %v", device, path, err)
	}
	return nil
}

// probeBytes is how much of each end of a device must be zero to count as empty:
// filesystems and partition tables keep their signatures within it.
const probeBytes = 1 << 20

// zeroEnds reports whether the first and last probeBytes of a device are zero.
func zeroEnds(device string) (bool, error) {
	f, err := os.Open(device)
	if err != nil {
		return false, err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	buf := make([]byte, probeBytes)
	for _, off := range []int64{0, max(0, size-probeBytes)} {
		n, err := f.ReadAt(buf, off)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == min(probeBytes, size-off)) {
			return false, err
		}
		if !allZero(buf[:n]) {
			return false, nil
		}
	}
	return true, nil
}

// zeroChunk is what allZero compares with, a chunk at a time: bytes.Equal
// is vectorised, and no buffer of zeros the size of the probe is allocated
// per call.
var zeroChunk [4096]byte

func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroChunk))
		if !bytes.Equal(b[:n], zeroChunk[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// mountedDevice returns the device mounted at path, or "" if none.
func (n *NodeServer) mountedDevice(path string) (string, error) {
	mp, _, err := n.mountAt(path)
	return mp.Device, err
}

// mountAt returns the mount at path; ok is false when nothing is mounted there.
func (n *NodeServer) mountAt(path string) (mp mount.MountPoint, ok bool, err error) {
	mps, err := n.opts.Mounter.List()
	if err != nil {
		return mp, false, status.Errorf(codes.Internal, "list mounts: %v", err)
	}
	clean := filepath.Clean(path)
	for _, mp := range mps {
		// /proc/mounts escapes spaces and the like (\040).
		if filepath.Clean(mountinfo.Unescape(mp.Path)) == clean {
			return mp, true, nil
		}
	}
	return mp, false, nil
}

// sameDevice compares device paths through symlinks (/dev/disk/by-id/...).
func sameDevice(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// NodeUnstageVolume unmounts the staging path and releases the device. If the
// device is still used by someone else on the node, it refuses with
// FAILED_PRECONDITION rather than pretending: kubelet will retry.
func (n *NodeServer) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := require("volume ID", id, "staging target path", staging); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	staging, err := n.confine("staging target path", staging)
	if err != nil {
		return nil, err
	}
	ctx, done, err := n.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	st, ok, err := n.loadState(id)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if ok && !samePath(st.StagingPath, staging) {
		return nil, status.Errorf(codes.InvalidArgument, "volume %s is staged at %s, not %s", id, st.StagingPath, staging)
	}
	// Before anything is unmounted: a staged filesystem still bind-mounted
	// into a pod stays as it is, and kubelet retries once the pod is gone.
	if err := n.checkNotPublished(staging); err != nil {
		return nil, err
	}
	if err := mount.CleanupMountPoint(staging, n.opts.Mounter, true); err != nil {
		return nil, status.Errorf(codes.Internal, "unmount staging path %s: %v", staging, err)
	}
	if !ok {
		return &csi.NodeUnstageVolumeResponse{}, nil // never staged here, or already unstaged
	}
	plane, err := n.plane(st.DataPlane)
	if err != nil {
		return nil, err
	}
	if err := plane.Detach(ctx, st.Target); err != nil {
		return nil, dataPlaneStatus("detach", err)
	}
	if err := os.Remove(n.statePath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.Internal, "forget staged volume: %v", err)
	}
	klog.InfoS("Volume unstaged", "volume", id)
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staged filesystem (or, for block volumes,
// just the one device node) at the target path.
func (n *NodeServer) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, tpath, staging, vcap := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath(), req.GetVolumeCapability()
	if err := require("volume ID", id, "target path", tpath); err != nil {
		return nil, err
	}
	if vcap == nil {
		return nil, status.Error(codes.InvalidArgument, "volume capability missing")
	}
	if err := requireID("staging target path", staging); err != nil {
		return nil, err
	}
	if _, err := checkCapabilities([]*csi.VolumeCapability{vcap}); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	tpath, err := n.confine("target path", tpath)
	if err != nil {
		return nil, err
	}
	if staging, err = n.confine("staging target path", staging); err != nil {
		return nil, err
	}
	ctx, done, err := n.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	st, ok, err := n.loadState(id)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged on node %s", id, n.opts.NodeID)
	}
	// The source is this volume's own staging mount, never a path the caller
	// names: another volume's staging path must not be published as this one.
	if !samePath(st.StagingPath, staging) {
		return nil, status.Errorf(codes.InvalidArgument, "volume %s is staged at %s, not %s", id, st.StagingPath, staging)
	}
	mode := vcap.GetAccessMode().GetMode()
	mounted, err := n.mountedPaths()
	if err != nil {
		return nil, err
	}
	already, err := admitPublication(&st, tpath, mode, req.GetReadonly(), mounted)
	if err != nil {
		return nil, err
	}
	if already {
		return &csi.NodePublishVolumeResponse{}, nil
	}
	options := []string{"bind"}
	if req.GetReadonly() {
		options = append(options, "ro")
	}
	var source string
	if vcap.GetBlock() != nil {
		plane, err := n.plane(st.DataPlane)
		if err != nil {
			return nil, err
		}
		if source, err = plane.Device(ctx, st.Target); err != nil {
			return nil, dataPlaneStatus("find device", err)
		}
		if source == "" {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is staged but its device is gone", id)
		}
		if err := os.MkdirAll(filepath.Dir(tpath), 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "create target dir: %v", err)
		}
		f, err := os.OpenFile(tpath, os.O_CREATE, 0o640)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "create target file: %v", err)
		}
		f.Close()
	} else {
		source = staging
		if dev, err := n.mountedDevice(staging); err != nil {
			return nil, err
		} else if dev == "" {
			return nil, status.Errorf(codes.FailedPrecondition, "staging path %s is not mounted", staging)
		}
		options = append(options, vcap.GetMount().GetMountFlags()...)
		if err := os.MkdirAll(tpath, 0o750); err != nil {
			return nil, status.Errorf(codes.Internal, "create target path: %v", err)
		}
	}
	if dev, err := n.mountedDevice(tpath); err != nil {
		return nil, err
	} else if dev == "" {
		// mount-utils makes a bind with options in two steps (bind, then
		// remount with the options), which is what makes "ro" hold on a
		// filesystem (Linux does not check it when a device node is opened
		// for writing). A remount of our own on top would stack a second
		// bind that unpublish leaves behind.
		if err := n.opts.Mounter.Mount(source, tpath, "", options); err != nil {
			return nil, status.Errorf(codes.Internal, "bind mount %s at %s: %v", source, tpath, err)
		}
	}
	// Mounted before a crash lost its record, or just now: recorded either way,
	// and a mount that cannot be recorded is taken back, so the access-mode
	// rules never miss a target.
	recordPublication(&st, tpath, mode, req.GetReadonly())
	if err := n.saveState(id, st); err != nil {
		_ = n.opts.Mounter.Unmount(tpath)
		return nil, status.Errorf(codes.Internal, "record publication: %v", err)
	}
	klog.InfoS("Volume published", "volume", id, "targetPath", tpath, "readonly", req.GetReadonly())
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target path and removes it; idempotent.
func (n *NodeServer) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, tpath := req.GetVolumeId(), req.GetTargetPath()
	if err := require("volume ID", id, "target path", tpath); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	tpath, err := n.confine("target path", tpath)
	if err != nil {
		return nil, err
	}
	unlock, err := n.lock(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := mount.CleanupMountPoint(tpath, n.opts.Mounter, true); err != nil {
		return nil, status.Errorf(codes.Internal, "unmount %s: %v", tpath, err)
	}
	if st, ok, err := n.loadState(id); err == nil && ok {
		if _, recorded := st.Published[tpath]; recorded {
			delete(st.Published, tpath)
			if err := n.saveState(id, st); err != nil {
				return nil, status.Errorf(codes.Internal, "forget publication: %v", err)
			}
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// mountedPaths is the set of mount points, cleaned and unescaped as mountAt
// compares them, from one read of the mount table.
func (n *NodeServer) mountedPaths() (map[string]bool, error) {
	mps, err := n.opts.Mounter.List()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list mounts: %v", err)
	}
	set := make(map[string]bool, len(mps))
	for _, mp := range mps {
		set[filepath.Clean(mountinfo.Unescape(mp.Path))] = true
	}
	return set, nil
}

// NodeGetVolumeStats reports usage (health is NodeGetVolumeHealth's).
func (n *NodeServer) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, vpath := req.GetVolumeId(), req.GetVolumePath()
	if err := require("volume ID", id, "volume path", vpath); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	vpath, err := n.confineVolumePath(vpath)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(vpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", vpath)
	} else if err != nil {
		return nil, status.Errorf(codes.Internal, "stat %s: %v", vpath, err)
	}
	if _, ok, err := n.loadState(id); err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	} else if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, n.opts.NodeID)
	}
	if !fi.IsDir() {
		// A block volume's target is the device node itself.
		size, err := deviceSize(vpath)
		if err != nil {
			return nil, status.Errorf(codes.Internal, "size of %s: %v", vpath, err)
		}
		return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}}}, nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(vpath, &fs); err != nil {
		return nil, status.Errorf(codes.Internal, "statfs %s: %v", vpath, err)
	}
	bsize := int64(fs.Bsize)
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{
			{Unit: csi.VolumeUsage_BYTES, Total: int64(fs.Blocks) * bsize, Available: int64(fs.Bavail) * bsize,
				Used: int64(fs.Blocks-fs.Bfree) * bsize},
			{Unit: csi.VolumeUsage_INODES, Total: int64(fs.Files), Available: int64(fs.Ffree), Used: int64(fs.Files - fs.Ffree)},
		},
	}, nil
}

func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}

// NodeExpandVolume makes the device pick up the new size and grows the
// filesystem online.
func (n *NodeServer) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, vpath := req.GetVolumeId(), req.GetVolumePath()
	if err := require("volume ID", id, "volume path", vpath); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	vpath, err := n.confineVolumePath(vpath)
	if err != nil {
		return nil, err
	}
	// Locked before the state is read: an unstage running meanwhile would
	// otherwise leave this call rescanning a target it has just detached.
	ctx, done, err := n.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	st, ok, err := n.loadState(id)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, n.opts.NodeID)
	}
	if _, err := os.Stat(vpath); err != nil {
		return nil, status.Errorf(codes.NotFound, "volume path %s: %v", vpath, err)
	}
	plane, err := n.plane(st.DataPlane)
	if err != nil {
		return nil, err
	}
	size, err := plane.Rescan(ctx, st.Target)
	if err != nil {
		return nil, dataPlaneStatus("rescan", err)
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); size < want {
		// NVMe rescans complete asynchronously in the kernel; kubelet retries.
		return nil, status.Errorf(codes.Unavailable, "device of volume %s still reports %d bytes, want %d; retry", id, size, want)
	}
	if st.Block || req.GetVolumeCapability().GetBlock() != nil {
		return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
	}
	dev, err := plane.Device(ctx, st.Target)
	if err != nil || dev == "" {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s's device is gone: %v", id, err)
	}
	if _, err := mount.NewResizeFs(ctxExec{n.opts.Exec, ctx}).Resize(dev, st.StagingPath); err != nil {
		return nil, status.Errorf(codes.Internal, "grow filesystem on %s: %v", dev, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(st.StagingPath, &fs); err == nil {
		klog.InfoS("Volume expanded on node", "volume", id, "deviceBytes", size, "filesystemBytes", int64(fs.Blocks)*int64(fs.Bsize))
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// confineVolumePath is confine for the read-mostly RPCs (stats, expand): a
// path outside the kubelet dir holds no volume of this node, so it is
// NOT_FOUND, as the spec asks for a volume path that does not exist.
func (n *NodeServer) confineVolumePath(p string) (string, error) {
	resolved, err := n.confine("volume path", p)
	if status.Code(err) == codes.InvalidArgument {
		return "", status.Errorf(codes.NotFound, "no volume at %.200q: %s", p, status.Convert(err).Message())
	}
	return resolved, err
}

// samePath compares two paths as the kernel would see them.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := resolveExisting(filepath.Clean(a))
	rb, err2 := resolveExisting(filepath.Clean(b))
	return err1 == nil && err2 == nil && ra == rb
}

// checkNotPublished fails with FAILED_PRECONDITION when the filesystem
// mounted at staging is also mounted somewhere else (a pod's bind mount).
func (n *NodeServer) checkNotPublished(staging string) error {
	mps, err := n.opts.Mounter.List()
	if err != nil {
		return status.Errorf(codes.Internal, "list mounts: %v", err)
	}
	device := ""
	for _, mp := range mps {
		if filepath.Clean(mountinfo.Unescape(mp.Path)) == staging {
			device = mp.Device
		}
	}
	if device == "" {
		return nil
	}
	var others []string
	for _, mp := range mps {
		if p := filepath.Clean(mountinfo.Unescape(mp.Path)); mp.Device == device && p != staging {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		return status.Errorf(codes.FailedPrecondition, "staging path %s is still published at %s; unpublish first", staging, strings.Join(others, ", "))
	}
	return nil
}

// dataPlaneStatus maps data plane errors: a device in use is FAILED_PRECONDITION
// (kubelet retries once the user is gone), a missing backing file NOT_FOUND,
// deadlines DEADLINE_EXCEEDED, an unreachable storage target UNAVAILABLE.
func dataPlaneStatus(op string, err error) error {
	if rds.KindOf(err) != nil && !errors.Is(err, dataplane.ErrHostNotAllowed) {
		// The loop data plane read the export's allow-list from RDS
		// (--restrict-hosts): RDS unreachable is UNAVAILABLE, and so on.
		return rdsStatus(op, err)
	}
	code := codes.Internal
	switch {
	case errors.Is(err, dataplane.ErrInUse):
		code = codes.FailedPrecondition
	case errors.Is(err, os.ErrNotExist):
		code = codes.NotFound
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, dataplane.ErrNotAttached):
		code = codes.FailedPrecondition
	case errors.Is(err, dataplane.ErrHostNotAllowed):
		// The storage refuses this node: the export follows another
		// node's claim (a publish elsewhere, or this node was fenced).
		code = codes.FailedPrecondition
	case errors.Is(err, dataplane.ErrTargetUnreachable):
		// The storage is down or cut off: kubelet retries, and the
		// volume is usable again once it answers.
		code = codes.Unavailable
	}
	return status.Errorf(code, "%s: %v", op, err)
}

// ctxExec binds mount-utils' command execution (mkfs, blkid, fsck, resize2fs)
// to a call's context so none of them can outlive its deadline.
type ctxExec struct {
	utilexec.Interface
	ctx context.Context
}

func (e ctxExec) Command(cmd string, args ...string) utilexec.Cmd {
	return e.Interface.CommandContext(e.ctx, cmd, args...)
}
