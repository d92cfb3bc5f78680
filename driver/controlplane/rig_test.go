package controlplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/controlplane"
	"github.com/rds-csi/rds-csi/driver/leader"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

var rwoMount = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}

type fixedRand float64

func (f fixedRand) Float64() float64 { return float64(f) }

func readyNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
}

// clusterRig is one controller replica in a cluster, assembled as the binary
// assembles it, on one mock clock, against the emulator and a fake API server.
type clusterRig struct {
	clk  *libclock.Mock
	emu  *emulatortest.Emulator
	cp   *controlplane.ControlPlane
	mgr  *rds.Manager
	d    *driver.Driver
	r    *reconciler.Reconciler
	rec  *record.FakeRecorder
	reg  *prometheus.Registry
	kube *fake.Clientset
	// led is closed when the replica serves: it leads and has rebuilt its
	// attachment state.
	led chan struct{}
	// stop ends the replica's process (its Lease is kept if the elector
	// says so, as with kill -9).
	stop context.CancelFunc
}

// newClusterRig builds a replica and connects it to RDS; elector nil means
// it is the only replica. It serves once it leads; without an elector,
// newClusterRig waits for that.
func newClusterRig(t *testing.T, kube *fake.Clientset, emu *emulatortest.Emulator, clk *libclock.Mock, elector leader.Elector) *clusterRig {
	t.Helper()
	return newClusterRigWith(t, kube, emu, clk, elector, driver.Options{})
}

// newClusterRigWith is newClusterRig with driver options on top of the
// rig's base path and NVMe address (restrict hosts, for one).
func newClusterRigWith(t *testing.T, kube *fake.Clientset, emu *emulatortest.Emulator, clk *libclock.Mock, elector leader.Elector,
	do driver.Options) *clusterRig {
	t.Helper()
	do.BasePath, do.NVMeAddress = "/storage-pool/k8s", "127.0.0.1"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	conn := emulatorConnector(t, emu)
	rig := &clusterRig{clk: clk, emu: emu, rec: record.NewFakeRecorder(1000), reg: prometheus.NewRegistry(), kube: kube,
		led: make(chan struct{}), stop: cancel}
	var err error
	rig.cp, err = controlplane.New(controlplane.Seams{Clock: clock.FromLibrary(clk), Kube: kube, Connector: conn, Rand: fixedRand(0.5),
		Registerer: rig.reg, Recorder: rig.rec, Elector: elector}, controlplane.Options{
		Driver: do,
		RDS:    rds.ManagerConfig{HealthInterval: 10 * time.Second, HealthTimeout: 5 * time.Second},
		Reconciler: reconciler.Options{
			Identity: &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "rds-csi-0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rig.mgr, rig.d, rig.r = rig.cp.RDS, rig.cp.Driver, rig.cp.Reconciler
	t.Cleanup(func() { rig.cp.Close() })
	if err := rig.cp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	go rig.cp.Run(ctx, func(lctx context.Context) error {
		close(rig.led)
		<-lctx.Done()
		return nil
	})
	if elector == nil {
		select {
		case <-rig.led:
		case <-time.After(10 * time.Second):
			t.Fatal("the only replica never served")
		}
	}
	return rig
}

// emulatorConnector dials the emulator over SSH with its host key pinned.
func emulatorConnector(t *testing.T, emu *emulatortest.Emulator) rds.Connector {
	t.Helper()
	conn, err := rds.NewSSHConnector(nil, rds.SSHConfig{Address: emu.Addr(), Signer: emu.ClientSigner(),
		KnownHostsLine: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(emu.HostKey())))})
	if err != nil {
		t.Fatal(err)
	}
	return conn
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

func pvFor(volume string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: volume}, Spec: corev1.PersistentVolumeSpec{
		AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
		PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
			Driver: driver.DefaultName, VolumeHandle: volume}}}}
}

// vaFor is the VolumeAttachment the attach-detach controller and the
// external-attacher would have left for an attached volume.
func vaFor(volume, node string, created time.Time) *storagev1.VolumeAttachment {
	pv := volume
	return &storagev1.VolumeAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: "csi-" + volume + "-" + node, CreationTimestamp: metav1.NewTime(created)},
		Spec: storagev1.VolumeAttachmentSpec{Attacher: driver.DefaultName, NodeName: node,
			Source: storagev1.VolumeAttachmentSource{PersistentVolumeName: &pv}},
		Status: storagev1.VolumeAttachmentStatus{Attached: true},
	}
}
