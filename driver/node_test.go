package driver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
	testingexec "k8s.io/utils/exec/testing"

	"github.com/rds-csi/rds-csi/driver/dataplane"
)

// filePlane is a data plane whose "device" is a plain file, so the formatting
// rules can be tested without root.
type filePlane struct {
	mu       sync.Mutex
	device   string
	detached int
}

func (f *filePlane) Name() string { return "file" }
func (f *filePlane) Attach(context.Context, dataplane.Target) (string, error) {
	return f.device, nil
}
func (f *filePlane) Device(context.Context, dataplane.Target) (string, error) { return f.device, nil }
func (f *filePlane) Detach(context.Context, dataplane.Target) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.detached++
	return nil
}
func (f *filePlane) Rescan(context.Context, dataplane.Target) (int64, error) { return 0, nil }

// scriptedExec answers every command through respond and records the calls.
func scriptedExec(respond func(cmd string, args []string) ([]byte, error)) (*testingexec.FakeExec, *[]string) {
	var mu sync.Mutex
	calls := &[]string{}
	fe := &testingexec.FakeExec{}
	for i := 0; i < 64; i++ {
		fe.CommandScript = append(fe.CommandScript, func(cmd string, args ...string) utilexec.Cmd {
			mu.Lock()
			*calls = append(*calls, cmd+" "+strings.Join(args, " "))
			mu.Unlock()
			out, err := respond(cmd, args)
			act := func() ([]byte, []byte, error) { return out, nil, err }
			return testingexec.InitFakeCmd(&testingexec.FakeCmd{
				CombinedOutputScript: []testingexec.FakeAction{act},
				OutputScript:         []testingexec.FakeAction{act},
				RunScript:            []testingexec.FakeAction{act},
			}, cmd, args...)
		})
	}
	return fe, calls
}

func exitStatus(n int) error { return testingexec.FakeExitError{Status: n} }

var stageCap = &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}

type formatCase struct {
	name       string
	data       []byte // written at offset at of the 8 MiB device (4096 when zero)
	at         int64
	blkid      func() ([]byte, error)
	wantCode   codes.Code
	wantFormat bool
}

func (c formatCase) offset() int64 {
	if c.at == 0 {
		return 4096
	}
	return c.at
}

// TestNeverFormatsWhenUnsure is the rule that matters most on a node: a device
// is formatted only when it provably holds nothing.
func TestNeverFormatsWhenUnsure(t *testing.T) {
	cases := []formatCase{
		{"probe fails", nil, 0, func() ([]byte, error) { return []byte("blkid: I/O error"), exitStatus(4) }, codes.Internal, false},
		{"no signature but data present", []byte("precious data"), 0, func() ([]byte, error) { return nil, exitStatus(2) }, codes.FailedPrecondition, false},
		// zeroEnds reads each end in chunks: data in a later chunk of the head
		// and in the tail must be seen too.
		{"data late in the first MiB", []byte("precious data"), 1<<20 - 100, func() ([]byte, error) { return nil, exitStatus(2) }, codes.FailedPrecondition, false},
		{"data in the last MiB", []byte("precious data"), 8<<20 - 600, func() ([]byte, error) { return nil, exitStatus(2) }, codes.FailedPrecondition, false},
		{"partition table", nil, 0, func() ([]byte, error) { return []byte("PTTYPE=gpt\n"), nil }, codes.FailedPrecondition, false},
		{"other filesystem", nil, 0, func() ([]byte, error) { return []byte("TYPE=xfs\n"), nil }, codes.FailedPrecondition, false},
		{"existing ext4 is mounted as is", []byte("ext4 data"), 0, func() ([]byte, error) { return []byte("TYPE=ext4\n"), nil }, codes.OK, false},
		{"empty device is formatted", nil, 0, func() ([]byte, error) { return nil, exitStatus(2) }, codes.OK, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dev := filepath.Join(dir, "device")
			if err := os.WriteFile(dev, make([]byte, 8<<20), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.data != nil {
				f, _ := os.OpenFile(dev, os.O_WRONLY, 0)
				f.WriteAt(tc.data, tc.offset())
				f.Close()
			}
			fe, calls := scriptedExec(func(cmd string, args []string) ([]byte, error) {
				switch cmd {
				case "blkid":
					return tc.blkid()
				default: // mkfs.*, fsck
					return nil, nil
				}
			})
			mounter := mount.NewFakeMounter(nil)
			ns, err := NewNodeServer(NodeOptions{NodeID: "n1", DataPlanes: map[string]dataplane.Plane{"file": &filePlane{device: dev}},
				StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mounter, Exec: fe})
			if err != nil {
				t.Fatal(err)
			}
			_, err = ns.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{
				VolumeId: "pvc-1", StagingTargetPath: filepath.Join(dir, "staging"), VolumeCapability: stageCap,
				PublishContext: map[string]string{"nqn": "nqn.2000-02.com.mikrotik:pvc-1"},
			})
			if status.Code(err) != tc.wantCode {
				t.Fatalf("stage: %v, want %v", err, tc.wantCode)
			}
			formatted := false
			for _, c := range *calls {
				if strings.HasPrefix(c, "mkfs") {
					formatted = true
				}
			}
			if formatted != tc.wantFormat {
				t.Fatalf("formatted=%v, want %v; commands: %q", formatted, tc.wantFormat, *calls)
			}
			mounted := len(mounter.GetLog()) > 0
			if mounted != (tc.wantCode == codes.OK) {
				t.Fatalf("mounted=%v with result %v", mounted, err)
			}
			if tc.data != nil {
				b, _ := os.ReadFile(dev)
				if at := tc.offset(); !strings.Contains(string(b[at:at+int64(len(tc.data))]), string(tc.data)) {
					t.Fatal("device data changed")
				}
			}
		})
	}
}

