package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/rds"
)

var rwo = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}

func create(w *World, name string) (string, error) {
	var id string
	err := w.Call("CreateVolume", name, func(ctx context.Context) error {
		r, err := w.Driver.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: rwo,
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 30}})
		id = r.GetVolume().GetVolumeId()
		return err
	})
	return id, err
}

func probe(w *World) bool {
	var ready bool
	_ = w.Call("Probe", "", func(ctx context.Context) error {
		r, err := w.Driver.Probe(ctx, &csi.ProbeRequest{})
		ready = r.GetReady().GetValue()
		return err
	})
	return ready
}

// crashScenario is the three-hour RDS outage; it returns the world (closed
// by the caller) and the outcome.
func crashScenario(t *testing.T, seed uint64) (*World, time.Duration) {
	t.Helper()
	begin := time.Now()
	w, err := NewWorld(Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	var vols []string
	for i := 0; i < 3; i++ {
		id, err := create(w, fmt.Sprintf("pvc-%d", i))
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		vols = append(vols, id)
		node := fmt.Sprintf("node-%d", i+1)
		if err := w.Call("ControllerPublishVolume", id+"@"+node, func(ctx context.Context) error {
			_, err := w.Driver.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: node, VolumeCapability: rwo[0]})
			return err
		}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	steps := []Step{
		Fault(10*time.Minute, "rds.crash", nil),
		{At: 10 * time.Minute, Name: "outage checks", Do: func(w *World) error {
			if _, err := w.Eventually("probe not ready within one health interval", 10*time.Second, func() bool { return !probe(w) }); err != nil {
				return err
			}
			err := w.Call("ControllerUnpublishVolume", vols[0]+"@node-1", func(ctx context.Context) error {
				_, err := w.Driver.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vols[0], NodeId: "node-1"})
				return err
			})
			if err != nil {
				return fmt.Errorf("unpublish during outage: %w", err)
			}
			_, err = create(w, "pvc-during")
			return w.Check("CreateVolume UNAVAILABLE during outage", status.Code(err) == codes.Unavailable)
		}},
		End(3*time.Hour+10*time.Minute, "rds.crash"),
		{At: 3*time.Hour + 10*time.Minute, Name: "recovery", Do: func(w *World) error {
			if _, err := w.Eventually("RDS connected within one backoff step", time.Duration(1.1*float64(16*time.Second)),
				func() bool { return w.RDS.State() == rds.StateConnected }); err != nil {
				return err
			}
			if _, err := create(w, "pvc-after"); err != nil {
				return fmt.Errorf("create after recovery: %w", err)
			}
			return nil
		}},
	}
	if err := w.Run(steps); err != nil {
		t.Fatal(err)
	}
	return w, time.Since(begin)
}

func TestRDSCrashThreeHours(t *testing.T) {
	w, wall := crashScenario(t, 1)
	virt := w.Now()
	ratio := virt.Seconds() / wall.Seconds()
	t.Logf("virtual %.0fs, wall %.3fs, compression %.0fx, %d clock steps, %d trace lines, hash %s",
		virt.Seconds(), wall.Seconds(), ratio, w.VirtualSteps(), len(w.Trace().Events()), w.TraceHash()[:16])
	if ratio < 1000 {
		t.Errorf("compression %.0fx < 1000x", ratio)
	}
}

func TestDeterminism(t *testing.T) {
	hashes := map[string]int{}
	for i := 0; i < 5; i++ {
		w, _ := crashScenario(t, 7)
		hashes[w.TraceHash()]++
		w.Close()
	}
	if len(hashes) != 1 {
		t.Fatalf("5 runs gave %d different traces: %v", len(hashes), hashes)
	}
	a, _ := crashScenario(t, 7)
	b, _ := crashScenario(t, 8)
	ja, jb := retryIns(a), retryIns(b)
	if len(ja) == 0 || fmt.Sprint(ja) == fmt.Sprint(jb) {
		t.Fatalf("seed 7 and 8 give the same jitter: %v", ja[:min(5, len(ja))])
	}
}

func retryIns(w *World) []int64 {
	var out []int64
	for _, e := range w.Trace().Events() {
		if e.Kind == "rds.state" && e.Fields["retryInNs"] != nil {
			out = append(out, e.Fields["retryInNs"].(int64))
		}
	}
	return out
}

// TestBackoffIntervals reads the reconnect attempts of the outage from the
// trace: the gaps between Connecting events are 1, 2, 4, 8, 16, 16... s ±10%.
func TestBackoffIntervals(t *testing.T) {
	w, _ := crashScenario(t, 3)
	var attempts []time.Duration
	for _, e := range w.Trace().Events() {
		if e.Kind == "rds.state" && e.Fields["state"] == "connecting" && e.T > 10*time.Minute {
			attempts = append(attempts, e.T)
		}
	}
	if len(attempts) < 10 {
		t.Fatalf("only %d reconnect attempts", len(attempts))
	}
	// The connection is lost at 10m (counted as the first failure).
	prev := 10 * time.Minute
	for i, at := range attempts[:len(attempts)-1] {
		want := 16 * time.Second
		if i < 4 {
			want = time.Second << i
		}
		gap := at - prev
		if gap < want*9/10 || gap > want*11/10 {
			t.Errorf("attempt %d at %v: gap %v, want %v ±10%%", i+1, at, gap, want)
		}
		prev = at
	}
}
