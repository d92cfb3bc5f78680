package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/mountinfo"
)

// needRoot skips without the privileges real mounts need; CI runs as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root, but this process is not")
		}
		t.Skip("needs root for real tmpfs mounts")
	}
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

func isMountPoint(t *testing.T, dir string) bool {
	t.Helper()
	ms, err := mountinfo.Read("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.MountPoint == dir {
			return true
		}
	}
	return false
}

var blockCap = &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}

// TestNodeTouchesNothingOutsideKubeletDir drives every node RPC with hostile
// volume IDs and paths, on real tmpfs mounts: outside the kubelet dir, behind a
// symlink, through "..", another volume's staging path. Nothing outside the
// kubelet dir may be unmounted or removed, no state file may appear outside
// the state dir, and each call must end in the code the spec gives it.
func TestNodeTouchesNothingOutsideKubeletDir(t *testing.T) {
	needRoot(t)
	base := shortTempDir(t)
	kubelet := filepath.Join(base, "kubelet")
	outside := filepath.Join(base, "outside", "data")
	stateDir := filepath.Join(base, "state")
	mountTmpfs(t, outside)
	precious := filepath.Join(outside, "precious")
	if err := os.WriteFile(precious, []byte("irreplaceable"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another volume's staging mount, inside the kubelet dir.
	otherStaging := filepath.Join(kubelet, "plugins", "other", "globalmount")
	mountTmpfs(t, otherStaging)
	if err := os.WriteFile(filepath.Join(otherStaging, "theirs"), []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	evil := filepath.Join(kubelet, "pods", "evil")
	if err := os.MkdirAll(filepath.Dir(evil), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, evil); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(base, "device")
	if err := os.WriteFile(dev, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ns, err := NewNodeServer(NodeOptions{NodeID: "n1", DataPlanes: map[string]dataplane.Plane{"file": &filePlane{device: dev}},
		StateDir: stateDir, KubeletDir: kubelet, Mounter: mount.New("")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pc := map[string]string{"nqn": "nqn.2000-02.com.mikrotik:pvc-a"}
	// pvc-a is staged (block: no mount needed) at its own staging path.
	ownStaging := filepath.Join(kubelet, "plugins", "a", "staging")
	if _, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: ownStaging,
		VolumeCapability: blockCap, PublishContext: pc}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(kubelet, "pods", "p1", "volumeDevices", "pvc-a")
	dotdot := kubelet + "/pods/../../outside/data"

	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"unpublish a path outside", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: outside})
			return err
		}, codes.InvalidArgument},
		{"unpublish through a symlink", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: evil})
			return err
		}, codes.InvalidArgument},
		{"unpublish through ..", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: dotdot})
			return err
		}, codes.InvalidArgument},
		{"unpublish a relative path", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: "outside/data"})
			return err
		}, codes.InvalidArgument},
		{"unpublish the kubelet dir itself", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: kubelet})
			return err
		}, codes.InvalidArgument},
		{"unstage a path outside", func() error {
			_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: outside})
			return err
		}, codes.InvalidArgument},
		{"unstage through a symlink", func() error {
			_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: evil})
			return err
		}, codes.InvalidArgument},
		{"unstage another volume's staging path", func() error {
			_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: otherStaging})
			return err
		}, codes.InvalidArgument},
		{"unpublish with a traversing volume ID", func() error {
			_, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "../x", TargetPath: otherStaging})
			return err
		}, codes.NotFound},
		{"unstage with a traversing volume ID", func() error {
			_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "../../outside/data/precious", StagingTargetPath: otherStaging})
			return err
		}, codes.NotFound},
		{"stage with a traversing volume ID", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "../outside/x", StagingTargetPath: filepath.Join(kubelet, "s"),
				VolumeCapability: blockCap, PublishContext: pc})
			return err
		}, codes.NotFound},
		{"stage at a path outside", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "pvc-b", StagingTargetPath: outside,
				VolumeCapability: blockCap, PublishContext: pc})
			return err
		}, codes.InvalidArgument},
		{"stage with a hostile NVMe address", func() error {
			_, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "pvc-b", StagingTargetPath: filepath.Join(kubelet, "s"),
				VolumeCapability: blockCap, PublishContext: map[string]string{"nqn": "nqn.2000-02.com.mikrotik:pvc-b", "nvmeAddress": "$(id)"}})
			return err
		}, codes.InvalidArgument},
		{"publish at a path outside", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: ownStaging,
				TargetPath: filepath.Join(outside, "dev"), VolumeCapability: blockCap, PublishContext: pc})
			return err
		}, codes.InvalidArgument},
		{"publish another volume's staging path", func() error {
			_, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: otherStaging,
				TargetPath: target, VolumeCapability: blockCap, PublishContext: pc})
			return err
		}, codes.InvalidArgument},
		{"stats with a traversing volume ID", func() error {
			_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "../state/pvc-a", VolumePath: otherStaging})
			return err
		}, codes.NotFound},
		{"stats of a path outside", func() error {
			_, err := ns.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "pvc-a", VolumePath: outside})
			return err
		}, codes.NotFound},
		{"expand a path outside", func() error {
			_, err := ns.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "pvc-a", VolumePath: outside})
			return err
		}, codes.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); status.Code(err) != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !isMountPoint(t, outside) {
				t.Fatal("the tmpfs outside the kubelet dir was unmounted")
			}
			if b, err := os.ReadFile(precious); err != nil || string(b) != "irreplaceable" {
				t.Fatalf("data outside the kubelet dir changed: %q, %v", b, err)
			}
			if !isMountPoint(t, otherStaging) {
				t.Fatal("another volume's staging mount was unmounted")
			}
			if fi, err := os.Lstat(evil); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("the symlink was replaced or removed: %v", err)
			}
			strays, _ := filepath.Glob(filepath.Join(base, "*", "*.json"))
			strays2, _ := filepath.Glob(filepath.Join(base, "*.json"))
			for _, f := range append(strays, strays2...) {
				if filepath.Dir(f) != stateDir {
					t.Fatalf("state file written outside the state dir: %s", f)
				}
			}
		})
	}
	// The legitimate path still works: publish and unpublish pvc-a's device.
	if _, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-a", StagingTargetPath: ownStaging,
		TargetPath: target, VolumeCapability: blockCap, PublishContext: pc}); err != nil {
		t.Fatalf("legitimate publish: %v", err)
	}
	if !isMountPoint(t, target) {
		t.Fatal("legitimate publish mounted nothing")
	}
	if _, err := ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-a", TargetPath: target}); err != nil {
		t.Fatalf("legitimate unpublish: %v", err)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Fatalf("target not removed: %v", err)
	}
}