func TestStageIdempotentAndWrongDevice(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "device")
	os.WriteFile(dev, make([]byte, 1<<20), 0o600)
	staging := filepath.Join(dir, "staging")
	fe, calls := scriptedExec(func(cmd string, args []string) ([]byte, error) { return []byte("TYPE=ext4\n"), nil })
	mounter := mount.NewFakeMounter(nil)
	plane := &filePlane{device: dev}
	ns, err := NewNodeServer(NodeOptions{NodeID: "n1", DataPlanes: map[string]dataplane.Plane{"file": plane},
		StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mounter, Exec: fe})
	if err != nil {
		t.Fatal(err)
	}
	req := &csi.NodeStageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, VolumeCapability: stageCap,
		PublishContext: map[string]string{"nqn": "nqn.2000-02.com.mikrotik:pvc-1"}}
	for i := 0; i < 3; i++ {
		if _, err := ns.NodeStageVolume(context.Background(), req); err != nil {
			t.Fatalf("stage %d: %v", i, err)
		}
	}
	if n := len(mounter.GetLog()); n != 1 {
		t.Fatalf("%d mounts after three stages, want 1; commands %q", n, *calls)
	}
	// The staging path now holds another device: refuse, don't stack mounts.
	plane.device = filepath.Join(dir, "other")
	if _, err := ns.NodeStageVolume(context.Background(), req); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stage onto a path holding another device: %v", err)
	}
	// Unstage twice: one unmount, one detach, then nothing left to do.
	for i := 0; i < 2; i++ {
		if _, err := ns.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging}); err != nil {
			t.Fatalf("unstage %d: %v", i, err)
		}
	}
	if plane.detached != 1 {
		t.Fatalf("detached %d times, want 1", plane.detached)
	}
}

// TestSELinuxContextReachesBothMounts: with seLinuxMount: true the kubelet
// passes "-o context=..." to NodeStage and NodePublish; the option must reach
// the filesystem mount (where SELinux applies it) and ride along the bind.
func TestSELinuxContextReachesBothMounts(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "device")
	os.WriteFile(dev, make([]byte, 1<<20), 0o600)
	fe, _ := scriptedExec(func(cmd string, args []string) ([]byte, error) { return []byte("TYPE=ext4\n"), nil })
	mounter := mount.NewFakeMounter(nil)
	ns, err := NewNodeServer(NodeOptions{NodeID: "n1", DataPlanes: map[string]dataplane.Plane{"file": &filePlane{device: dev}},
		StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mounter, Exec: fe})
	if err != nil {
		t.Fatal(err)
	}
	const seContext = `context="system_u:object_r:container_file_t:s0:c10,c20"`
	vcap := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4", MountFlags: []string{seContext}}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER}}
	staging, target := filepath.Join(dir, "staging"), filepath.Join(dir, "target")
	pc := map[string]string{"nqn": "nqn.2000-02.com.mikrotik:pvc-1"}
	ctx := context.Background()
	if _, err := ns.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, VolumeCapability: vcap, PublishContext: pc}); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, TargetPath: target,
		VolumeCapability: vcap, PublishContext: pc}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mp := range mounter.MountPoints {
		if slices.Contains(mp.Opts, seContext) {
			seen[mp.Path] = true
		}
	}
	if !seen[staging] || !seen[target] {
		t.Fatalf("context option on %v, want on the staging mount and the bind at the target: %+v", seen, mounter.MountPoints)
	}
}

