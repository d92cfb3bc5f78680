package driver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/health"
	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/faults"
)

// commandLog keeps the emulator's command records: the ground truth of what
// the driver asked RDS to do, whatever the replies said.
type commandLog struct {
	mu   sync.Mutex
	recs []emulator.CommandRecord
}

func (l *commandLog) add(r emulator.CommandRecord) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
}

func (l *commandLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// removals returns the remove commands logged since mark.
func (l *commandLog) removals(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs[mark:] {
		if strings.Contains(r.Command, " remove ") {
			out = append(out, r.Command)
		}
	}
	return out
}

// hostileRig is a controller on an emulator full of things that are not its
// own, with a command log to check what it did.
type hostileRig struct {
	cc  csi.ControllerClient
	emu *emulatortest.Emulator
	log *commandLog
	// sums are the checksums of every backing file that must survive.
	sums map[string]string
}

func newHostileRig(t *testing.T) *hostileRig {
	t.Helper()
	log := &commandLog{}
	emu := emulatortest.Start(t, emulatortest.Options{PoolSize: 1 << 40, CommandLog: log.add})
	sock, _, _ := startDriverOpts(t, emu, "node-a", sanityNode{id: "node-a"}, func(o *Options) {
		o.AllowedBasePaths = []string{"/storage-pool/k8s-allowed"}
		o.Nodes = StaticNodes{"node-a": true, "node-b": true}
	})
	cc, _ := dialCSI(t, sock)
	r := &hostileRig{cc: cc, emu: emu, log: log, sums: map[string]string{}}
	r.plantDecoys(t)
	return r
}

// Decoys: disks and files the driver does not own, many named like its own.
var (
	decoyDisks = map[string]string{ // slot → file path
		"pvc-manual":                          "/storage-pool/other/pvc-manual.img",                          // a volume-shaped name, outside every base path
		"pvc-old":                             "/storage-pool/k8s-old/pvc-old.img",                           // a prefix look-alike directory
		"backup-1":                            "/storage-pool/k8s/backup-1.img",                              // in our directory, not our shape
		"pvc-wrongname":                       "/storage-pool/k8s/pvc-wrongname-2.img",                       // in our directory, file not named after it
		"pvc-nested":                          "/storage-pool/k8s/sub/pvc-nested.img",                        // below a base path, not in it
		"snap-0123456789abcdef-t5x1-pvc-live": "/storage-pool/other/snap-0123456789abcdef-t5x1-pvc-live.img", // a snapshot-shaped name elsewhere
	}
	// Files without a disk, in sibling directories, named like a volume's.
	decoyFiles = []string{"/storage-pool/k8s-old/pvc-victim.img", "/storage-pool/other/pvc-victim.img", "/storage-pool/other/pvc-live.img"}
)

func diskAddCmd(slot, path string) string {
	return "/disk add type=file file-path=" + path + " file-size=2M slot=" + slot +
		" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:" + slot
}

func (r *hostileRig) plantDecoys(t *testing.T) {
	t.Helper()
	for slot, path := range decoyDisks {
		if out := r.emu.Run(diskAddCmd(slot, path)); out != "" {
			t.Fatalf("planting %s: %s", slot, out)
		}
		r.fill(t, path)
	}
	for i, path := range decoyFiles {
		slot := fmt.Sprintf("tmp-%d", i)
		r.emu.Run(diskAddCmd(slot, path))
		r.fill(t, path)
		r.emu.Run("/disk remove [find slot=" + slot + "]") // the file stays, as on RouterOS
	}
	// The driver's own live volume and snapshot must survive too.
	ctx := context.Background()
	vol, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-live", VolumeCapabilities: rwoMount,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	r.fill(t, vol.GetVolume().GetVolumeContext()["filePath"])
	if _, err := r.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: "pvc-live", NodeId: "node-a",
		VolumeCapability: rwoMount[0], VolumeContext: vol.GetVolume().GetVolumeContext()}); err != nil {
		t.Fatal(err)
	}
	snap, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-live", SourceVolumeId: "pvc-live"})
	if err != nil {
		t.Fatal(err)
	}
	snapPath := "/storage-pool/k8s/" + snap.GetSnapshot().GetSnapshotId() + ".img"
	r.sums[snapPath] = r.sum(t, snapPath)
}

