package controlplane_test

import (
	"context"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/internal/promtest"
)

// TestRDSOutage: RDS stops answering. Within one health interval (plus the
// check's own timeout) Probe says not ready; creates fail fast with UNAVAILABLE;
// unpublish still succeeds; the process serves on. When RDS answers again the
// connection is back within one backoff step, a reconcile runs and events say so.
func TestRDSOutage(t *testing.T) {
	clk := libclock.NewMock()
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"))
	rig := newClusterRig(t, kube, emu, clk, nil)
	d, ctx := rig.d, context.Background()
	var seen []string

	vol, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-outage", VolumeCapabilities: rwoMount})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	if _, err := d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "node-a", VolumeCapability: rwoMount[0]}); err != nil {
		t.Fatal(err)
	}

	// RDS hangs: every command, the health check included, stops answering.
	emu.Faults().HangAll()
	clk.Add(10 * time.Second) // the health check is due
	eventually(t, "health check in flight", func() bool { return emu.Faults().Hanging() > 0 })
	clk.Add(5 * time.Second) // and times out
	eventually(t, "RDS reported down", func() bool { return rig.mgr.State() != rds.StateConnected })
	if p, _ := d.Probe(ctx, &csi.ProbeRequest{}); p.GetReady().GetValue() {
		t.Fatal("Probe ready during the outage")
	}
	start := time.Now()
	_, err = d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-during", VolumeCapabilities: rwoMount})
	if status.Code(err) != codes.Unavailable || time.Since(start) > time.Second {
		t.Fatalf("create during outage: %v after %v, want UNAVAILABLE at once", err, time.Since(start))
	}
	if _, err := d.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: id, NodeId: "node-a"}); err != nil {
		t.Fatalf("unpublish during outage: %v", err)
	}
	eventually(t, "RDSDisconnected event", func() bool { return hasEvent(rig.rec, "RDSDisconnected", &seen) })

	// RDS answers again: one backoff step (1 s, jitter pinned) reconnects.
	emu.Faults().Release()
	runsBefore := promtest.Value(t, rig.reg, "rds_csi_attachment_reconcile_total", map[string]string{"action": "run"})
	clk.Add(time.Second)
	eventually(t, "reconnected within one backoff step", func() bool { return rig.mgr.State() == rds.StateConnected })
	eventually(t, "RDSReconnected event", func() bool { return hasEvent(rig.rec, "RDSReconnected", &seen) })
	eventually(t, "reconcile after reconnect", func() bool {
		return promtest.Value(t, rig.reg, "rds_csi_attachment_reconcile_total", map[string]string{"action": "run"}) > runsBefore
	})
	if p, _ := d.Probe(ctx, &csi.ProbeRequest{}); !p.GetReady().GetValue() {
		t.Fatal("Probe not ready after reconnect")
	}
	if _, err := d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-after", VolumeCapabilities: rwoMount}); err != nil {
		t.Fatalf("create after reconnect: %v", err)
	}
}
