package driver

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// commandCounter counts the emulator's command scripts (one per SSH session).
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) add(emulator.CommandRecord) { c.n.Add(1) }

// A step of the provisioning the driver did before issue 19 (dcb3326),
// recorded from the commands the emulator received for one CreateVolume +
// DeleteVolume pair of that driver and replayed verbatim ({slot} is the
// volume): one SSH session per command on one connection, every mutation
// preceded and followed by reads. check says what the old driver needed the
// reply to be, so a replay against an emulator that answered differently
// fails instead of measuring something else.
type oldStep struct {
	cmd   string
	check func(out, slot string) bool
}

var (
	anyReply = func(string, string) bool { return true }
	noReply  = func(out, _ string) bool { return out == "" }
	zero     = func(out, _ string) bool { return out == "0\n" }
	hasSlot  = func(out, slot string) bool { return strings.Contains(out, `slot="`+slot+`"`) }
)

// oldCreate is dcb3326's CreateVolume of a new 1 MiB volume: 8 scripts.
var oldCreate = []oldStep{
	{`/disk print detail where slot="{slot}"`, anyReply},
	{`/disk print count-only where slot="{slot}"`, zero},
	{`/disk print detail where slot="{slot}"`, anyReply},
	{`/disk print count-only where slot="{slot}"`, zero},
	{`/file print detail where name="storage-pool/k8s/{slot}.img"`, noReply},
	{`/file print count-only where name="storage-pool/k8s/{slot}.img"`, zero},
	{`/disk add type=file file-path="/storage-pool/k8s/{slot}.img" file-size=1048576 slot="{slot}" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn="nqn.2000-02.com.mikrotik:{slot}"`, noReply},
	{`/disk print detail where slot="{slot}"`, hasSlot},
}

// oldDelete is dcb3326's DeleteVolume of that volume: 9 scripts.
var oldDelete = []oldStep{
	{`/disk print detail where slot="{slot}" or file-path="/storage-pool/k8s/{slot}.img" or mount-point="storage-pool"`, hasSlot},
	{`/disk remove [find slot="{slot}" and file-path="/storage-pool/k8s/{slot}.img"]`, noReply},
	{`/disk print detail where slot="{slot}" or file-path="/storage-pool/k8s/{slot}.img" or mount-point="storage-pool"`, func(out, slot string) bool { return !hasSlot(out, slot) }},
	{`/file print detail where name="storage-pool/k8s/{slot}.img"`, func(out, slot string) bool { return strings.Contains(out, slot+".img") }},
	{`/disk print detail where slot="{slot}" or file-path="/storage-pool/k8s/{slot}.img" or mount-point="storage-pool"`, func(out, slot string) bool { return !hasSlot(out, slot) }},
	{`/disk print count-only where file-path="/storage-pool/k8s/{slot}.img"`, zero},
	{`/file remove [find name="storage-pool/k8s/{slot}.img"]`, noReply},
	{`/file print detail where name="storage-pool/k8s/{slot}.img"`, noReply},
	{`/file print count-only where name="storage-pool/k8s/{slot}.img"`, zero},
}

// replayOld runs steps for slot on c, at most sem sessions at once (the old
// driver's limit per connection).
func replayOld(c *gossh.Client, sem chan struct{}, steps []oldStep, slot string) error {
	for _, st := range steps {
		cmd := strings.ReplaceAll(st.cmd, "{slot}", slot)
		sem <- struct{}{}
		out, status, err := emulatortest.Exec(c, cmd)
		<-sem
		if err != nil || status != 0 || !st.check(out, slot) {
			return fmt.Errorf("dcb3326 replay: %s: %q (status %d) %v", cmd, out, status, err)
		}
	}
	return nil
}

// oldMaxSessions is dcb3326's rds.DefaultMaxSessions.
const oldMaxSessions = 8

// floorRTsPerIter is how many floor round trips each interleaved iteration
// takes: about what a new pair costs, so the three measurements share the
// machine's load in similar proportions.
const floorRTsPerIter = 12

