package driver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func testDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := New(Options{BasePath: "/storage-pool/k8s", AllowedBasePaths: []string{"/storage-pool/other"},
		NVMeAddress: "10.0.0.1", RDS: downRDS{}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// downRDS is an RDS connection that is never up.
type downRDS struct{}

func (downRDS) Run(context.Context, string) (string, error) {
	return "", &rds.CommandError{Kind: rds.ErrUnavailable, Err: errors.New("down")}
}
func (downRDS) State() rds.State { return rds.StateDisconnected }

func TestParseParams(t *testing.T) {
	d := testDriver(t)
	cases := []struct {
		name   string
		params map[string]string
		code   codes.Code
		msg    string // substring of the error, or of a field check below
		check  func(volumeParams) bool
	}{
		{"defaults", nil, codes.OK, "", func(p volumeParams) bool {
			return p.basePath == "/storage-pool/k8s" && p.nvmePort == 4420 && p.fsType == "ext4" && p.nvmeAddress == "10.0.0.1" && p.gracePeriod == 30*time.Second
		}},
		{"all set", map[string]string{"basePath": "/storage-pool/other", "nvmeAddress": "rds-data", "nvmePort": "4421",
			"fsType": "xfs", "ctrlLossTmo": "-1", "reconnectDelay": "2", "keepAliveTmo": "5", "dataPlane": "loop", "gracePeriod": "45s"},
			codes.OK, "", func(p volumeParams) bool {
				return p.basePath == "/storage-pool/other" && p.nvmeAddress == "rds-data" && p.nvmePort == 4421 && p.fsType == "xfs" &&
					p.ctrlLossTmo == "-1" && p.reconnectDelay == "2" && p.keepAliveTmo == "5" && p.dataPlane == "loop" && p.gracePeriod == 45*time.Second
			}},
		{"sidecar keys ignored", map[string]string{"csi.storage.k8s.io/pvc/name": "x", "csi.storage.k8s.io/fstype": "xfs"}, codes.OK, "",
			func(p volumeParams) bool { return p.fsType == "xfs" }},
		{"unknown key named", map[string]string{"fstype": "ext4"}, codes.InvalidArgument, `unknown StorageClass parameter "fstype"`, nil},
		{"base path outside allow list", map[string]string{"basePath": "/storage-pool/../etc"}, codes.InvalidArgument, "basePath", nil},
		{"bad port", map[string]string{"nvmePort": "70000"}, codes.InvalidArgument, "nvmePort", nil},
		{"bad fs", map[string]string{"fsType": "ntfs"}, codes.InvalidArgument, "fsType", nil},
		{"bad address", map[string]string{"nvmeAddress": "a b"}, codes.InvalidArgument, "nvmeAddress", nil},
		{"bad grace", map[string]string{"gracePeriod": "soon"}, codes.InvalidArgument, "gracePeriod", nil},
		{"bad data plane", map[string]string{"dataPlane": "iscsi"}, codes.InvalidArgument, "dataPlane", nil},
		{"bad timeout", map[string]string{"ctrlLossTmo": "-5"}, codes.InvalidArgument, "ctrlLossTmo", nil},
		// Values that once passed CreateVolume and only failed at NodeStage.
		{"shell in the address", map[string]string{"nvmeAddress": "$(id)"}, codes.InvalidArgument, "nvmeAddress", nil},
		{"option in the address", map[string]string{"nvmeAddress": "-oProxyCommand=x"}, codes.InvalidArgument, "nvmeAddress", nil},
		{"signed timeout", map[string]string{"ctrlLossTmo": "+5"}, codes.InvalidArgument, "ctrlLossTmo", nil},
		{"padded timeout", map[string]string{"keepAliveTmo": "007"}, codes.InvalidArgument, "keepAliveTmo", nil},
		{"negative reconnect delay", map[string]string{"reconnectDelay": "-1"}, codes.InvalidArgument, "reconnectDelay", nil},
		{"fail-fast below -1", map[string]string{"fastIoFailTmo": "-2"}, codes.InvalidArgument, "fastIoFailTmo", nil},
		{"fail-fast after the controller is gone", map[string]string{"ctrlLossTmo": "60", "fastIoFailTmo": "61"},
			codes.InvalidArgument, "fastIoFailTmo", nil},
		{"fail-fast with a finite loss timeout", map[string]string{"ctrlLossTmo": "60", "fastIoFailTmo": "60"}, codes.OK, "",
			func(p volumeParams) bool { return p.fastIOFailTmo == "60" && p.ctrlLossTmo == "60" }},
		{"fail-fast with reconnect forever", map[string]string{"ctrlLossTmo": "-1", "fastIoFailTmo": "5"}, codes.OK, "",
			func(p volumeParams) bool { return p.fastIOFailTmo == "5" }},
		{"zero reconnect delay", map[string]string{"reconnectDelay": "0"}, codes.InvalidArgument, "reconnectDelay", nil},
		{"signed port", map[string]string{"nvmePort": "+4420"}, codes.InvalidArgument, "nvmePort", nil},
		{"IPv6 address", map[string]string{"nvmeAddress": "fd00::1"}, codes.OK, "", func(p volumeParams) bool { return p.nvmeAddress == "fd00::1" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := d.parseParams(tc.params)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("got %v, want code %v containing %q", err, tc.code, tc.msg)
			}
			if tc.check != nil && !tc.check(p) {
				t.Fatalf("params %+v", p)
			}
		})
	}
}

func TestCapacityFor(t *testing.T) {
	const MiB = 1 << 20
	cases := []struct {
		req, lim int64
		want     int64
		code     codes.Code
	}{
		{0, 0, defaultVolumeSize, codes.OK},
		{1, 0, MiB, codes.OK},
		{10_000_000_000, 0, 10_000_269_312, codes.OK},
		{MiB, MiB, MiB, codes.OK},
		{0, 10 * MiB, 10 * MiB, codes.OK},
		{MiB + 1, MiB + 2, 0, codes.OutOfRange}, // rounding up passes the limit
		{2 * MiB, MiB, 0, codes.OutOfRange},
		{-1, 0, 0, codes.InvalidArgument},
		// Near the int64 limit rounding once overflowed: an expand to
		// 2^63-1 answered OK with 1 MiB.
		{math.MaxInt64, 0, 0, codes.OutOfRange},
		{math.MaxInt64 - MiB + 2, 0, 0, codes.OutOfRange},
		{rds.MaxDiskSize + 1, 0, 0, codes.OutOfRange},
		{rds.MaxDiskSize, 0, rds.MaxDiskSize, codes.OK},
	}
	for _, tc := range cases {
		got, err := capacityFor(&csi.CapacityRange{RequiredBytes: tc.req, LimitBytes: tc.lim})
		if status.Code(err) != tc.code || got != tc.want {
			t.Errorf("capacityFor(%d, %d) = %d, %v; want %d, %v", tc.req, tc.lim, got, err, tc.want, tc.code)
		}
	}
}

func TestVolumeSlot(t *testing.T) {
	for name, want := range map[string]string{
		"pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11": "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11",
		"PVC-UPPER":                      "vol-" + shortHash("PVC-UPPER", 32),
		"my volume; rm -rf":              "vol-" + shortHash("my volume; rm -rf", 32),
		"pvc-" + strings.Repeat("a", 61): "vol-" + shortHash("pvc-"+strings.Repeat("a", 61), 32),
	} {
		got := volumeSlot(name)
		if got != want || !isVolumeID(got) || rds.ValidateSlot(got) != nil {
			t.Errorf("volumeSlot(%q) = %q, want %q (and a valid slot)", name, got, want)
		}
	}
	if isVolumeID("snap-0123456789abcdef-abc-pvc-1") || isVolumeID("../x") || isVolumeID("") {
		t.Error("isVolumeID accepted a non-volume ID")
	}
}

func TestSnapshotIDRoundTrip(t *testing.T) {
	id := snapshotID{nameHash: shortHash("snap", 16), created: time.Date(2026, 2, 5, 10, 0, 0, 0, time.UTC), source: "pvc-abc"}
	got, ok := parseSnapshotID(id.slot())
	if !ok || got != id {
		t.Fatalf("parse(%q) = %+v, %v", id.slot(), got, ok)
	}
	if rds.ValidateSlot(id.slot()) != nil {
		t.Fatalf("snapshot slot %q is not a valid RDS slot", id.slot())
	}
	for _, bad := range []string{"snap-xyz", "pvc-abc", "snap-0123456789abcdef-!!-pvc-a", "snap-0123456789abcdef-abc-other-a"} {
		if _, ok := parseSnapshotID(bad); ok {
			t.Errorf("parseSnapshotID(%q) accepted", bad)
		}
	}
}

func TestCheckCapabilities(t *testing.T) {
	mount := func(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
		return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: m}}
	}
	block := func(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
		return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: m}}
	}
	cases := []struct {
		name string
		caps []*csi.VolumeCapability
		code codes.Code
		want accessKind
	}{
		{"rwo fs", []*csi.VolumeCapability{mount(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}, codes.OK, accessKind{}},
		{"rwx block", []*csi.VolumeCapability{block(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}, codes.OK, accessKind{block: true, multiNode: true}},
		{"rwx fs refused", []*csi.VolumeCapability{mount(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}, codes.InvalidArgument, accessKind{}},
		{"rox refused", []*csi.VolumeCapability{block(csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY)}, codes.InvalidArgument, accessKind{}},
		{"none", nil, codes.InvalidArgument, accessKind{}},
		{"no access type", []*csi.VolumeCapability{{AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}, codes.InvalidArgument, accessKind{}},
	}
	for _, tc := range cases {
		got, err := checkCapabilities(tc.caps)
		if status.Code(err) != tc.code || (err == nil && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.code)
		}
	}
}

func TestRDSErrorCodes(t *testing.T) {
	for kind, want := range map[error]codes.Code{
		rds.ErrUnavailable: codes.Unavailable, rds.ErrCapacity: codes.ResourceExhausted, rds.ErrNotFound: codes.NotFound,
		rds.ErrExists: codes.AlreadyExists, rds.ErrInvalidArgument: codes.InvalidArgument, rds.ErrRejected: codes.Internal,
		rds.ErrHostKeyMismatch: codes.Unavailable, context.DeadlineExceeded: codes.DeadlineExceeded,
	} {
		err := rdsStatus("op", &rds.CommandError{Kind: kind, Err: errors.New("x")})
		if kind == context.DeadlineExceeded {
			err = rdsStatus("op", fmt.Errorf("wrapped: %w", kind))
		}
		if status.Code(err) != want {
			t.Errorf("%v → %v, want %v", kind, status.Code(err), want)
		}
	}
}

// dialCSI connects a CSI client to the driver's socket.
func dialCSI(t testing.TB, sock string) (csi.ControllerClient, csi.IdentityClient) {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return csi.NewControllerClient(conn), csi.NewIdentityClient(conn)
}

var (
	rwoMount = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}
	rwxBlock = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}}
)

