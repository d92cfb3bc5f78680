package driver

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
)

var controllerCapabilities = []csi.ControllerServiceCapability_RPC_Type{
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
	csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
	csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
	csi.ControllerServiceCapability_RPC_GET_VOLUME,
	csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
	csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
	csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	csi.ControllerServiceCapability_RPC_PUBLISH_READONLY,
	csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
	csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
	csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
}

// ControllerGetCapabilities lists what the controller implements.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	caps := make([]*csi.ControllerServiceCapability, 0, len(controllerCapabilities))
	for _, c := range controllerCapabilities {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: c}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// lockVolume serialises operations on one volume (or snapshot) ID. A second
// operation while one runs gets ABORTED, which the sidecars retry later; waiting
// instead would pile up goroutines behind a slow RDS.
func (d *Driver) lockVolume(id string) (func(), error) {
	unlock, ok := d.ops.TryLock(id)
	if !ok {
		return nil, status.Errorf(codes.Aborted, "an operation on %s is already in progress", id)
	}
	return unlock, nil
}

// begin serialises an operation on one volume or snapshot and bounds its
// backend work by the operation timeout; done releases both.
func (d *Driver) begin(ctx context.Context, id string) (context.Context, func(), error) {
	unlock, err := d.lockVolume(id)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	return ctx, func() { cancel(); unlock() }, nil
}

// lookupVolume returns the driver's volume id. A slot that holds no disk, or a
// disk the driver does not own (see driver/ownership), is NOT_FOUND: a
// hand-made disk that happens to be called pvc-something is not a volume.
func (d *Driver) lookupVolume(ctx context.Context, id string) (*rds.Disk, error) {
	if !isVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	disk, err := d.rds.GetDisk(ctx, id)
	if err != nil {
		return nil, rdsStatus("look up volume", err)
	}
	if !d.owner.OwnsVolume(disk) {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist: RDS slot %s holds %s, which is not this driver's", id, id, describe(disk))
	}
	return disk, nil
}

// CreateVolume creates (or finds, on retry) a file disk exported over NVMe/TCP,
// empty or copied from a snapshot or another volume.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if err := requireID("volume name", req.GetName()); err != nil {
		return nil, err
	}
	if _, err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params, err := d.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	size, err := capacityFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	slot := volumeSlot(req.GetName())
	ctx, done, err := d.begin(ctx, slot)
	if err != nil {
		return nil, err
	}
	defer done()

	src := req.GetVolumeContentSource()
	path := filePathFor(params.basePath, slot)
	// An existing disk in the slot: a retry, a name reused with other
	// parameters, or a disk that is not ours in the slot the name maps to,
	// which is never adopted.
	checkExisting := func(existing *rds.Disk) error {
		if !d.owner.OwnsVolume(existing) {
			return status.Errorf(codes.FailedPrecondition,
				"RDS slot %s is taken by %s, which this driver does not own; refusing to adopt it (rename or remove that disk)", slot, describe(existing))
		}
		if existing.FilePath != path {
			return status.Errorf(codes.AlreadyExists,
				"volume %q exists as %s, not under the requested base path %s", req.GetName(), describe(existing), params.basePath)
		}
		if existing.Port != params.nvmePort {
			return status.Errorf(codes.AlreadyExists,
				"volume %q exists as %s, exported on NVMe/TCP port %d, not the requested %d", req.GetName(), describe(existing), existing.Port, params.nvmePort)
		}
		if !fitsRange(existing.Size, req.GetCapacityRange()) {
			return status.Errorf(codes.AlreadyExists,
				"volume %q exists as %s, which does not fit the requested capacity range", req.GetName(), describe(existing))
		}
		return nil
	}
	if src.GetSnapshot() == nil && src.GetVolume() == nil {
		// CreateDisk reads the slot itself and applies checkExisting to what
		// it finds there, so an empty volume costs no read of its own.
		found := false
		disk, err := d.rds.CreateDisk(ctx, rds.CreateDiskRequest{
			Slot: slot, FilePath: path, Size: size, Export: true, Port: params.nvmePort, NQN: d.nqnFor(slot),
			AllowedHosts: d.newExportHosts(),
			OnExisting: func(existing *rds.Disk) error {
				found = true
				return checkExisting(existing)
			},
		})
		if err != nil {
			return nil, rdsStatus("create volume", err)
		}
		if found {
			klog.InfoS("Volume already exists", "name", req.GetName(), "volume", slot, "bytes", disk.Size, "file", disk.FilePath)
		} else {
			klog.InfoS("Volume created", "name", req.GetName(), "volume", slot, "bytes", disk.Size, "file", disk.FilePath)
		}
		return d.createResponse(disk, params, src), nil
	}

	// A copy looks at the slot first: a retry must succeed even when its
	// source has gone since.
	existing, err := d.rds.GetDisk(ctx, slot)
	switch {
	case err == nil:
		if err := checkExisting(existing); err != nil {
			return nil, err
		}
		return d.createResponse(existing, params, src), nil
	case !errors.Is(err, rds.ErrNotFound):
		return nil, rdsStatus("look up volume", err)
	}

	var disk *rds.Disk
	if src.GetSnapshot() != nil {
		disk, err = d.copyInto(ctx, src.GetSnapshot().GetSnapshotId(), "snapshot", slot, path, size, params)
	} else {
		disk, err = d.copyInto(ctx, src.GetVolume().GetVolumeId(), "volume", slot, path, size, params)
	}
	if err != nil {
		return nil, err
	}
	klog.InfoS("Volume created", "name", req.GetName(), "volume", slot, "bytes", disk.Size, "file", disk.FilePath)
	return d.createResponse(disk, params, src), nil
}

