package controlplane_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/internal/promtest"
)

var rwxBlock = []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}}

// fenceRig is a restrict-hosts controller replica with its volume.
type fenceRig struct {
	*clusterRig
	id string
}

// fenceGrace is short so that a claim lapses without the mock clock
// crossing a health check (the clock library's deadline contexts race
// with a check in flight when one Add spans both).
const fenceGrace = 2 * time.Second

func newFenceRig(t *testing.T, kube *fake.Clientset, emu *emulatortest.Emulator, clk *libclock.Mock) *fenceRig {
	t.Helper()
	return &fenceRig{clusterRig: newClusterRigWith(t, kube, emu, clk, nil, driver.Options{RestrictHosts: true, GracePeriod: fenceGrace})}
}

func (r *fenceRig) create(t *testing.T, caps []*csi.VolumeCapability) {
	t.Helper()
	vol, err := r.d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-fence", VolumeCapabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	r.id = vol.GetVolume().GetVolumeId()
}

// publish is ControllerPublish as the external-attacher sends it: ABORTED
// (the reconciler is applying the volume's allow-list) is retried.
func (r *fenceRig) publish(node string, caps []*csi.VolumeCapability) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := r.d.ControllerPublishVolume(context.Background(), &csi.ControllerPublishVolumeRequest{VolumeId: r.id, NodeId: node,
			VolumeCapability: caps[0]})
		if status.Code(err) != codes.Aborted || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *fenceRig) unpublish(t *testing.T, node string) {
	t.Helper()
	if _, err := r.d.ControllerUnpublishVolume(context.Background(), &csi.ControllerUnpublishVolumeRequest{VolumeId: r.id, NodeId: node}); err != nil {
		t.Fatalf("unpublish %s: %v", node, err)
	}
}

// allowed is what RDS (the emulator's store) lets connect to the volume.
func (r *fenceRig) allowed() string {
	d, _ := r.emu.Store().DiskBySlot(r.id)
	return d.NVMeTCPServerAllowHostName
}