func TestCreateVolumeExactSizeTwice(t *testing.T) {
	sock, _, emu := startDriver(t, "node-a", 1<<40)
	cc, _ := dialCSI(t, sock)
	req := &csi.CreateVolumeRequest{Name: "pvc-ten-gb", VolumeCapabilities: rwoMount,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 10_000_000_000}}
	var sizes []int64
	for i := 0; i < 2; i++ {
		resp, err := cc.CreateVolume(context.Background(), req)
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		sizes = append(sizes, resp.GetVolume().GetCapacityBytes())
	}
	if sizes[0] < 10_000_000_000 || sizes[0] != sizes[1] {
		t.Fatalf("sizes %v: want the same real size >= 10,000,000,000 twice", sizes)
	}
	out := emu.Run("/disk print detail where slot=pvc-ten-gb")
	if !strings.Contains(out, "size="+spaced(sizes[0])) {
		t.Fatalf("RDS holds a different size than reported %d:\n%s", sizes[0], out)
	}
	if n := emu.Run("/disk print count-only where slot=pvc-ten-gb"); n != "1\n" {
		t.Fatalf("%s disks after two creates", n)
	}
	// Same name, incompatible size.
	req.CapacityRange = &csi.CapacityRange{RequiredBytes: 20_000_000_000}
	if _, err := cc.CreateVolume(context.Background(), req); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("different size: %v, want AlreadyExists", err)
	}
}