// fill writes random data at both ends of a backing file and records its sum.
func (r *hostileRig) fill(t *testing.T, path string) {
	t.Helper()
	host := r.emu.Store().BackingPath(path)
	f, err := os.OpenFile(host, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	f.WriteAt(buf, 0)
	f.WriteAt(buf, 1<<20)
	f.Close()
	r.sums[path] = r.sum(t, path)
}

func (r *hostileRig) sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(r.emu.Store().BackingPath(path))
	if err != nil {
		return "missing: " + err.Error()
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkSurvivors: every decoy disk is there with its file, and every file
// that must survive is byte for byte what it was.
func (r *hostileRig) checkSurvivors(t *testing.T, what string) {
	t.Helper()
	for slot, path := range decoyDisks {
		d, ok := r.emu.Store().DiskBySlot(slot)
		if !ok || d.FilePath != path {
			t.Fatalf("%s: decoy disk %s is gone or changed (%+v)", what, slot, d)
		}
	}
	if _, ok := r.emu.Store().DiskBySlot("pvc-live"); !ok {
		t.Fatalf("%s: the live volume's disk is gone", what)
	}
	for path, want := range r.sums {
		if got := r.sum(t, path); got != want {
			t.Fatalf("%s: %s changed (%s, was %s)", what, path, got, want)
		}
	}
}

// victimRemovalsOnly fails on any remove command that names anything but
// the given slots (or their files).
func victimRemovalsOnly(t *testing.T, what string, removals []string, victims ...string) {
	t.Helper()
	for _, c := range removals {
		ok := false
		for _, v := range victims {
			ok = ok || (v != "" && (strings.Contains(c, `"`+v+`"`) || strings.Contains(c, "/k8s/"+v+`.img"`)))
		}
		if !ok {
			t.Fatalf("%s: sent %s", what, c)
		}
	}
}

// incomplete are the modes whose replies prove nothing: an RPC reading one
// must fail, and never with NOT_FOUND ("no answer is never not found").
var incomplete = map[faults.ReplyMode]bool{
	faults.ReplyEmpty: true, faults.ReplyNoExit: true, faults.ReplyCut: true, faults.ReplyDropLegend: true, faults.ReplyHang: true,
}

// TestHostileRepliesNeverDestroy drives every controller RPC through every
// reply mangling of the emulator, on the reads of /disk, of /file, or of
// both. Whatever the replies, nothing may panic, nothing but the RPC's own
// target may be removed, the decoys and the live volume stay byte-identical,
// a reply that proves nothing never comes back as NOT_FOUND or as success
// built on it, and once the fault clears a retry of a delete finishes it.
func TestHostileRepliesNeverDestroy(t *testing.T) {
	r := newHostileRig(t)
	ctx := context.Background()
	liveCtx := map[string]string{"filePath": "/storage-pool/k8s/pvc-live.img", "nqn": "nqn.2000-02.com.mikrotik:pvc-live"}
	type rpc struct {
		name string
		// setup runs with honest replies and returns the victim to delete, if any.
		setup func(t *testing.T, i int) string
		call  func(ctx context.Context, victim string) error
		// reads says which reads the RPC depends on: "disk", "file" or both.
		reads string
	}
	mkVictim := func(t *testing.T, i int) string {
		name := fmt.Sprintf("pvc-victim-%d", i)
		if _, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	var snapN int
	rpcs := []rpc{
		{name: "CreateVolume new", reads: "disk file", setup: func(t *testing.T, i int) string { return fmt.Sprintf("pvc-new-%d", i) },
			call: func(ctx context.Context, v string) error {
				_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: v, VolumeCapabilities: rwoMount})
				return err
			}},
		{name: "CreateVolume retry", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-live", VolumeCapabilities: rwoMount,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20}})
			return err
		}},
		{name: "CreateVolume over a decoy", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-manual", VolumeCapabilities: rwoMount})
			return err
		}},
		{name: "CreateVolume clone", reads: "disk file", setup: func(t *testing.T, i int) string { return fmt.Sprintf("pvc-clone-%d", i) },
			call: func(ctx context.Context, v string) error {
				_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: v, VolumeCapabilities: rwoMount,
					CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20},
					VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
						Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-live"}}}})
				return err
			}},
		{name: "DeleteVolume", reads: "disk file", setup: mkVictim, call: func(ctx context.Context, v string) error {
			_, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v})
			return err
		}},
		{name: "DeleteVolume of a decoy", reads: "disk file", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-manual"})
			return err
		}},
		{name: "ControllerPublish", reads: "disk", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: "pvc-live", NodeId: "node-a",
				VolumeCapability: rwoMount[0], VolumeContext: liveCtx})
			if err == nil && resp.GetPublishContext()["nqn"] != liveCtx["nqn"] {
				return fmt.Errorf("published with NQN %q", resp.GetPublishContext()["nqn"])
			}
			return err
		}},
		{name: "ControllerGetVolume", reads: "disk", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "pvc-live"})
			if err == nil && resp.GetVolume().GetCapacityBytes() != 2<<20 {
				return fmt.Errorf("reported %v", resp)
			}
			return err
		}},
		{name: "ControllerGetVolumeHealth", reads: "disk file", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ControllerGetVolumeHealth(ctx, &csi.ControllerGetVolumeHealthRequest{VolumeId: "pvc-live"})
			for _, e := range resp.GetVolumeHealth().GetHealthStatuses() {
				if e.GetReason() != health.ReasonStorageUnreachable {
					return fmt.Errorf("reported the live volume %s: %s", e.GetReason(), e.GetMessage())
				}
				// "RDS did not answer" is not health: for this harness it
				// counts as the failure it reports.
				return status.Error(codes.Unavailable, e.GetMessage())
			}
			return err
		}},
		{name: "ControllerListVolumeHealth", reads: "disk file", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ControllerListVolumeHealth(ctx, &csi.ControllerListVolumeHealthRequest{})
			for _, e := range resp.GetEntries() {
				return fmt.Errorf("reported %s abnormal: %v", e.GetVolumeId(), e.GetHealthStatuses())
			}
			return err
		}},
		{name: "ControllerGetVolume of a decoy", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "pvc-manual"})
			if status.Code(err) == codes.OK {
				return fmt.Errorf("a decoy was reported as a volume")
			}
			return err
		}},
		{name: "ValidateVolumeCapabilities", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "pvc-live", VolumeCapabilities: rwoMount})
			return err
		}},
		{name: "ListVolumes", reads: "disk", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ListVolumes(ctx, &csi.ListVolumesRequest{})
			if err != nil {
				return err
			}
			found := false
			for _, e := range resp.GetEntries() {
				id := e.GetVolume().GetVolumeId()
				if _, decoy := decoyDisks[id]; decoy {
					return fmt.Errorf("listed decoy %s", id)
				}
				found = found || id == "pvc-live"
			}
			if !found {
				return fmt.Errorf("the live volume is missing from %v", resp)
			}
			return nil
		}},
		{name: "GetCapacity", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.GetCapacity(ctx, &csi.GetCapacityRequest{})
			return err
		}},
		{name: "ControllerExpandVolume", reads: "disk", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-live",
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20}, VolumeCapability: rwoMount[0]})
			return err
		}},
		{name: "CreateSnapshot", reads: "disk file", call: func(ctx context.Context, _ string) error {
			snapN++
			_, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: fmt.Sprintf("snap-hostile-%d", snapN), SourceVolumeId: "pvc-live"})
			return err
		}},
		{name: "DeleteSnapshot", reads: "disk file",
			setup: func(t *testing.T, i int) string {
				s, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: fmt.Sprintf("snap-victim-%d", i), SourceVolumeId: "pvc-live"})
				if err != nil {
					t.Fatal(err)
				}
				return s.GetSnapshot().GetSnapshotId()
			},
			call: func(ctx context.Context, v string) error {
				_, err := r.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: v})
				return err
			}},
		{name: "DeleteSnapshot of a decoy", reads: "disk file", call: func(ctx context.Context, _ string) error {
			_, err := r.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: "snap-0123456789abcdef-t5x1-pvc-live"})
			return err
		}},
		{name: "ListSnapshots", reads: "disk", call: func(ctx context.Context, _ string) error {
			resp, err := r.cc.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
			if err != nil {
				return err
			}
			for _, e := range resp.GetEntries() {
				if _, decoy := decoyDisks[e.GetSnapshot().GetSnapshotId()]; decoy {
					return fmt.Errorf("listed decoy %s", e.GetSnapshot().GetSnapshotId())
				}
			}
			return nil
		}},
	}
	// A reply is mangled when its script prints the menu anywhere: the client
	// sends a read in one script with the command it verifies (a remove or an
	// add before it) and with the other reads it decides on.
	patterns := map[string]string{"disk": `/disk print`, "file": `/file print`, "disk file": `/(disk|file) print`}
	var modes []faults.ReplyMode
	modes = append(modes, faults.ReplyModes...)
	i := 0
	for _, rp := range rpcs {
		for _, reads := range []string{"disk", "file", "disk file"} {
			for _, mode := range modes {
				i++
				what := fmt.Sprintf("%s / %s replies %s", rp.name, reads, mode)
				victim := ""
				if rp.setup != nil {
					victim = rp.setup(t, i)
				}
				mark := r.log.mark()
				if err := r.emu.Faults().AddReplyFault(faults.ReplyFault{Match: patterns[reads], Mode: mode, Seed: uint64(i)}); err != nil {
					t.Fatal(err)
				}
				timeout := 30 * time.Second
				if mode == faults.ReplyHang {
					timeout = 300 * time.Millisecond
				}
				cctx, cancel := context.WithTimeout(ctx, timeout)
				err := rp.call(cctx, victim)
				cancel()
				r.emu.Faults().Clear()
				code := status.Code(err)
				if strings.Contains(fmt.Sprint(err), "panic") {
					t.Fatalf("%s: %v", what, err)
				}
				if _, isStatus := status.FromError(err); err != nil && !isStatus {
					t.Fatalf("%s: the RPC's own check failed: %v", what, err) // a false answer, returned as OK
				}
				// Did the RPC read what was mangled? Then an incomplete reply
				// must have failed it, and not as NOT_FOUND.
				// (/file prints no legend: dropping it changes nothing there.)
				hit := strings.Contains(rp.reads, "disk") && strings.Contains(reads, "disk") ||
					mode != faults.ReplyDropLegend && strings.Contains(rp.reads, "file") && strings.Contains(reads, "file")
				if incomplete[mode] && hit && (code == codes.OK || code == codes.NotFound) {
					t.Fatalf("%s: %v on a reply that proves nothing", what, err)
				}
				victimRemovalsOnly(t, what, r.log.removals(mark), victim)
				r.checkSurvivors(t, what)
				// With honest replies again, a delete that failed finishes.
				if victim != "" && strings.HasPrefix(rp.name, "Delete") && err != nil {
					// The abandoned call may still hold the volume's lock for
					// a moment (ABORTED), as the sidecars see it too.
					deadline := time.Now().Add(10 * time.Second)
					for err = rp.call(ctx, victim); status.Code(err) == codes.Aborted && time.Now().Before(deadline); err = rp.call(ctx, victim) {
						time.Sleep(10 * time.Millisecond)
					}
					if err != nil {
						t.Fatalf("%s: the retry with honest replies failed: %v", what, err)
					}
				}
				if victim != "" && strings.HasPrefix(rp.name, "Delete") {
					if _, ok := r.emu.Store().DiskBySlot(victim); ok {
						t.Fatalf("%s: the victim's disk survived a successful delete", what)
					}
					if n := r.emu.Run(`/file print count-only where name~"` + regexp.QuoteMeta(victim) + `\\.img\$"`); n != "0\n" {
						t.Fatalf("%s: the victim's file leaked (%q)", what, n)
					}
				}
			}
		}
	}
	t.Logf("%d RPC × reply-mode cases", i)
}