// hosts renders nodes as the allow-list value: their host NQNs, sorted, or
// Nobody.
func hosts(nodes ...string) string {
	if len(nodes) == 0 {
		return hostnqn.Nobody
	}
	var out []string
	for _, n := range nodes {
		h, _ := hostnqn.For(n)
		out = append(out, h)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// claimed is the allow-list the claims call for.
func (r *fenceRig) claimed() string {
	var nodes []string
	for _, c := range r.cp.Attachments.Holders(r.id) {
		nodes = append(nodes, c.Node)
	}
	return hosts(nodes...)
}

// follows: once RDS is reachable and the reconciler has run, the export
// allows exactly the holders.
func (r *fenceRig) follows(t *testing.T, want string) {
	t.Helper()
	eventually(t, "allow-list "+want, func() bool { return r.allowed() == want && r.claimed() == want })
}

// neverAllows fails if RDS allows node's host.
func (r *fenceRig) neverAllows(t *testing.T, node string) {
	t.Helper()
	if h := hosts(node); slices.Contains(strings.Split(r.allowed(), ","), h) {
		t.Fatalf("RDS allows %s (%q), which holds no claim", node, r.allowed())
	}
}

func (r *fenceRig) outage(t *testing.T) {
	t.Helper()
	r.emu.Faults().HangAll()
	r.clk.Add(10 * time.Second)
	eventually(t, "health check in flight", func() bool { return r.emu.Faults().Hanging() > 0 })
	r.clk.Add(5 * time.Second)
	eventually(t, "RDS reported down", func() bool { return r.mgr.State() != rds.StateConnected })
}

func (r *fenceRig) recover(t *testing.T) {
	t.Helper()
	r.emu.Faults().Release()
	r.clk.Add(time.Second) // one backoff step, jitter pinned
	eventually(t, "reconnected", func() bool { return r.mgr.State() == rds.StateConnected })
}

// TestRestrictHosts: with --restrict-hosts the export's allow-list follows
// the claims through publish, unpublish, a migration, an RDS outage and a
// controller restart, on the mock clock against the emulator; it never
// allows a host without a claim once RDS is reachable.
func TestRestrictHosts(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, r *fenceRig)
	}{
		{"created closed, cloned closed", func(t *testing.T, r *fenceRig) {
			// No host may connect between a disk's creation and its
			// first publish: a clone holds data from its first moment.
			r.create(t, rwoMount)
			if got := r.allowed(); got != hosts() {
				t.Fatalf("new volume: RDS allows %q, want %q", got, hosts())
			}
			clone, err := r.d.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "pvc-fence-clone", VolumeCapabilities: rwoMount,
				VolumeContentSource: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
					Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: r.id}}}})
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := r.emu.Store().DiskBySlot(clone.GetVolume().GetVolumeId()); d.NVMeTCPServerAllowHostName != hosts() {
				t.Fatalf("cloned volume: RDS allows %q, want %q", d.NVMeTCPServerAllowHostName, hosts())
			}
		}},
		{"publish then unpublish", func(t *testing.T, r *fenceRig) {
			r.create(t, rwoMount)
			if err := r.publish("node-a", rwoMount); err != nil {
				t.Fatal(err)
			}
			// Applied before the publish answered, not eventually.
			if got := r.allowed(); got != hosts("node-a") {
				t.Fatalf("after publish RDS allows %q, want %q", got, hosts("node-a"))
			}
			r.unpublish(t, "node-a")
			r.follows(t, hosts())
		}},
		{"second node refused while the first holds", func(t *testing.T, r *fenceRig) {
			r.create(t, rwoMount)
			if err := r.publish("node-a", rwoMount); err != nil {
				t.Fatal(err)
			}
			if err := r.publish("node-b", rwoMount); status.Code(err) != codes.FailedPrecondition {
				t.Fatalf("publish to node-b: %v, want FAILED_PRECONDITION", err)
			}
			r.neverAllows(t, "node-b")
			r.follows(t, hosts("node-a"))
		}},
		{"migration: two hosts, never three", func(t *testing.T, r *fenceRig) {
			r.create(t, rwxBlock)
			for _, n := range []string{"node-a", "node-b"} {
				if err := r.publish(n, rwxBlock); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.allowed(); got != hosts("node-a", "node-b") {
				t.Fatalf("during the hand-off RDS allows %q", got)
			}
			if err := r.publish("node-c", rwxBlock); err == nil {
				t.Fatal("a third node was published")
			}
			r.neverAllows(t, "node-c")
			r.unpublish(t, "node-a")
			r.follows(t, hosts("node-b"))
		}},
		{"unpublish during an outage, then reconnect", func(t *testing.T, r *fenceRig) {
			r.create(t, rwoMount)
			if err := r.publish("node-a", rwoMount); err != nil {
				t.Fatal(err)
			}
			r.outage(t)
			r.unpublish(t, "node-a") // never needs RDS
			if err := r.publish("node-b", rwoMount); status.Code(err) != codes.Unavailable {
				t.Fatalf("publish to node-b during the outage: %v, want UNAVAILABLE", err)
			}
			if vols, _ := r.d.Pending(); !slices.Contains(vols, r.id) {
				t.Fatalf("revocation not recorded: pending %v", vols)
			}
			if v := promtest.Value(t, r.reg, "rds_csi_pending_host_revocations", nil); v != 1 {
				t.Fatalf("rds_csi_pending_host_revocations = %v during the outage, want 1", v)
			}
			r.recover(t)
			// Nobody asks for the volume: the reconnect's run applies it.
			r.follows(t, hosts())
			eventually(t, "no revocation pending", func() bool {
				return promtest.Value(t, r.reg, "rds_csi_pending_host_revocations", nil) == 0 &&
					promtest.Value(t, r.reg, "rds_csi_host_revocation_sweep_pending", nil) == 0
			})
			if err := r.publish("node-b", rwoMount); err != nil {
				t.Fatal(err)
			}
			r.follows(t, hosts("node-b"))
		}},
		{"publish elsewhere right after reconnect", func(t *testing.T, r *fenceRig) {
			r.create(t, rwoMount)
			if err := r.publish("node-a", rwoMount); err != nil {
				t.Fatal(err)
			}
			r.outage(t)
			r.unpublish(t, "node-a")
			r.recover(t)
			// Whether or not the reconciler got there first, the publish
			// answers only with node-a's host gone.
			if err := r.publish("node-b", rwoMount); err != nil {
				t.Fatal(err)
			}
			if got := r.allowed(); got != hosts("node-b") {
				t.Fatalf("after publishing to node-b RDS allows %q", got)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := libclock.NewMock()
			emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
			kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"), readyNode("node-c"))
			tc.run(t, newFenceRig(t, kube, emu, clk))
		})
	}
}