// copyInto creates slot as an exported copy of a snapshot or volume, grown to
// at least size. Only the driver's own volumes and snapshots are copied.
func (d *Driver) copyInto(ctx context.Context, srcID, kind, slot, path string, size int64, p volumeParams) (*rds.Disk, error) {
	var src *rds.Disk
	var err error
	if kind == "snapshot" {
		src, _, err = d.lookupSnapshot(ctx, srcID)
	} else {
		src, err = d.lookupVolume(ctx, srcID)
	}
	if err != nil {
		return nil, err
	}
	if src.Size > size {
		return nil, status.Errorf(codes.OutOfRange, "source %s %s holds %d bytes, more than the requested %d", kind, srcID, src.Size, size)
	}
	disk, err := d.rds.CopyDisk(ctx, rds.CopyDiskRequest{
		SourceSlot: srcID, Slot: slot, FilePath: path, Export: true, Port: p.nvmePort, NQN: d.nqnFor(slot),
		AllowedHosts: d.newExportHosts(),
	})
	if err != nil {
		return nil, rdsStatus("copy "+kind, err)
	}
	if disk.Size < size {
		if disk, err = d.rds.ResizeDisk(ctx, slot, size); err != nil {
			return nil, rdsStatus("grow copied "+kind, err)
		}
	}
	return disk, nil
}

func (d *Driver) createResponse(disk *rds.Disk, p volumeParams, src *csi.VolumeContentSource) *csi.CreateVolumeResponse {
	return &csi.CreateVolumeResponse{Volume: &csi.Volume{
		VolumeId:      disk.Slot,
		CapacityBytes: disk.Size,
		VolumeContext: d.volumeContext(disk.Slot, disk.FilePath, p),
		ContentSource: src,
	}}
}

// DeleteVolume removes the disk and its backing file and checks both are gone.
// Deleting something that does not exist succeeds, as the CSI spec asks.
// Snapshots are independent copies, so they survive their source.
func (d *Driver) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := requireID("volume ID", id); err != nil {
		return nil, err
	}
	if !isVolumeID(id) {
		return &csi.DeleteVolumeResponse{}, nil
	}
	if err := d.stateReady(); err != nil {
		return nil, err
	}
	unlock, err := d.lockVolume(id)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if holders := d.attach.Holders(id); len(holders) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published to node %s", id, holders[0].Node)
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if err := d.deleteDisk(ctx, id); err != nil {
		return nil, rdsStatus("delete volume", err)
	}
	klog.InfoS("Volume deleted", "volume", id)
	return &csi.DeleteVolumeResponse{}, nil
}