// BenchmarkCreateDeleteVolume: CreateVolume + DeleteVolume pairs over gRPC,
// sequential, against the emulator over SSH with fsync off, against the
// same pair as the driver before issue 19 (dcb3326) sent it, replayed
// command by command, and against the bare SSH floor. The three alternate
// within every iteration, so a change of load during the run moves them
// together and their ratios stay put. Reported per pair: the new pair's rate
// and SSH scripts (a create is an anchored view, then the add with its
// read-back; a delete a view, the removal with the view that proves it, and
// the file's removal with the listing that proves it), both pairs' cost in
// floor round trips, and new/old time.
//
// The replay leaves out the old driver's gRPC and parsing work, so the old
// figure is a lower bound of what the old driver cost and the ratio is, if
// anything, in the old code's favour.
func BenchmarkCreateDeleteVolume(b *testing.B) {
	floor := emulatortest.StartFloor(b)
	fc, err := gossh.Dial("tcp", floor.Addr, floor.ClientConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fc.Close() })
	cmds := &commandCounter{}
	emu := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, CommandLog: cmds.add})
	sock, _, _ := startDriverOn(b, emu, "node-a")
	cc, _ := dialCSI(b, sock)
	old, err := emu.Dial("admin")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { old.Close() })
	sem := make(chan struct{}, oldMaxSessions)
	ctx := context.Background()
	var seq int
	b.Run("interleaved", func(b *testing.B) {
		var newT, oldT, floorT time.Duration
		var newScripts, oldScripts int64
		for i := 0; i < b.N; i++ {
			seq++
			name := fmt.Sprintf("pvc-bench-%d", seq)
			n0, t0 := cmds.n.Load(), time.Now()
			v, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwoMount,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolume().GetVolumeId()}); err != nil {
				b.Fatal(err)
			}
			n1, t1 := cmds.n.Load(), time.Now()
			slot := fmt.Sprintf("pvc-old-%d", seq)
			if err := replayOld(old, sem, oldCreate, slot); err != nil {
				b.Fatal(err)
			}
			if err := replayOld(old, sem, oldDelete, slot); err != nil {
				b.Fatal(err)
			}
			n2, t2 := cmds.n.Load(), time.Now()
			for range floorRTsPerIter {
				if out, _, err := emulatortest.Exec(fc, "/disk print detail"); err != nil || out != emulatortest.FloorReply {
					b.Fatalf("floor: %q %v", out, err)
				}
			}
			t3 := time.Now()
			newT += t1.Sub(t0)
			oldT += t2.Sub(t1)
			floorT += t3.Sub(t2)
			newScripts += n1 - n0
			oldScripts += n2 - n1
		}
		rt := float64(floorT) / float64(b.N*floorRTsPerIter)
		b.ReportMetric(float64(b.N)/newT.Seconds(), "pairs/s")
		b.ReportMetric(float64(newScripts)/float64(b.N), "scripts/pair")
		b.ReportMetric(float64(newT)/float64(b.N)/rt, "floor-RTs/pair")
		b.ReportMetric(float64(oldScripts)/float64(b.N), "dcb3326-scripts/pair")
		b.ReportMetric(float64(oldT)/float64(b.N)/rt, "dcb3326-floor-RTs/pair")
		b.ReportMetric(float64(newT)/float64(oldT), "x-dcb3326-time")
		b.ReportMetric(rt/1e3, "floor-µs/RT")
	})
}

