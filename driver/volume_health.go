package driver

import (
	"context"
	"errors"
	"regexp"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/health"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// ControllerGetVolumeHealth reports what RDS shows of one volume: exported,
// its backing file present. An RDS that does not answer makes the volume
// INACCESSIBLE from every node, which is what a user needs to see on the PVC;
// it never makes it NOT_FOUND.
func (d *Driver) ControllerGetVolumeHealth(ctx context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	ctx, cancel, err := d.beginVolumeRead(ctx, id)
	if err != nil {
		return nil, err
	}
	defer cancel()
	entries, err := d.diskHealth(ctx, id)
	if err != nil {
		return nil, err
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: health.Report(id, entries)}, nil
}

func (d *Driver) diskHealth(ctx context.Context, id string) ([]*health.Entry, error) {
	disk, err := d.lookupVolume(ctx, id)
	if status.Code(err) == codes.Unavailable {
		return health.Unreachable(errors.New(status.Convert(err).Message())), nil
	}
	if err != nil {
		return nil, err
	}
	file, err := d.rds.File(ctx, disk.FilePath)
	switch {
	case errors.Is(err, rds.ErrUnavailable):
		return health.Unreachable(err), nil
	case err != nil:
		return nil, rdsStatus("look up backing file", err)
	}
	return health.OfDisk(health.Disk{Exported: disk.Export, FilePath: disk.FilePath, FilePresent: file != nil && !file.IsDir()}), nil
}

// ControllerListVolumeHealth lists the volumes with adverse health, from one
// listing of the disks and one of the files. A listing RDS does not give is
// an error: "no answer" is not "all healthy".
func (d *Driver) ControllerListVolumeHealth(ctx context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	if err := d.stateReady(); err != nil {
		return nil, err
	}
	ctx, cancel := d.withTimeout(ctx)
	defer cancel()
	disks, all, err := d.ownedVolumes(ctx, "list volume health")
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	pools := map[string]bool{}
	for _, base := range d.owner.Bases() {
		pool := poolName(base)
		if pools[pool] {
			continue
		}
		pools[pool] = true
		files, err := d.rds.ListFiles(ctx, "^"+regexp.QuoteMeta(pool)+"/")
		if err != nil {
			return nil, rdsStatus("list volume files", err)
		}
		for _, f := range files {
			if !f.IsDir() {
				present["/"+f.Name] = true
			}
		}
	}
	abnormal := map[string][]*health.Entry{}
	var ids []string // sorted, as all is
	for _, id := range all {
		disk := disks[id]
		if es := health.OfDisk(health.Disk{Exported: disk.Export, FilePath: disk.FilePath, FilePresent: present[disk.FilePath]}); len(es) > 0 {
			abnormal[id] = es
			ids = append(ids, id)
		}
	}
	start, end, next, err := page(ids, req.GetStartingToken(), req.GetMaxEntries(), isVolumeID)
	if err != nil {
		return nil, err
	}
	resp := &csi.ControllerListVolumeHealthResponse{NextToken: next}
	for _, id := range ids[start:end] {
		resp.Entries = append(resp.Entries, health.Report(id, abnormal[id]))
	}
	return resp, nil
}

// NodeGetVolumeHealth reports what the node sees of a staged volume: its
// device present, its NVMe/TCP controller live, the staging mount on that
// device and not turned read-only by an error, and, if asked, something
// mounted at the publish path.
func (n *NodeServer) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if err := require("volume ID", id); err != nil {
		return nil, err
	}
	if err := checkVolumeID(id); err != nil {
		return nil, err
	}
	publish := req.GetVolumePublishPath()
	if publish != "" {
		p, err := n.confineVolumePath(publish)
		if err != nil {
			return nil, err
		}
		publish = p
	}
	st, ok, err := n.loadState(id)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, n.opts.NodeID)
	}
	if sp := req.GetStagingTargetPath(); sp != "" {
		if p, err := n.confine("staging target path", sp); err != nil || p != st.StagingPath {
			return nil, status.Errorf(codes.NotFound, "volume %s is not staged at %.200q on node %s", id, sp, n.opts.NodeID)
		}
	}
	ctx, cancel := n.opts.Clock.WithTimeout(ctx, n.opts.OperationTimeout)
	defer cancel()
	view, err := n.observe(ctx, st, publish)
	if err != nil {
		return nil, err
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: health.Report(id, health.OfNode(view))}, nil
}

// observe gathers what health.OfNode judges; only a failure to read the
// node's own mount table is an error.
func (n *NodeServer) observe(ctx context.Context, st stagedVolume, publish string) (health.Node, error) {
	v := health.Node{Block: st.Block, WantReadOnly: st.ReadOnly, PublishPath: publish}
	plane, err := n.plane(st.DataPlane)
	if err != nil {
		v.DeviceErr = errors.New(status.Convert(err).Message())
		return v, nil
	}
	v.Device, v.DeviceErr = plane.Device(ctx, st.Target)
	if cs, ok := plane.(dataplane.ControllerStater); ok && v.Device != "" {
		if state, err := cs.ControllerState(ctx, st.Target); err == nil {
			v.ControllerState = state
		}
	}
	if !st.Block {
		mp, ok, err := n.mountAt(st.StagingPath)
		if err != nil {
			return v, err
		}
		if ok {
			v.MountedDevice = mp.Device
			v.SameDevice = v.Device != "" && sameDevice(mp.Device, v.Device)
			v.MountReadOnly = slices.Contains(mp.Opts, "ro")
		}
	}
	if publish != "" {
		_, ok, err := n.mountAt(publish)
		if err != nil {
			return v, err
		}
		v.PublishMounted = ok
	}
	return v, nil
}