// deleteDisk removes the driver's disk in slot and its backing file, wherever
// under the allowed base paths it is, and any file a half-finished delete
// left at one of those exact paths. A disk in the slot that is not the
// driver's is left alone (rds.Client.DeleteDisk only removes a disk whose
// file is the path it is given), so deleting "pvc-x" can never remove a
// hand-made pvc-x elsewhere in the pool.
func (d *Driver) deleteDisk(ctx context.Context, slot string) error {
	for _, base := range d.owner.Bases() {
		if err := d.rds.DeleteDisk(ctx, slot, filePathFor(base, slot)); err != nil {
			return err
		}
	}
	return nil
}

// ControllerPublishVolume records that a node may use the volume, under the
// attachment rules, and tells the node how to reach it.
func (d *Driver) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	if err := requireID("volume ID", id); err != nil {
		return nil, err
	}
	if err := requireID("node ID", node); err != nil {
		return nil, err
	}
	if req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "volume capability missing")
	}
	kind, err := checkCapabilities([]*csi.VolumeCapability{req.GetVolumeCapability()})
	if err != nil {
		return nil, err
	}
	if !isVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	if d.opts.RestrictHosts {
		if _, err := hostnqn.For(node); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "node %s has no host NQN the export could allow: %v", node, err)
		}
	}
	// Serialised with create, delete and expand of the same volume, so a
	// publish can never land on a volume that is being deleted.
	ctx, done, err := d.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := validateNodeParams(req.GetVolumeContext()); err != nil {
		return nil, err
	}
	exists, err := d.opts.Nodes.NodeExists(ctx, node)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "look up node %s: %v", node, err)
	}
	if !exists {
		return nil, status.Errorf(codes.NotFound, "node %s does not exist", node)
	}
	disk, err := d.lookupVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	if disk.NQN != "" {
		if err := rds.ValidateNQN(disk.NQN); err != nil {
			return nil, status.Errorf(codes.Internal, "RDS reports a malformed NQN for volume %s: %v", id, err)
		}
	}
	mode := attachment.SingleNode
	if kind.multiNode {
		mode = attachment.MultiNodeBlock
	}
	grace := d.opts.GracePeriod
	if g, err := time.ParseDuration(req.GetVolumeContext()[paramGracePeriod]); err == nil && g >= 0 {
		grace = g
	}
	held := d.holds(id, node)
	if !held {
		if err := d.checkNodeLimit(id, node); err != nil {
			return nil, err
		}
	}
	if err := d.readOnly.admit(id, node, req.GetReadonly(), held); err != nil {
		return nil, err
	}
	if err := d.attach.Publish(id, node, mode, grace); err != nil {
		if !held {
			d.readOnly.forget(id, node)
		}
		return nil, attachmentStatus(err)
	}
	if d.opts.RestrictHosts {
		if err := d.allowPublished(ctx, disk); err != nil {
			if !held {
				// Not granted: the node must not keep a claim that its
				// host may not have on RDS (the list stays owed).
				d.attach.Unpublish(id, node)
				d.readOnly.forget(id, node)
			}
			return nil, err
		}
	}
	return &csi.ControllerPublishVolumeResponse{PublishContext: d.publishContext(disk, req.GetVolumeContext())}, nil
}