// TestDecoysSurviveTheCSISurface: with honest replies, every RPC aimed at a
// decoy treats it as nonexistent, a CreateVolume whose slot is taken by one
// refuses to adopt it, and after the whole surface ran every decoy is
// byte-identical.
func TestDecoysSurviveTheCSISurface(t *testing.T) {
	r := newHostileRig(t)
	ctx := context.Background()
	mark := r.log.mark()
	for slot := range decoyDisks {
		isSnap := strings.HasPrefix(slot, "snap-")
		want := codes.NotFound
		if _, err := r.cc.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: slot}); status.Code(err) != want {
			t.Errorf("GetVolume %s: %v", slot, err)
		}
		if _, err := r.cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: slot, NodeId: "node-a",
			VolumeCapability: rwoMount[0]}); status.Code(err) != want {
			t.Errorf("Publish %s: %v", slot, err)
		}
		if _, err := r.cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: slot,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}}); status.Code(err) != want {
			t.Errorf("Expand %s: %v", slot, err)
		}
		if _, err := r.cc.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: slot,
			VolumeCapabilities: rwoMount}); status.Code(err) != want {
			t.Errorf("Validate %s: %v", slot, err)
		}
		if _, err := r.cc.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-of-" + slot, SourceVolumeId: slot}); status.Code(err) != want {
			t.Errorf("CreateSnapshot of %s: %v", slot, err)
		}
		src := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: slot}}}
		if isSnap {
			src = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: slot}}}
		}
		if _, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-copy-of-" + strings.ReplaceAll(slot, "_", "-"),
			VolumeCapabilities: rwoMount, VolumeContentSource: src, CapacityRange: &csi.CapacityRange{RequiredBytes: 8 << 20}}); status.Code(err) != want {
			t.Errorf("copy of %s: %v", slot, err)
		}
		if _, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: slot}); err != nil {
			t.Errorf("DeleteVolume %s: %v (a volume that does not exist is deleted)", slot, err)
		}
		if _, err := r.cc.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: slot}); err != nil {
			t.Errorf("DeleteSnapshot %s: %v", slot, err)
		}
	}
	for _, name := range []string{"pvc-manual", "pvc-old", "pvc-wrongname", "pvc-nested"} {
		_, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "adopt") {
			t.Errorf("CreateVolume %s over a decoy's slot: %v, want FailedPrecondition refusing to adopt", name, err)
		}
	}
	list, err := r.cc.ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.GetEntries() {
		if e.GetVolume().GetVolumeId() != "pvc-live" {
			t.Errorf("ListVolumes lists %s", e.GetVolume().GetVolumeId())
		}
	}
	snaps, err := r.cc.ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	if err != nil || len(snaps.GetEntries()) != 1 {
		t.Errorf("ListSnapshots: %v %v", snaps, err)
	}
	// A volume named like the files in sibling directories: creating and
	// deleting it touches only its own file.
	vol, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-victim", VolumeCapabilities: rwoMount})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId()}); err != nil {
		t.Fatal(err)
	}
	victimRemovalsOnly(t, "the CSI surface", r.log.removals(mark), "pvc-victim")
	r.checkSurvivors(t, "the CSI surface")
}

