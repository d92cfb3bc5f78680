package driver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/internal/promtest"
)

type fixedRand float64

func (f fixedRand) Float64() float64 { return float64(f) }

func readyNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

// clusterRig is one controller replica in a cluster: the driver, its RDS
// connection and its reconciler, all on one mock clock, against the emulator
// and a fake API server.
type clusterRig struct {
	clk  *clock.Mock
	emu  *emulatortest.Emulator
	mgr  *rds.Manager
	d    *Driver
	r    *reconciler.Reconciler
	rec  *record.FakeRecorder
	reg  *prometheus.Registry
	kube *fake.Clientset
}

func newClusterRig(t *testing.T, kube *fake.Clientset, emu *emulatortest.Emulator, clk *clock.Mock) *clusterRig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	conn, err := rds.NewSSHConnector(nil, rds.SSHConfig{Address: emu.Addr(), Signer: emu.ClientSigner(),
		KnownHostsLine: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(emu.HostKey())))})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mgr, err := rds.NewManager(rds.ManagerConfig{Connector: conn, Clock: clk, Rand: fixedRand(0.5),
		HealthInterval: 10 * time.Second, HealthTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close() })
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rig := &clusterRig{clk: clk, emu: emu, mgr: mgr, rec: record.NewFakeRecorder(1000), reg: reg, kube: kube}
	am := attachment.New(attachment.Options{Clock: clk, Events: attachment.EventFunc(func(e attachment.Event) { rig.r.Event(e) })})
	rig.r, err = reconciler.New(reconciler.Options{DriverName: DefaultName, Client: kube, Attachments: am, Clock: clk,
		Recorder: rig.rec, Registerer: reg, Identity: &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "rds-csi-0"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rig.r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go rig.r.Run(ctx)
	mgr.Subscribe(func(ev rds.Event) {
		switch {
		case ev.State == rds.StateConnected && ev.Previous != rds.StateConnected:
			rig.r.RDSStateChanged(true, "connected")
		case ev.Previous == rds.StateConnected && ev.State != rds.StateConnected:
			rig.r.RDSStateChanged(false, "lost")
		}
	})
	rig.d, err = New(Options{BasePath: "/storage-pool/k8s", NVMeAddress: "127.0.0.1", Clock: clk, RDS: mgr,
		Nodes: rig.r, StateReady: rig.r.Ready, Attachments: am})
	if err != nil {
		t.Fatal(err)
	}
	return rig
}

// eventually polls a condition another goroutine makes true; bounded in real
// time so a regression fails instead of hanging. It never advances the clock.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func hasEvent(rec *record.FakeRecorder, reason string, seen *[]string) bool {
	for {
		select {
		case e := <-rec.Events:
			*seen = append(*seen, e)
		default:
			for _, e := range *seen {
				if strings.Contains(e, " "+reason+" ") {
					return true
				}
			}
			return false
		}
	}
}

// TestRDSOutage: RDS stops answering. Within one health interval (plus the
// check's own timeout) Probe says not ready; creates fail fast with UNAVAILABLE;
// unpublish still succeeds; the process serves on. When RDS answers again the
// connection is back within one backoff step, a reconcile runs and events say so.
func TestRDSOutage(t *testing.T) {
	clk := clock.NewMock()
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"))
	rig := newClusterRig(t, kube, emu, clk)
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

// vaFor is the VolumeAttachment the attach-detach controller and the
// external-attacher would have left for an attached volume.
func vaFor(volume, node string, created time.Time) *storagev1.VolumeAttachment {
	pv := volume
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "csi-" + volume + "-" + node, CreationTimestamp: metav1.NewTime(created)},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: DefaultName, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
		Status: storagev1.VolumeAttachmentStatus{Attached: true},
	}
}