func spaced(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// controllerRig is a driver serving CSI on a socket against its own
// emulator, with three nodes that exist.
type controllerRig struct {
	cc  csi.ControllerClient
	ic  csi.IdentityClient
	d   *Driver
	emu *emulatortest.Emulator
}

func newControllerRig(t *testing.T, poolSize int64) controllerRig {
	t.Helper()
	sock, d, emu := startDriver(t, "node-a", poolSize)
	d.opts.Nodes = StaticNodes{"node-a": true, "node-b": true, "node-c": true}
	cc, ic := dialCSI(t, sock)
	return controllerRig{cc: cc, ic: ic, d: d, emu: emu}
}

func (r controllerRig) create(t *testing.T, name string, caps []*csi.VolumeCapability, bytes int64) *csi.Volume {
	t.Helper()
	vol, err := r.cc.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: caps,
		CapacityRange: &csi.CapacityRange{RequiredBytes: bytes}})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return vol.GetVolume()
}

func (r controllerRig) publish(vol *csi.Volume, node string, caps []*csi.VolumeCapability) (*csi.ControllerPublishVolumeResponse, error) {
	return r.cc.ControllerPublishVolume(context.Background(), &csi.ControllerPublishVolumeRequest{VolumeId: vol.GetVolumeId(),
		NodeId: node, VolumeCapability: caps[0], VolumeContext: vol.GetVolumeContext()})
}

