package health

import (
	"errors"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func reasons(es []*Entry) []string {
	var out []string
	for _, e := range es {
		if e.GetReason() == "" || e.GetStatus() == csi.VolumeHealthErrorType_UNKNOWN_VOLUME_HEALTH_TYPE {
			return []string{"entry without reason or status"}
		}
		out = append(out, e.GetReason())
	}
	return out
}

func TestOfDisk(t *testing.T) {
	for _, tc := range []struct {
		d    Disk
		want []string
	}{
		{Disk{Exported: true, FilePresent: true}, nil},
		{Disk{Exported: false, FilePresent: true}, []string{ReasonNotExported}},
		{Disk{Exported: true, FilePath: "/p/x.img"}, []string{ReasonBackingFileMissing}},
		{Disk{}, []string{ReasonNotExported, ReasonBackingFileMissing}},
	} {
		if got := reasons(OfDisk(tc.d)); !slices.Equal(got, tc.want) {
			t.Errorf("OfDisk(%+v) = %v, want %v", tc.d, got, tc.want)
		}
	}
	if got := OfDisk(Disk{Exported: true})[0].GetStatus(); got != csi.VolumeHealthErrorType_DATA_LOSS {
		t.Errorf("a missing backing file is %v, want DATA_LOSS", got)
	}
	if got := reasons(Unreachable(errors.New("x"))); !slices.Equal(got, []string{ReasonStorageUnreachable}) {
		t.Errorf("Unreachable = %v", got)
	}
}

func TestOfNode(t *testing.T) {
	healthy := Node{Device: "/dev/loop1", ControllerState: "", MountedDevice: "/dev/loop1", SameDevice: true}
	for _, tc := range []struct {
		name string
		mod  func(*Node)
		want []string
	}{
		{"healthy filesystem", func(*Node) {}, nil},
		{"healthy block", func(n *Node) { n.Block, n.MountedDevice = true, "" }, nil},
		{"device gone", func(n *Node) { n.Device = ""; n.SameDevice = false }, []string{ReasonDeviceMissing}},
		{"device lookup failed", func(n *Node) { n.DeviceErr = errors.New("sysfs") }, []string{ReasonDeviceMissing}},
		{"controller reconnecting", func(n *Node) { n.ControllerState = "connecting" }, []string{ReasonControllerNotLive}},
		{"controller live", func(n *Node) { n.ControllerState = "live" }, nil},
		{"not mounted", func(n *Node) { n.MountedDevice = "" }, []string{ReasonNotMounted}},
		{"mount on an old device", func(n *Node) { n.MountedDevice, n.SameDevice = "/dev/nvme0n1", false }, []string{ReasonStaleMount}},
		{"read-only after an error", func(n *Node) { n.MountReadOnly = true }, []string{ReasonReadOnlyAfterError}},
		{"read-only as asked", func(n *Node) { n.MountReadOnly, n.WantReadOnly = true, true }, nil},
		{"publish path empty", func(n *Node) { n.PublishPath = "/t" }, []string{ReasonNotPublished}},
		{"publish path mounted", func(n *Node) { n.PublishPath, n.PublishMounted = "/t", true }, nil},
	} {
		n := healthy
		tc.mod(&n)
		if got := reasons(OfNode(n)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: OfNode = %v, want %v", tc.name, got, tc.want)
		}
	}
}
