package health

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// Entry is one adverse condition of a volume.
type Entry = csi.VolumeHealth_VolumeHealthEntry

// Reasons, CamelCase as the spec asks: stable strings that events, alerts
// and runbooks match on.
const (
	// Controller side.
	ReasonNotExported        = "NotExported"
	ReasonBackingFileMissing = "BackingFileMissing"
	ReasonStorageUnreachable = "StorageUnreachable"
	// Node side.
	ReasonDeviceMissing      = "DeviceMissing"
	ReasonControllerNotLive  = "NVMeControllerNotLive"
	ReasonNotMounted         = "NotMounted"
	ReasonStaleMount         = "StaleMount"
	ReasonReadOnlyAfterError = "ReadOnlyAfterError"
	ReasonNotPublished       = "NotPublished"
)

func entry(s csi.VolumeHealthErrorType, reason, format string, args ...any) *Entry {
	return &Entry{Status: s, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Report is the health of volume id with the given entries (none: healthy).
func Report(id string, entries []*Entry) *csi.VolumeHealth {
	return &csi.VolumeHealth{VolumeId: id, HealthStatuses: entries}
}

// Disk is what the controller read about a volume's disk on RDS.
type Disk struct {
	Exported bool
	FilePath string
	// FilePresent: RDS listed the backing file, as a file.
	FilePresent bool
}

// OfDisk lists what is wrong with a volume's disk: a disk not exported over
// NVMe/TCP cannot be reached by any node; a disk whose backing file is gone
// has lost its data.
func OfDisk(d Disk) []*Entry {
	var es []*Entry
	if !d.Exported {
		es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonNotExported,
			"the disk is not exported over NVMe/TCP, so no node can connect to it"))
	}
	if !d.FilePresent {
		es = append(es, entry(csi.VolumeHealthErrorType_DATA_LOSS, ReasonBackingFileMissing,
			"the backing file %s is missing on RDS", d.FilePath))
	}
	return es
}

// Unreachable is the health of a volume whose RDS does not answer: every node
// loses it, and nothing else about it can be known until RDS is back.
func Unreachable(err error) []*Entry {
	return []*Entry{entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonStorageUnreachable, "RDS is unreachable: %v", err)}
}

// Node is what a node plugin saw of a staged volume (an unstaged one has no
// health to report: NodeGetVolumeHealth answers NOT_FOUND).
type Node struct {
	// Device is the volume's block device now, "" if it is gone; DeviceErr
	// is set when it could not be looked up.
	Device    string
	DeviceErr error
	// ControllerState is the NVMe controller's state ("live", "connecting",
	// ...), "" where the data plane has none (loop devices).
	ControllerState string
	// Block volumes are not mounted by the plugin.
	Block bool
	// MountedDevice is the device mounted at the staging path, "" if none;
	// SameDevice tells whether it is Device.
	MountedDevice string
	SameDevice    bool
	// MountReadOnly: the staging mount is read-only; WantReadOnly: it was
	// staged that way on purpose.
	MountReadOnly bool
	WantReadOnly  bool
	// PublishPath, if asked about, and whether it is mounted.
	PublishPath    string
	PublishMounted bool
}

// OfNode lists what is wrong with a staged volume on a node.
func OfNode(n Node) []*Entry {
	var es []*Entry
	switch {
	case n.DeviceErr != nil:
		es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonDeviceMissing, "cannot find the volume's device: %v", n.DeviceErr))
	case n.Device == "":
		es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonDeviceMissing, "the volume's block device has disappeared"))
	}
	if n.ControllerState != "" && n.ControllerState != "live" {
		es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonControllerNotLive,
			"the NVMe/TCP controller is %s, not live: I/O waits or fails until it reconnects", n.ControllerState))
	}
	if !n.Block {
		switch {
		case n.MountedDevice == "":
			es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonNotMounted, "the staging path is not mounted"))
		case n.Device != "" && !n.SameDevice:
			es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonStaleMount,
				"the staging mount is on %s but the volume's device is now %s", n.MountedDevice, n.Device))
		case n.MountReadOnly && !n.WantReadOnly:
			es = append(es, entry(csi.VolumeHealthErrorType_DEGRADED, ReasonReadOnlyAfterError,
				"the filesystem was staged read-write and is now read-only, as after an I/O error: reads work, writes fail"))
		}
	}
	if n.PublishPath != "" && !n.PublishMounted {
		es = append(es, entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonNotPublished, "nothing is mounted at the publish path %s", n.PublishPath))
	}
	return es
}
