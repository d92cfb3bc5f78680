package controlplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rds-csi/rds-csi/driver/leader"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

// TestLeaderFailoverKeepsAttachments: the leader is killed (its Lease is not
// released, as with kill -9); the standby takes over after the Lease expires,
// rebuilds the attachment state from VolumeAttachments as on start-up, and
// decides with it: the volume held by node-a is refused to node-b. Both
// replicas are assembled by controlplane.New and led by controlplane.Run, as
// in the binary.
func TestLeaderFailoverKeepsAttachments(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"))
	opts := leader.LeaseOptions{LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond,
		RetryPeriod: 100 * time.Millisecond, KeepOnExit: true}

	// Each replica is a whole process: it builds the control plane and
	// connects to RDS at once, and serves only once it holds the Lease.
	start := func(name string) *clusterRig {
		el, err := leader.NewLease(kube, "kube-system", "rds-csi-controller", name, opts)
		if err != nil {
			t.Fatal(err)
		}
		return newClusterRig(t, kube, emu, libclock.NewMock(), el)
	}
	a := start("replica-a")
	select {
	case <-a.led:
	case <-time.After(10 * time.Second):
		t.Fatal("replica-a never led")
	}
	b := start("replica-b")
	ctx := context.Background()

	vol, err := a.d.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-ha", VolumeCapabilities: rwoMount})
	if err != nil {
		t.Fatal(err)
	}
	id := vol.GetVolume().GetVolumeId()
	if _, err := a.d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "node-a", VolumeCapability: rwoMount[0]}); err != nil {
		t.Fatal(err)
	}
	// What the provisioner and attacher record in the API server.
	if _, err := kube.CoreV1().PersistentVolumes().Create(ctx, pvFor(id), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.StorageV1().VolumeAttachments().Create(ctx, vaFor(id, "node-a", time.Now()), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.led:
		t.Fatal("the standby led while the leader was alive")
	default:
	}

	killed := time.Now()
	a.stop()
	select {
	case <-b.led:
		t.Logf("standby took over %v after the leader died (lease %v)", time.Since(killed), opts.LeaseDuration)
	case <-time.After(15 * time.Second):
		t.Fatal("the standby never took over")
	}
	d := b.d
	holders := d.Attachments().Holders(id)
	if len(holders) != 1 || holders[0].Node != "node-a" {
		t.Fatalf("new leader's claims on %s: %+v, want node-a's", id, holders)
	}
	_, err = d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "node-b", VolumeCapability: rwoMount[0]})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "node-a") {
		t.Fatalf("publish to node-b on the new leader: %v, want FAILED_PRECONDITION naming node-a", err)
	}
	if _, err := d.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: id, NodeId: "node-a", VolumeCapability: rwoMount[0]}); err != nil {
		t.Fatalf("idempotent publish to the holder on the new leader: %v", err)
	}
}