// TestUnstageRefusesWhilePublished: NodeUnstage of a filesystem volume still
// bind-mounted into a pod refuses before it unmounts anything, so the staging
// mount is intact for the retry once the pod is gone.
func TestUnstageRefusesWhilePublished(t *testing.T) {
	r := newLoopRig(t)
	vcap := mountCap("ext4")
	vol := r.create(t, "pvc-published", 64<<20, []*csi.VolumeCapability{vcap}, nil)
	a := r.attach(t, vol, "node-a", vcap)
	ns := r.nodes["node-a"]
	ctx := context.Background()
	_, err := ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: a.staging})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), a.tpath) {
		t.Fatalf("unstage while published: %v, want FailedPrecondition naming %s", err, a.tpath)
	}
	if !isMountPoint(t, a.staging) {
		t.Fatal("the refused unstage unmounted the staging path anyway")
	}
	r.detach(t, a)
}

// TestPathsWithSpaces: the kernel escapes a space in a mount path as \040; a
// staging path with spaces must still be recognised as mounted, so a repeated
// stage or publish mounts nothing twice and unstage finds its mount.
func TestPathsWithSpaces(t *testing.T) {
	r := newLoopRig(t)
	vcap := mountCap("ext4")
	vol := r.create(t, "pvc-spaced", 64<<20, []*csi.VolumeCapability{vcap}, nil)
	ctx := context.Background()
	pub, err := r.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol.GetVolumeId(),
		NodeId: "node-a", VolumeCapability: vcap, VolumeContext: vol.GetVolumeContext()})
	if err != nil {
		t.Fatal(err)
	}
	s := staged{vol: vol, node: "node-a", vcap: vcap, pc: pub.GetPublishContext(),
		staging: filepath.Join(r.dir, "node-a", "staging dir", "with space"),
		tpath:   filepath.Join(r.dir, "node-a", "pod dir", "with\ttab")}
	ns := r.nodes["node-a"]
	t.Cleanup(func() {
		ns.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: vol.GetVolumeId(), TargetPath: s.tpath})
		ns.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: s.staging})
	})
	for i := 0; i < 2; i++ {
		if _, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: s.staging,
			VolumeCapability: vcap, PublishContext: s.pc, VolumeContext: vol.GetVolumeContext()}); err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
		if _, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: vol.GetVolumeId(), StagingTargetPath: s.staging,
			TargetPath: s.tpath, VolumeCapability: vcap, PublishContext: s.pc, VolumeContext: vol.GetVolumeContext()}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if n := countMounts(t, r.dir); n != 2 {
		t.Fatalf("%d mounts under the node's dir after repeated stage and publish, want 2 (staging and target)", n)
	}
	r.detach(t, s)
}
