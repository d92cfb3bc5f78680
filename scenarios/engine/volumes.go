package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Volume is one volume of the simulated cluster.
type Volume struct {
	Name   string // as the scenario names it (and the PVC)
	ID     string // CSI volume ID
	Size   int64
	RWX    bool
	Block  bool
	Params map[string]string // StorageClass parameters
	volCtx map[string]string
}

// CreateVolume provisions a volume as external-provisioner would and binds a
// PV for it; node, if set, schedules its pod there. The attach happens when
// time next advances (Advance), as it would after the scheduler's decision.
func (w *World) CreateVolume(v Volume, node string) error {
	k := w.kube
	if _, dup := k.vols[v.Name]; dup {
		return fmt.Errorf("engine: volume %s exists", v.Name)
	}
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if v.RWX {
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	req := &csi.CreateVolumeRequest{Name: "pvc-" + v.Name, VolumeCapabilities: []*csi.VolumeCapability{capability(v.Block, mode)},
		CapacityRange: &csi.CapacityRange{RequiredBytes: v.Size}, Parameters: v.Params}
	var resp *csi.CreateVolumeResponse
	err := w.callSync("CreateVolume", v.Name, func(ctx context.Context) error {
		return w.ctrlCall(ctx, func(ctx context.Context, d *driver.Driver) error {
			var err error
			resp, err = d.CreateVolume(ctx, req)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("engine: create volume %s: %w", v.Name, err)
	}
	v.ID, v.Size, v.volCtx = resp.GetVolume().GetVolumeId(), resp.GetVolume().GetCapacityBytes(), resp.GetVolume().GetVolumeContext()
	vol := v
	k.vols[v.Name] = &vol
	k.order = append(k.order, v.Name)
	w.inv.volumeCreated(&vol)
	pvMode := corev1.PersistentVolumeFilesystem
	if v.Block {
		pvMode = corev1.PersistentVolumeBlock
	}
	access := corev1.ReadWriteOnce
	if v.RWX {
		access = corev1.ReadWriteMany
	}
	pv := &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + v.Name},
		Spec: corev1.PersistentVolumeSpec{AccessModes: []corev1.PersistentVolumeAccessMode{access}, VolumeMode: &pvMode,
			ClaimRef: &corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: v.Name},
			PersistentVolumeSource: corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
				Driver: driver.DefaultName, VolumeHandle: v.ID, VolumeAttributes: v.volCtx}}}}
	if _, err := w.Kube.CoreV1().PersistentVolumes().Create(w.ctx, pv, metav1.CreateOptions{}); err != nil {
		return err
	}
	if node != "" {
		k.placement[v.Name] = []string{node}
		w.record(trace.KindPod, map[string]any{trace.FieldVolume: v.Name, trace.FieldNode: node, trace.FieldOp: "scheduled"})
	}
	return nil
}

func capability(block bool, mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "ext4"}}
	}
	return c
}

func (v *Volume) capability() *csi.VolumeCapability {
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	if v.RWX {
		mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	}
	return capability(v.Block, mode)
}

// Unschedule removes the pods of a volume from node ("" for every node).
func (w *World) Unschedule(volume, node string) error {
	if _, ok := w.kube.vols[volume]; !ok {
		return fmt.Errorf("engine: no volume %s", volume)
	}
	var keep []string
	for _, n := range w.kube.placement[volume] {
		if node != "" && n != node {
			keep = append(keep, n)
		}
	}
	w.kube.placement[volume] = keep
	w.record(trace.KindPod, map[string]any{trace.FieldVolume: volume, trace.FieldNode: node, trace.FieldOp: "deleted"})
	return nil
}

// AddPlacement runs a second pod of a volume on node (a migration target).
func (w *World) AddPlacement(volume, node string) error {
	if _, ok := w.kube.vols[volume]; !ok {
		return fmt.Errorf("engine: no volume %s", volume)
	}
	if !slices.Contains(w.kube.placement[volume], node) {
		w.kube.placement[volume] = append(w.kube.placement[volume], node)
	}
	w.record(trace.KindPod, map[string]any{trace.FieldVolume: volume, trace.FieldNode: node, trace.FieldOp: "scheduled"})
	return nil
}

// Placement is where the volume's pods run.
func (w *World) Placement(volume string) []string { return slices.Clone(w.kube.placement[volume]) }

// AttachedTo lists the nodes whose VolumeAttachment of the volume says
// attached, from the API server, sorted.
func (w *World) AttachedTo(volume string) []string {
	v, ok := w.kube.vols[volume]
	if !ok {
		return nil
	}
	attached, err := w.kube.attachedByPV()
	if err != nil {
		return nil
	}
	return slices.Clone(attached["pv-"+v.Name])
}

// attachedByPV is, per PersistentVolume, the nodes whose VolumeAttachment
// says attached, sorted, as the API server has them now. Expectations ask
// after every instant, volume by volume, and each List of the fake API
// server deep-copies every VolumeAttachment; they change only through API
// writes, which the reactor of watchAPI counts, so they are listed again
// only after one.
func (k *kubeSim) attachedByPV() (map[string][]string, error) {
	writes := k.vaWrites.Load() // before the List: a write during it lists again next time
	if k.attachedPV != nil && k.attachedPVAt == writes {
		return k.attachedPV, nil
	}
	list, err := k.w.Kube.StorageV1().VolumeAttachments().List(k.w.ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, va := range list.Items {
		if va.Status.Attached && va.Spec.Source.PersistentVolumeName != nil {
			pv := *va.Spec.Source.PersistentVolumeName
			m[pv] = append(m[pv], va.Spec.NodeName)
		}
	}
	for _, nodes := range m {
		sort.Strings(nodes)
	}
	k.attachedPV, k.attachedPVAt = m, writes
	return m, nil
}

// Claims lists the nodes holding a claim on the volume in the serving
// controller's attachment manager.
func (w *World) Claims(volume string) []string {
	v, ok := w.kube.vols[volume]
	if !ok || w.ctrl == nil {
		return nil
	}
	var out []string
	for _, c := range w.ctrl.cp.Attachments.Holders(v.ID) {
		out = append(out, c.Node)
	}
	sort.Strings(out)
	return out
}

// callSync runs one RPC on the engine's goroutine (set-up calls while RDS is
// known to be up) and traces it.
func (w *World) callSync(method, key string, fn func(ctx context.Context) error) error {
	ctx, cancel := w.vc.view().WithTimeout(w.ctx, w.opts.RPCTimeout)
	defer cancel()
	err := fn(ctx)
	w.record(trace.KindRPC, map[string]any{trace.FieldMethod: method, trace.FieldKey: key, trace.FieldCode: status.Code(err).String()})
	return err
}

// volumeName is the scenario's name of a CSI volume ID.
func (w *World) volumeName(id string) string {
	for _, name := range w.kube.order {
		if w.kube.vols[name].ID == id {
			return name
		}
	}
	return id
}
