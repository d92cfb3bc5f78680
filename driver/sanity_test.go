package driver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	"github.com/onsi/gomega"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/loop"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	sanitylane "github.com/rds-csi/rds-csi/sanity"
)

// sanityNode answers only the node calls the controller specs need to learn the
// node ID. It stands in for the node plugin where real loop devices and mounts
// are unavailable (not root); the "Node Service" specs are skipped then (see
// TestSanity), and controller tests that never stage a volume use it too.
type sanityNode struct {
	csi.UnimplementedNodeServer
	id string
}

func (n sanityNode) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{NodeId: n.id}, nil
}

// NodeUnpublishVolume and NodeUnstageVolume are what csi-sanity's cleanup calls
// for every volume it published; nothing was ever staged, so there is nothing to
// undo.
func (n sanityNode) NodeUnpublishVolume(context.Context, *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

func (n sanityNode) NodeUnstageVolume(context.Context, *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	return &csi.NodeUnstageVolumeResponse{}, nil
}

func (n sanityNode) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// startDriver runs the controller against a fresh emulator over real SSH and
// returns the CSI socket path.
func startDriver(t testing.TB, nodeID string, poolSize int64) (string, *Driver, *emulatortest.Emulator) {
	t.Helper()
	return startDriverOn(t, emulatortest.Start(t, emulatortest.Options{PoolSize: poolSize}), nodeID)
}

// startDriverOn runs a driver against an existing emulator, with the stub node.
func startDriverOn(t testing.TB, emu *emulatortest.Emulator, nodeID string) (string, *Driver, *emulatortest.Emulator) {
	t.Helper()
	return startDriverWithNode(t, emu, nodeID, sanityNode{id: nodeID})
}

// startDriverWithNode runs controller and the given node service in one process
// (--mode=all) against an existing emulator.
func startDriverWithNode(t testing.TB, emu *emulatortest.Emulator, nodeID string, ns csi.NodeServer) (string, *Driver, *emulatortest.Emulator) {
	t.Helper()
	return startDriverOpts(t, emu, nodeID, ns, nil)
}

// startDriverOpts is startDriverWithNode with the driver's options adjusted
// by opts (nil keeps the defaults: base path /storage-pool/k8s).
func startDriverOpts(t testing.TB, emu *emulatortest.Emulator, nodeID string, ns csi.NodeServer, opts func(*Options)) (string, *Driver, *emulatortest.Emulator) {
	t.Helper()
	conn, err := rds.NewSSHConnector(nil, rds.SSHConfig{
		Address: emu.Addr(), Signer: emu.ClientSigner(), KnownHostsLine: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(emu.HostKey()))),
	})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := rds.NewManager(rds.ManagerConfig{Connector: conn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	o := Options{
		NodeID: nodeID, BasePath: "/storage-pool/k8s", NVMeAddress: "127.0.0.1", RDS: mgr,
		Nodes: StaticNodes{nodeID: true}, DefaultDataPlane: "loop",
	}
	if opts != nil {
		opts(&o)
	}
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(shortTempDir(t), "csi.sock")
	srv, err := Listen("unix://"+sock, Services{Identity: d, Controller: d, Node: ns}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(srv.Stop)
	return sock, d, emu
}

// shortTempDir keeps unix socket paths under the 108-byte limit.
func shortTempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "rds-csi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Specs that csi-sanity skips in this run, and why:
//   - "Node Service ...": only when not root (no loop devices, no mounts); CI is root.
//   - "ModifyVolume ..." and "... volume attribute class": MODIFY_VOLUME is not
//     claimed; nothing about an RDS disk is mutable besides its size.
//   - "GroupController ...": volume group snapshots are not implemented (RouterOS
//     has no atomic multi-disk copy).
//   - "... already published but is incompatible": needs PUBLISH_READONLY, which
//     is not claimed (read-only is enforced by the node's mount).
//
// The attach-limit spec runs: the node reports, and the controller enforces,
// sanityVolumeLimit. The one pending spec is marked pending in csi-sanity
// itself.
//
// The number of specs that pass today, with and without the node specs.
const (
	sanityMinPassedController = 52
	sanityMinPassedAll        = 86
)

// TestSanity runs csi-sanity against the driver in --mode=all, backed by the
// emulator over real SSH. As root with loop devices (this machine and CI) the
// node specs run for real: loop devices on the emulator's backing files, real
// ext4, real mounts. Without root the node specs are skipped (say why below)
// and the controller specs still run.
func TestSanity(t *testing.T) {
	nodeID := "sanity-node"
	stateDir := t.TempDir()
	// Staging and target paths live here, the node plugin's kubelet dir.
	dir := shortTempDir(t)
	emu := emulatortest.Start(t, emulatortest.Options{PoolSize: 1 << 40, StateDir: stateDir})
	skip := []string{}
	var ns csi.NodeServer
	if why := loopUnavailable(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI runs as root with loop devices, but: %s", why)
		}
		t.Logf("node specs skipped: %s", why)
		skip = append(skip, "Node Service")
		ns = sanityNode{id: nodeID}
	} else {
		lp, err := loop.New(loop.Options{BackingDir: stateDir})
		if err != nil {
			t.Fatal(err)
		}
		ns, err = NewNodeServer(NodeOptions{NodeID: nodeID, DataPlanes: map[string]dataplane.Plane{"loop": lp},
			DefaultDataPlane: "loop", StateDir: filepath.Join(shortTempDir(t), "node-state"), KubeletDir: dir,
			MaxVolumesPerNode: sanityVolumeLimit})
		if err != nil {
			t.Fatal(err)
		}
	}
	sock, _, _ := startDriverOpts(t, emu, nodeID, ns, func(o *Options) { o.MaxVolumesPerNode = sanityVolumeLimit })

	cfg := sanity.NewTestConfig()
	cfg.Address = sock
	cfg.ControllerAddress = sock
	cfg.TestVolumeSize = 64 << 20
	cfg.TestVolumeExpandSize = 128 << 20
	if len(skip) == 0 {
		t.Cleanup(func() { assertNothingLeftBehind(t, stateDir, dir) })
	}
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.IdempotentCount = 2
	cfg.TestNodeVolumeAttachLimit = true

	sanity.GinkgoTest(&cfg)
	gomega.RegisterFailHandler(ginkgo.Fail)
	var counts map[types.SpecState]int
	var skipped []string
	ginkgo.ReportAfterSuite("rds-csi sanity counts", func(r ginkgo.Report) {
		counts = map[types.SpecState]int{}
		for _, s := range r.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			counts[s.State]++
			if s.State == types.SpecStateSkipped {
				skipped = append(skipped, s.FullText())
			}
		}
	})
	suite, reporter := ginkgo.GinkgoConfiguration()
	suite.SkipStrings = skip
	reporter.Succinct = true
	ginkgo.RunSpecs(t, "rds-csi sanity", suite, reporter)
	t.Logf("csi-sanity: %d passed, %d failed, %d skipped, %d pending",
		counts[types.SpecStatePassed], counts[types.SpecStateFailed], counts[types.SpecStateSkipped], counts[types.SpecStatePending])
	// The binary lane's list (sanity/skips.txt) says why each skip is
	// fine: a capability the driver does not claim.
	reasons, err := sanitylane.ReadSkips("../sanity/skips.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		why := reasons.Reason(s)
		if why == "" && len(skip) == 0 {
			t.Errorf("skipped without a reason in sanity/skips.txt: %s", s)
		}
		t.Logf("skipped: %s (%s)", s, why)
	}
	// Every spec this driver claims must run; a drop in the count means specs
	// stopped running.
	want := sanityMinPassedController
	if len(skip) == 0 {
		want = sanityMinPassedAll
	}
	if counts[types.SpecStatePassed] < want {
		t.Fatalf("only %d sanity specs passed, want at least %d", counts[types.SpecStatePassed], want)
	}
}

// loopUnavailable says why real loop devices cannot be used here, or "".
func loopUnavailable() string {
	if os.Geteuid() != 0 {
		return "not root: loop devices and mounts need it"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "no /dev/loop-control: " + err.Error()
	}
	return ""
}

// assertNothingLeftBehind fails the test if a loop device still points into the
// emulator's state, or a mount is left under the state or the test's own
// directories: every attach and mount the node made must have been undone.
// Only this test's paths are checked, so parallel test processes don't collide.
func assertNothingLeftBehind(t *testing.T, stateDir string, dirs ...string) {
	t.Helper()
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), stateDir) {
			t.Errorf("loop device left behind: %s -> %s", f, strings.TrimSpace(string(b)))
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		for _, d := range append([]string{stateDir}, dirs...) {
			if strings.Contains(l, " "+d+"/") || strings.Contains(l, " "+d+" ") {
				t.Errorf("mount left behind: %s", l)
			}
		}
	}
}

// sanityVolumeLimit is the node limit the sanity run uses, so csi-sanity's
// attach-limit spec runs.
const sanityVolumeLimit = 3