// TestControllerAgainstEmulator runs the controller's RPCs over gRPC against
// the emulator, one behaviour per subtest, each on its own driver and RDS so
// that one failure hides no other. Steps that build on each other (a
// snapshot's life) stop at the first failed step.
func TestControllerAgainstEmulator(t *testing.T) {
	ctx := context.Background()

	t.Run("pool full", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-huge", VolumeCapabilities: rwoMount,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 30}})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("pool full: %v", err)
		}
	})

	t.Run("filesystem RWX refused with a reason", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-rwx-fs", VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "Block") {
			t.Fatalf("fs RWX: %v", err)
		}
	})

	t.Run("single-node conflict names the holder", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		vol := r.create(t, "pvc-src", rwoMount, 64<<20)
		resp, err := r.publish(vol, "node-a", rwoMount)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetPublishContext()["nqn"] != "nqn.2000-02.com.mikrotik:pvc-src" || resp.GetPublishContext()["nvmeAddress"] != "127.0.0.1" {
			t.Errorf("publish context %v", resp.GetPublishContext())
		}
		if _, err := r.publish(vol, "node-a", rwoMount); err != nil {
			t.Errorf("idempotent publish: %v", err)
		}
		if _, err := r.publish(vol, "node-b", rwoMount); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "node-a") {
			t.Errorf("conflict: %v", err)
		}
	})

	t.Run("snapshot outlives its source and restores", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		vol := r.create(t, "pvc-src", rwoMount, 64<<20)
		id := vol.GetVolumeId()
		if _, err := r.publish(vol, "node-a", rwoMount); err != nil {
			t.Fatal(err)
		}
		var snap *csi.Snapshot
		steps := []struct {
			name string
			run  func(t *testing.T)
		}{
			{"snapshot is not exported", func(t *testing.T) {
				resp, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snapshot-1", SourceVolumeId: id})
				if err != nil {
					t.Fatal(err)
				}
				snap = resp.GetSnapshot()
				if out := r.emu.Run("/disk print detail where slot=" + snap.GetSnapshotId()); !strings.Contains(out, "nvme-tcp-export=no") {
					t.Fatalf("snapshot is exported:\n%s", out)
				}
			}},
			{"source not deleted while published", func(t *testing.T) {
				if _, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); status.Code(err) != codes.FailedPrecondition {
					t.Fatalf("delete while published: %v", err)
				}
			}},
			{"source deleted with its file", func(t *testing.T) {
				if _, err := r.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "node-a"}); err != nil {
					t.Fatal(err)
				}
				if _, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
					t.Fatal(err)
				}
				if out := r.emu.Run(`/file print count-only where name~"/pvc-src\\.img\$"`); out != "0\n" {
					t.Fatalf("backing file left behind: %s", out)
				}
			}},
			// Lineage comes back from RDS alone: a fresh driver on the same
			// emulator lists the snapshot with its source and creation time.
			{"lineage survives a restart", func(t *testing.T) {
				sock2, _, _ := startDriverOn(t, r.emu, "node-a")
				cc2, _ := dialCSI(t, sock2)
				list, err := cc2.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: id})
				if err != nil || len(list.GetEntries()) != 1 {
					t.Fatalf("list by source: %v %v", list, err)
				}
				got := list.GetEntries()[0].GetSnapshot()
				if got.GetSnapshotId() != snap.GetSnapshotId() || got.GetSourceVolumeId() != id ||
					!got.GetCreationTime().AsTime().Equal(snap.GetCreationTime().AsTime()) || got.GetSizeBytes() != 64<<20 {
					t.Fatalf("snapshot after restart %+v, want %+v", got, snap)
				}
			}},
			{"restore to a bigger volume", func(t *testing.T) {
				restored, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-restored", VolumeCapabilities: rwoMount,
					CapacityRange: &csi.CapacityRange{RequiredBytes: 128 << 20},
					VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
						Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshotId()}}}})
				if err != nil || restored.GetVolume().GetCapacityBytes() != 128<<20 {
					t.Fatalf("restore: %v %v", restored, err)
				}
				if out := r.emu.Run("/disk print detail where slot=pvc-restored"); !strings.Contains(out, "nvme-tcp-export=yes") {
					t.Fatalf("restored volume not exported:\n%s", out)
				}
			}},
		}
		for _, s := range steps {
			if !t.Run(s.name, s.run) {
				return // later steps build on this one
			}
		}
	})

	t.Run("RWX block: two nodes, never three", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		vol := r.create(t, "pvc-vm", rwxBlock, 0)
		for i, node := range []string{"node-a", "node-b", "node-c"} {
			if _, err := r.publish(vol, node, rwxBlock); (i < 2) != (err == nil) {
				t.Errorf("publish %s: %v", node, err)
			}
		}
	})

	// RPCs that need RDS fail fast with UNAVAILABLE; Unpublish and Probe
	// keep working.
	t.Run("RDS down", func(t *testing.T) {
		r := newControllerRig(t, 4<<30)
		vol := r.create(t, "pvc-vm", rwxBlock, 0)
		if _, err := r.publish(vol, "node-a", rwxBlock); err != nil {
			t.Fatal(err)
		}
		r.emu.Crash()
		waitState(t, r.d, rds.StateConnected, false)
		t.Run("create fails fast", func(t *testing.T) {
			start := time.Now()
			_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-during-outage", VolumeCapabilities: rwoMount})
			if status.Code(err) != codes.Unavailable || time.Since(start) > 2*time.Second {
				t.Errorf("create during outage: %v after %v", err, time.Since(start))
			}
		})
		t.Run("unpublish completes", func(t *testing.T) {
			if _, err := r.cc.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol.GetVolumeId(), NodeId: "node-a"}); err != nil {
				t.Errorf("unpublish during outage: %v", err)
			}
		})
		t.Run("probe answers not ready", func(t *testing.T) {
			if p, err := r.ic.Probe(ctx, &csi.ProbeRequest{}); err != nil || p.GetReady().GetValue() {
				t.Errorf("probe during outage: %v %v", p, err)
			}
		})
	})
}

