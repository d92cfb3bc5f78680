package driver

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver/rds"
)

// lookupSnapshot is lookupVolume for snapshots.
func (d *Driver) lookupSnapshot(ctx context.Context, id string) (*rds.Disk, snapshotID, error) {
	parsed, ok := parseSnapshotID(id)
	if !ok {
		return nil, parsed, status.Errorf(codes.NotFound, "snapshot %s does not exist", id)
	}
	disk, err := d.rds.GetDisk(ctx, id)
	if err != nil {
		return nil, parsed, rdsStatus("look up snapshot", err)
	}
	if !d.owner.OwnsSnapshot(disk) {
		return nil, parsed, status.Errorf(codes.NotFound, "snapshot %s does not exist: RDS slot %s holds %s, which is not this driver's", id, id, describe(disk))
	}
	return disk, parsed, nil
}

func snapshotResponse(disk *rds.Disk, id snapshotID) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     disk.Slot,
		SourceVolumeId: id.source,
		CreationTime:   timestamppb.New(id.created),
		SizeBytes:      disk.Size,
		ReadyToUse:     true, // copy-from returns once the copy exists
	}
}

// CreateSnapshot copies a volume into an unexported disk whose slot records the
// snapshot's name hash, creation time and source volume.
func (d *Driver) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if err := requireID("snapshot name", req.GetName()); err != nil {
		return nil, err
	}
	src := req.GetSourceVolumeId()
	if err := requireID("source volume ID", src); err != nil {
		return nil, err
	}
	if len(req.GetParameters()) > 0 {
		// Every key, sorted: the same request gets the same message.
		keys := slices.Sorted(maps.Keys(req.GetParameters()))
		return nil, status.Errorf(codes.InvalidArgument, "unknown VolumeSnapshotClass parameters %q (none are supported)", keys)
	}
	nameHash := shortHash(req.GetName(), 16)
	unlock, err := d.lockVolume("snapshot:" + nameHash)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	existing, err := d.rds.ListDisks(ctx, "^snap-"+nameHash+"-")
	if err != nil {
		return nil, rdsStatus("look up snapshot", err)
	}
	for i := range existing {
		id, ok := parseSnapshotID(existing[i].Slot)
		if !ok || !d.owner.OwnsSnapshot(&existing[i]) {
			continue
		}
		if id.source != src {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists with source volume %s, not %s", req.GetName(), id.source, src)
		}
		return &csi.CreateSnapshotResponse{Snapshot: snapshotResponse(&existing[i], id)}, nil
	}
	source, err := d.lookupVolume(ctx, src)
	if err != nil {
		return nil, err
	}
	base, _ := d.owner.BaseOf(source)
	id := snapshotID{nameHash: nameHash, created: d.clk.Now().UTC().Truncate(time.Second), source: src}
	disk, err := d.rds.CopyDisk(ctx, rds.CopyDiskRequest{SourceSlot: src, Slot: id.slot(), FilePath: filePathFor(base, id.slot())})
	if err != nil {
		return nil, rdsStatus("copy volume", err)
	}
	klog.InfoS("Snapshot created", "name", req.GetName(), "snapshot", disk.Slot, "source", src, "bytes", disk.Size)
	return &csi.CreateSnapshotResponse{Snapshot: snapshotResponse(disk, id)}, nil
}

// DeleteSnapshot removes a snapshot's disk and file; unknown IDs succeed.
func (d *Driver) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if err := requireID("snapshot ID", id); err != nil {
		return nil, err
	}
	if _, ok := parseSnapshotID(id); !ok {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	ctx, done, err := d.begin(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := d.deleteDisk(ctx, id); err != nil {
		return nil, rdsStatus("delete snapshot", err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots lists snapshots, optionally one by ID or those of one source.
func (d *Driver) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	pattern := "^snap-"
	switch {
	case req.GetSnapshotId() != "":
		if _, ok := parseSnapshotID(req.GetSnapshotId()); !ok {
			return &csi.ListSnapshotsResponse{}, nil
		}
		pattern = "^" + regexp.QuoteMeta(req.GetSnapshotId()) + "$"
	case req.GetSourceVolumeId() != "":
		if !isVolumeID(req.GetSourceVolumeId()) {
			return &csi.ListSnapshotsResponse{}, nil
		}
		pattern = "^snap-[0-9a-f]{16}-[0-9a-z]+-" + regexp.QuoteMeta(req.GetSourceVolumeId()) + "$"
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	disks, err := d.rds.ListDisks(ctx, pattern)
	if err != nil {
		return nil, rdsStatus("list snapshots", err)
	}
	byID := map[string]int{}
	ids := make([]string, 0, len(disks))
	for i := range disks {
		if !d.owner.OwnsSnapshot(&disks[i]) {
			continue
		}
		if _, dup := byID[disks[i].Slot]; dup {
			return nil, status.Errorf(codes.Internal, "list snapshots: RDS printed slot %s twice", disks[i].Slot)
		}
		byID[disks[i].Slot] = i
		ids = append(ids, disks[i].Slot)
	}
	sort.Strings(ids)
	start, end, next, err := page(ids, req.GetStartingToken(), req.GetMaxEntries(), func(t string) bool {
		_, ok := parseSnapshotID(t)
		return ok
	})
	if err != nil {
		return nil, err
	}
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for _, slot := range ids[start:end] {
		id, _ := parseSnapshotID(slot)
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: snapshotResponse(&disks[byID[slot]], id)})
	}
	return resp, nil
}

// GetSnapshot is answered from the same data as ListSnapshots.
func (d *Driver) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if err := requireID("snapshot ID", id); err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	disk, parsed, err := d.lookupSnapshot(ctx, id)
	if err != nil {
		return nil, err
	}
	return &csi.GetSnapshotResponse{Snapshot: snapshotResponse(disk, parsed)}, nil
}