// TestLeftoverFileIsNotAdopted: a file left at a volume's exact path by a
// half-finished delete is wiped before the volume is created again, so the
// new volume never shows the old one's data.
func TestLeftoverFileIsNotAdopted(t *testing.T) {
	r := newHostileRig(t)
	ctx := context.Background()
	path := "/storage-pool/k8s/pvc-reborn.img"
	r.emu.Run(diskAddCmd("pvc-reborn", path))
	host := r.emu.Store().BackingPath(path)
	if err := os.WriteFile(host, []byte("the previous tenant's secrets"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.emu.Run("/disk remove [find slot=pvc-reborn]") // the file stays
	if _, err := r.cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-reborn", VolumeCapabilities: rwoMount,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secrets") {
		t.Fatal("the new volume adopted the leftover file's contents")
	}
}

// TestPoolNamedLikeAVolume: a pool whose name has a volume's shape answers a
// slot lookup with its partition entry, which has no file-path; that once
// crashed ControllerGetVolume. It is simply not a volume.
func TestPoolNamedLikeAVolume(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{PoolSize: 1 << 40, Pool: "pvc-pool"})
	sock, _, _ := startDriverOpts(t, emu, "node-a", sanityNode{id: "node-a"}, func(o *Options) { o.BasePath = "/pvc-pool/k8s" })
	cc, _ := dialCSI(t, sock)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := cc.ControllerGetVolume(ctx, &csi.ControllerGetVolumeRequest{VolumeId: "pvc-pool"}); status.Code(err) != codes.NotFound {
			t.Fatalf("GetVolume of the pool's slot: %v", err)
		}
	}
	if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-pool"}); err != nil {
		t.Fatalf("DeleteVolume of the pool's slot: %v", err)
	}
	if _, err := cc.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: "pvc-pool",
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}}); status.Code(err) != codes.NotFound {
		t.Fatalf("Expand of the pool's slot: %v", err)
	}
	if p := emu.Store().Pool(); p.Name != "pvc-pool" {
		t.Fatalf("pool %+v", p)
	}
}