// TestConcurrentOperationAborted: a second operation on a volume being worked on
// gets ABORTED instead of queueing behind a slow RDS.
func TestConcurrentOperationAborted(t *testing.T) {
	sock, _, emu := startDriver(t, "node-a", 1<<40)
	cc, _ := dialCSI(t, sock)
	emu.Faults().HangNext(1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := cc.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-slow", VolumeCapabilities: rwoMount}); err != nil {
			t.Errorf("first create: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for emu.Faults().Hanging() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("first create never reached RDS")
		}
		time.Sleep(time.Millisecond)
	}
	_, err := cc.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-slow", VolumeCapabilities: rwoMount})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("second create: %v, want Aborted", err)
	}
	emu.Faults().Release()
	wg.Wait()
}

func waitState(t *testing.T, d *Driver, s rds.State, want bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (d.opts.RDS.State() == s) != want {
		if time.Now().After(deadline) {
			t.Fatalf("RDS state %v never became (== %v) %v", d.opts.RDS.State(), s, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCreateSnapshotNamesEveryUnknownParameter: the refusal names all the
// keys, in order, so one request always gets one message.
func TestCreateSnapshotNamesEveryUnknownParameter(t *testing.T) {
	d := testDriver(t)
	req := &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: "pvc-a", Parameters: map[string]string{"zone": "1", "class": "2", "tier": "3"}}
	for i := 0; i < 20; i++ {
		_, err := d.CreateSnapshot(context.Background(), req)
		want := `unknown VolumeSnapshotClass parameters ["class" "tier" "zone"]`
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), want) {
			t.Fatalf("got %v, want InvalidArgument containing %s", err, want)
		}
	}
}

// TestAttachmentErrorCodes: a request the attachment rules call malformed is
// INVALID_ARGUMENT (the spec's general table; retrying cannot help), while a
// refusal that may lift later stays FAILED_PRECONDITION for the attacher's
// backoff.
func TestAttachmentErrorCodes(t *testing.T) {
	m := attachment.New(attachment.Options{})
	invalid := m.Publish("pvc-a", "", attachment.SingleNode, 0)
	if err := m.Publish("pvc-a", "node-a", attachment.SingleNode, 0); err != nil {
		t.Fatal(err)
	}
	conflict := m.Publish("pvc-a", "node-b", attachment.SingleNode, 0)
	for err, want := range map[error]codes.Code{invalid: codes.InvalidArgument, conflict: codes.FailedPrecondition} {
		if err == nil {
			t.Fatalf("no error for the %v case", want)
		}
		if got := status.Code(attachmentStatus(err)); got != want {
			t.Errorf("%v → %v, want %v", err, got, want)
		}
	}
}

// TestCopiesExportedOnStorageClassPort: a clone or a restore is served on the
// port its StorageClass names, like an empty volume, and ControllerPublish
// tells the node that port.
func TestCopiesExportedOnStorageClassPort(t *testing.T) {
	r := newControllerRig(t, 4<<30)
	ctx := context.Background()
	params := map[string]string{"nvmePort": "4421"}
	create := func(name string, src *csi.VolumeContentSource) *csi.Volume {
		t.Helper()
		resp, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount, Parameters: params,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}, VolumeContentSource: src})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return resp.GetVolume()
	}
	src := create("pvc-port-src", nil)
	snap, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "port-snap", SourceVolumeId: src.GetVolumeId()})
	if err != nil {
		t.Fatal(err)
	}
	vols := []*csi.Volume{src,
		create("pvc-port-clone", &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.GetVolumeId()}}}),
		create("pvc-port-restore", &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snap.GetSnapshot().GetSnapshotId()}}}),
	}
	for _, vol := range vols {
		if out := r.emu.Run("/disk print detail where slot=" + vol.GetVolumeId()); !strings.Contains(out, "nvme-tcp-server-port=4421") {
			t.Errorf("%s is not exported on the StorageClass's port 4421:\n%s", vol.GetVolumeId(), out)
		}
		resp, err := r.publish(vol, "node-a", rwoMount)
		if err != nil || resp.GetPublishContext()["nvmePort"] != "4421" {
			t.Errorf("%s: publish context %v, %v; want nvmePort 4421", vol.GetVolumeId(), resp.GetPublishContext(), err)
		}
	}
}

// TestCreateVolumeReusedNameOtherPort: a name reused with another NVMe/TCP
// port is ALREADY_EXISTS (the disk is exported where it was created; its
// volume context must not claim the new port), while a plain retry still
// answers the existing volume.
func TestCreateVolumeReusedNameOtherPort(t *testing.T) {
	r := newControllerRig(t, 4<<30)
	ctx := context.Background()
	create := func(port string) error {
		_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-port-reuse", VolumeCapabilities: rwoMount,
			Parameters: map[string]string{"nvmePort": port}, CapacityRange: &csi.CapacityRange{RequiredBytes: 64 << 20}})
		return err
	}
	if err := create("4421"); err != nil {
		t.Fatal(err)
	}
	if err := create("4421"); err != nil {
		t.Fatalf("retry with the same port: %v", err)
	}
	if err := create("4422"); status.Code(err) != codes.AlreadyExists || !strings.Contains(err.Error(), "4421") {
		t.Fatalf("same name, port 4422: %v, want ALREADY_EXISTS naming port 4421", err)
	}
}