// The node reconnects forever unless the volume says otherwise (nvme-cli's
// 600 s would drop a mounted volume during a long RDS outage), and passes
// the fail-fast timeout through from the volume context.
func TestTargetConnectOptions(t *testing.T) {
	vc := map[string]string{paramNQN: "nqn.2000-02.com.mikrotik:pvc-1", paramNVMeAddress: "10.0.0.1"}
	tg, err := target("pvc-1", nil, vc)
	if err != nil {
		t.Fatal(err)
	}
	if tg.CtrlLossTmo != "-1" || tg.FastIOFailTmo != "" {
		t.Fatalf("defaults: ctrl-loss %q, fail-fast %q; want -1 and unset", tg.CtrlLossTmo, tg.FastIOFailTmo)
	}
	vc[paramCtrlLossTmo], vc[paramFastIOFailTmo] = "600", "30"
	if tg, err = target("pvc-1", nil, vc); err != nil {
		t.Fatal(err)
	}
	if tg.CtrlLossTmo != "600" || tg.FastIOFailTmo != "30" {
		t.Fatalf("from the volume: ctrl-loss %q, fail-fast %q; want 600 and 30", tg.CtrlLossTmo, tg.FastIOFailTmo)
	}
}

// TestNodeExpandWaitsForTheVolumesLock: while another call holds the volume
// (here a NodeStage that has not written its state yet), expand answers
// ABORTED for the kubelet to retry; reading the state first answered
// NOT_FOUND, "not staged", about a volume that was being staged.
func TestNodeExpandWaitsForTheVolumesLock(t *testing.T) {
	dir := t.TempDir()
	ns, err := NewNodeServer(NodeOptions{NodeID: "n1", DataPlanes: map[string]dataplane.Plane{"file": &filePlane{}},
		StateDir: filepath.Join(dir, "state"), KubeletDir: dir, Mounter: mount.NewFakeMounter(nil)})
	if err != nil {
		t.Fatal(err)
	}
	unlock, ok := ns.locks.TryLock("pvc-1")
	if !ok {
		t.Fatal("volume lock taken")
	}
	defer unlock()
	_, err = ns.NodeExpandVolume(context.Background(), &csi.NodeExpandVolumeRequest{VolumeId: "pvc-1", VolumePath: filepath.Join(dir, "staging")})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("expand while the volume is busy: %v, want Aborted", err)
	}
}

// TestDefaultDataPlaneIsExplicit: a lone data plane is the default; among
// several, none is picked silently (map order would pick a different one on
// each start).
func TestDefaultDataPlaneIsExplicit(t *testing.T) {
	opts := func(def string, names ...string) NodeOptions {
		planes := map[string]dataplane.Plane{}
		for _, n := range names {
			planes[n] = &filePlane{}
		}
		return NodeOptions{NodeID: "n1", DataPlanes: planes, DefaultDataPlane: def, StateDir: t.TempDir()}
	}
	for _, tc := range []struct {
		def    string
		planes []string
		want   string
	}{{"", []string{"loop"}, "loop"}, {"nvme", []string{"loop", "nvme"}, "nvme"}} {
		ns, err := NewNodeServer(opts(tc.def, tc.planes...))
		if err != nil {
			t.Fatalf("planes %v, default %q: %v", tc.planes, tc.def, err)
		}
		if ns.opts.DefaultDataPlane != tc.want {
			t.Fatalf("planes %v, default %q: chose %q, want %q", tc.planes, tc.def, ns.opts.DefaultDataPlane, tc.want)
		}
	}
	for i := 0; i < 20; i++ {
		_, err := NewNodeServer(opts("", "loop", "nvme", "file"))
		if err == nil || !strings.Contains(err.Error(), "file, loop, nvme") {
			t.Fatalf("several planes, no default: %v, want an error naming them in order", err)
		}
	}
}