// newPublishedOnA is a fence rig with one volume as Kubernetes leaves it
// attached to node-a: its PV, its VolumeAttachment, and the publish.
func newPublishedOnA(t *testing.T, kube *fake.Clientset, emu *emulatortest.Emulator, clk *libclock.Mock) (*fenceRig, *storagev1.VolumeAttachment) {
	t.Helper()
	ctx := context.Background()
	r := newFenceRig(t, kube, emu, clk)
	r.create(t, rwoMount)
	if _, err := kube.CoreV1().PersistentVolumes().Create(ctx, pvFor(r.id), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	va := vaFor(r.id, "node-a", clk.Now())
	if _, err := kube.StorageV1().VolumeAttachments().Create(ctx, va, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.publish("node-a", rwoMount); err != nil {
		t.Fatal(err)
	}
	return r, va
}

// TestRestrictHostsAcrossRestart: the controller that recorded a revocation
// during an outage dies before RDS is back; its successor keeps nothing of
// it in memory, yet its first run once RDS answers finds the export allowing
// a host without a claim and revokes it, and a publish elsewhere never sees
// the old host allowed.
func TestRestrictHostsAcrossRestart(t *testing.T) {
	for _, keepVA := range []bool{false, true} {
		name := "VolumeAttachment deleted"
		if keepVA {
			name = "VolumeAttachment kept: the claim survives"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := libclock.NewMock()
			emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
			kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"))
			r, va := newPublishedOnA(t, kube, emu, clk)
			r.outage(t)
			if !keepVA {
				r.unpublish(t, "node-a")
				if err := kube.StorageV1().VolumeAttachments().Delete(ctx, va.Name, metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			r.stop()
			r.cp.Close()
			emu.Faults().Release()

			next := newFenceRig(t, kube, emu, clk)
			next.id = r.id
			if _, all := next.d.Pending(); !all && !keepVA && next.allowed() != hosts() {
				t.Fatal("a new controller owes no sweep")
			}
			if keepVA {
				next.follows(t, hosts("node-a"))
				return
			}
			next.follows(t, hosts())
			if err := next.publish("node-b", rwoMount); err != nil {
				t.Fatal(err)
			}
			next.follows(t, hosts("node-b"))
		})
	}
}

// TestFenceBeforeFailover: node-a is deleted while it still holds the
// volume. Its claim lapses after the grace period (2s here), and the reconciler
// revokes its host first; while RDS is down the claim is kept, since
// clearing it would let the volume be published elsewhere with node-a still
// allowed.
func TestFenceBeforeFailover(t *testing.T) {
	for _, down := range []bool{false, true} {
		name := "RDS up"
		if down {
			name = "RDS down when the claim lapses"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			clk := libclock.NewMock()
			emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
			kube := fake.NewSimpleClientset(readyNode("node-a"), readyNode("node-b"))
			r, _ := newPublishedOnA(t, kube, emu, clk)
			if down {
				r.outage(t)
			}
			if err := kube.CoreV1().Nodes().Delete(ctx, "node-a", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			eventually(t, "node-a reported gone", func() bool {
				h := r.cp.Attachments.Holders(r.id)
				return len(h) == 1 && !h[0].GoneSince.IsZero()
			})
			clk.Add(fenceGrace + time.Second) // past the grace period
			if down {
				// The lapse's run must keep the claim.
				r.r.ReconcileOnce(ctx)
				if h := r.cp.Attachments.Holders(r.id); len(h) != 1 || h[0].Node != "node-a" {
					t.Fatalf("claim cleared while node-a's host could not be revoked: holders %v", h)
				}
				if err := r.publish("node-b", rwoMount); err == nil {
					t.Fatal("published to node-b during the outage")
				}
				r.recover(t)
			}
			eventually(t, "claim cleared", func() bool { return len(r.cp.Attachments.Holders(r.id)) == 0 })
			// The clear came after the revocation.
			r.neverAllows(t, "node-a")
			r.follows(t, hosts())
			if err := r.publish("node-b", rwoMount); err != nil {
				t.Fatal(err)
			}
			r.follows(t, hosts("node-b"))
		})
	}
}