// BenchmarkCreateVolumeConcurrent16: 16 callers issuing CreateVolume for new
// volumes at once, against an emulator with fsync on (the binary's default)
// and off. What fsync costs here is the emulator journal's flush per
// acknowledged change; what the driver decides is how many commands, and
// how many of them mutating, each create sends.
//
// dcb3326 is the same load as before issue 19, in the same run: 16 callers
// replaying the old driver's create (8 scripts, at most 8 sessions on one
// connection) against a store that flushes each change alone
// (NoGroupCommit). fsync=true/no-group-commit is the new driver against such
// a store, to tell the driver's share from the journal's. All four run in
// alternating batches of creates (each against its own emulator), so they
// share the machine's load; rates are median batch rates, and the x-dcb3326
// figures are ratios to the dcb3326 rate.
func BenchmarkCreateVolumeConcurrent16(b *testing.B) {
	type mode struct {
		name           string
		fsync, noGroup bool
		old            bool
	}
	modes := []mode{
		{"dcb3326-fsync", true, true, true},
		{"fsync-no-group-commit", true, true, false},
		{"fsync", true, false, false},
		{"nofsync", false, false, false},
	}
	creates := make([]func(i int64) error, len(modes))
	for m, mode := range modes {
		emu := emulatortest.Start(b, emulatortest.Options{PoolSize: 1 << 50, Fsync: mode.fsync, NoGroupCommit: mode.noGroup})
		if mode.old {
			c, err := emu.Dial("admin")
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			sem := make(chan struct{}, oldMaxSessions)
			creates[m] = func(i int64) error { return replayOld(c, sem, oldCreate, fmt.Sprintf("pvc-conc-%d", i)) }
			continue
		}
		sock, _, _ := startDriverOn(b, emu, "node-a")
		cc, _ := dialCSI(b, sock)
		creates[m] = func(i int64) error {
			_, err := cc.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: fmt.Sprintf("pvc-conc-%d", i),
				VolumeCapabilities: rwoMount, CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
			return err
		}
	}
	var seq atomic.Int64
	b.Run("interleaved", func(b *testing.B) {
		// 4 creates per caller and batch: enough that the batch's ragged
		// end (callers finishing at different times) costs little, few
		// enough that a run holds several batches of each mode.
		const batch = 16 * 4
		rates := make([][]float64, len(modes))
		for done := 0; done < b.N; done += batch {
			n := min(batch, b.N-done)
			for k := range modes {
				m := (k + done/batch) % len(modes)
				elapsed := concurrentBatch(b, 16, n, &seq, creates[m])
				rates[m] = append(rates[m], float64(n)/elapsed.Seconds())
			}
		}
		med := make([]float64, len(modes))
		for m, r := range rates {
			slices.Sort(r)
			med[m] = r[len(r)/2]
			b.ReportMetric(med[m], modes[m].name+"-creates/s")
		}
		b.ReportMetric(med[2]/med[0], "x-dcb3326")
		b.ReportMetric(med[1]/med[0], "x-dcb3326-no-group-commit")
	})
}

// concurrentBatch runs n calls of create over callers goroutines and
// returns how long they took.
func concurrentBatch(b *testing.B, callers, n int, seq *atomic.Int64, create func(i int64) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := create(seq.Add(1)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkControllerPublish1000: ControllerPublish latency with 1,000 volumes
// already attached (to 100 nodes), reported as p50 and p99. Each publish checks
// the node, reads the disk from RDS and takes the attachment decision.
func BenchmarkControllerPublish1000(b *testing.B) {
	sock, d, emu := startDriver(b, "node-0", 1<<50)
	nodes := StaticNodes{}
	for i := 0; i < 100; i++ {
		nodes[fmt.Sprintf("node-%d", i)] = true
	}
	nodes["node-x"] = true
	d.opts.Nodes = nodes
	cc, _ := dialCSI(b, sock)
	ctx := context.Background()
	for i := 0; i < 1000+b.N; i++ {
		slot := fmt.Sprintf("pvc-pub-%d", i)
		if _, err := emu.Store().AddDisk(storeDisk(slot)); err != nil {
			b.Fatal(err)
		}
		if i < 1000 {
			if _, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: slot,
				NodeId: fmt.Sprintf("node-%d", i%100), VolumeCapability: rwoMount[0]}); err != nil {
				b.Fatal(err)
			}
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := cc.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{
			VolumeId: fmt.Sprintf("pvc-pub-%d", 1000+i), NodeId: "node-x", VolumeCapability: rwoMount[0]}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func storeDisk(slot string) store.Disk {
	return store.Disk{Slot: slot, FilePath: "/storage-pool/k8s/" + slot + ".img", FileSize: 1 << 20,
		NVMeTCPExport: true, NVMeTCPServerPort: 4420, NVMeTCPServerNQN: "nqn.2000-02.com.mikrotik:" + slot}
}