// publishContext is what the node needs to connect: the NQN as RDS reports it,
// and the address, port and NVMe options from the volume context.
func (d *Driver) publishContext(disk *rds.Disk, vc map[string]string) map[string]string {
	pc := map[string]string{
		paramFilePath:    disk.FilePath,
		paramNQN:         disk.NQN,
		paramNVMeAddress: d.opts.NVMeAddress,
		paramNVMePort:    strconv.Itoa(d.opts.NVMePort),
	}
	if disk.NQN == "" {
		pc[paramNQN] = d.nqnFor(disk.Slot)
	}
	if disk.Port != 0 {
		pc[paramNVMePort] = strconv.Itoa(disk.Port)
	}
	for _, k := range []string{paramNVMeAddress, paramCtrlLossTmo, paramReconnectDelay, paramKeepAliveTmo, paramFastIOFailTmo, paramDataPlane, paramFSType} {
		if v, ok := vc[k]; ok && v != "" {
			pc[k] = v
		}
	}
	return pc
}

// ControllerUnpublishVolume releases a node's claim. It never talks to RDS: a
// detach must complete during an RDS outage, or the VolumeAttachment stays stuck
// behind its finalizer, which is exactly the outage this driver was built for.
func (d *Driver) ControllerUnpublishVolume(_ context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	if err := requireID("volume ID", req.GetVolumeId()); err != nil {
		return nil, err
	}
	if req.GetNodeId() == "" {
		// The spec allows an empty node ID: unpublish from every node.
		for _, c := range d.attach.Holders(req.GetVolumeId()) {
			d.attach.Unpublish(req.GetVolumeId(), c.Node)
		}
		d.readOnly.forget(req.GetVolumeId(), "")
		if d.opts.RestrictHosts {
			d.revoked(req.GetVolumeId())
		}
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	d.attach.Unpublish(req.GetVolumeId(), req.GetNodeId())
	d.readOnly.forget(req.GetVolumeId(), req.GetNodeId())
	if d.opts.RestrictHosts {
		// Recorded, not applied: unpublish must complete with RDS down.
		d.revoked(req.GetVolumeId())
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms capabilities this driver can serve.
func (d *Driver) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if err := requireID("volume ID", id); err != nil {
		return nil, err
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities missing")
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	if _, err := d.lookupVolume(ctx, id); err != nil {
		return nil, err
	}
	if _, err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	if _, err := d.parseParams(req.GetParameters()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// page applies CSI pagination to a sorted list of IDs. The token is the last ID
// of the previous page, so deletions between pages neither skip nor repeat
// entries; a token that is not a valid ID is ABORTED, as the spec asks.
func page(ids []string, token string, max int32, valid func(string) bool) (start, end int, next string, err error) {
	if max < 0 {
		return 0, 0, "", status.Error(codes.InvalidArgument, "max_entries is negative")
	}
	if token != "" {
		if !valid(token) {
			return 0, 0, "", status.Errorf(codes.Aborted, "starting token %q is not valid", token)
		}
		start = sort.SearchStrings(ids, token)
		if start < len(ids) && ids[start] == token {
			start++
		}
	}
	end = len(ids)
	if max > 0 && start+int(max) < end {
		end = start + int(max)
		next = ids[end-1]
	}
	return start, end, next, nil
}

// ownedVolumes lists the driver's volumes on RDS, by ID and as sorted IDs;
// look-alikes elsewhere in the pool are left out, and a slot printed twice
// is an error (the listing cannot be trusted). what names the RPC in errors.
func (d *Driver) ownedVolumes(ctx context.Context, what string) (map[string]rds.Disk, []string, error) {
	disks, err := d.rds.ListDisks(ctx, volumeSlotListRE)
	if err != nil {
		return nil, nil, rdsStatus(what, err)
	}
	byID := map[string]rds.Disk{}
	ids := make([]string, 0, len(disks))
	for _, disk := range disks {
		if !d.owner.OwnsVolume(&disk) {
			continue
		}
		if _, dup := byID[disk.Slot]; dup {
			return nil, nil, status.Errorf(codes.Internal, "%s: RDS printed slot %s twice", what, disk.Slot)
		}
		byID[disk.Slot] = disk
		ids = append(ids, disk.Slot)
	}
	sort.Strings(ids)
	return byID, ids, nil
}

// ListVolumes lists this driver's volumes with the nodes they are published
// to (their health is ControllerListVolumeHealth's).
func (d *Driver) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if err := d.stateReady(); err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	byID, ids, err := d.ownedVolumes(ctx, "list volumes")
	if err != nil {
		return nil, err
	}
	start, end, next, err := page(ids, req.GetStartingToken(), req.GetMaxEntries(), isVolumeID)
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, id := range ids[start:end] {
		disk := byID[id]
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{
			Volume: &csi.Volume{VolumeId: id, CapacityBytes: disk.Size},
			Status: &csi.ListVolumesResponse_VolumeStatus{PublishedNodeIds: d.publishedNodes(id)},
		})
	}
	return resp, nil
}

func (d *Driver) publishedNodes(id string) []string {
	var nodes []string
	for _, c := range d.attach.Holders(id) {
		nodes = append(nodes, c.Node)
	}
	return nodes
}

// beginVolumeRead starts an RPC that reads one volume: the ID is required
// (a malformed one is NOT_FOUND without asking RDS), the attachment state
// must be ready, and backend work is bounded by the operation timeout.
func (d *Driver) beginVolumeRead(ctx context.Context, id string) (context.Context, context.CancelFunc, error) {
	if err := requireID("volume ID", id); err != nil {
		return nil, nil, err
	}
	if !isVolumeID(id) {
		return nil, nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	if err := d.stateReady(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	return ctx, cancel, nil
}

// ControllerGetVolume reports one volume's size and published nodes (its
// health is ControllerGetVolumeHealth's).
func (d *Driver) ControllerGetVolume(ctx context.Context, req *csi.ControllerGetVolumeRequest) (*csi.ControllerGetVolumeResponse, error) {
	id := req.GetVolumeId()
	ctx, cancel, err := d.beginVolumeRead(ctx, id)
	if err != nil {
		return nil, err
	}
	defer cancel()
	disk, err := d.lookupVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeResponse{
		Volume: &csi.Volume{VolumeId: id, CapacityBytes: disk.Size},
		Status: &csi.ControllerGetVolumeResponse_VolumeStatus{PublishedNodeIds: d.publishedNodes(id)},
	}, nil
}

// GetCapacity reports the free space of the pool a StorageClass's base path is in.
func (d *Driver) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	if len(req.GetVolumeCapabilities()) > 0 {
		if _, err := checkCapabilities(req.GetVolumeCapabilities()); err != nil {
			return &csi.GetCapacityResponse{}, nil // this storage cannot serve them: zero capacity
		}
	}
	params, err := d.parseParams(req.GetParameters())
	if err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	c, err := d.rds.PoolCapacity(ctx, poolName(params.basePath))
	if err != nil {
		return nil, rdsStatus("pool capacity", err)
	}
	free := c.Free
	if free < 0 {
		free = 0
	}
	return &csi.GetCapacityResponse{AvailableCapacity: free, MaximumVolumeSize: wrapInt64(free)}, nil
}

// ControllerExpandVolume grows the disk (RDS cannot shrink) online; a filesystem
// on it is grown by the node afterwards.
func (d *Driver) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := requireID("volume ID", id); err != nil {
		return nil, err
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity range missing")
	}
	size, err := capacityFor(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if !isVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %s does not exist", id)
	}
	ctx, done, err := d.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	disk, err := d.lookupVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	if disk.Size < size {
		if disk, err = d.rds.ResizeDisk(ctx, id, size); err != nil {
			return nil, rdsStatus("expand volume", err)
		}
		klog.InfoS("Volume expanded", "volume", id, "bytes", disk.Size)
	}
	block := req.GetVolumeCapability().GetBlock() != nil
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: disk.Size, NodeExpansionRequired: !block}, nil
}

// ControllerModifyVolume is not supported: nothing about a disk is mutable
// besides its size.
func (d *Driver) ControllerModifyVolume(context.Context, *csi.ControllerModifyVolumeRequest) (*csi.ControllerModifyVolumeResponse, error) {
	return nil, status.Error(codes.Unimplemented, "volume attributes classes are not supported")
}
