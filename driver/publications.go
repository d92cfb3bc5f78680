package driver

import (
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// publication is one target path a staged volume is published at, as the
// node recorded it: access mode and readonly decide what may join it.
type publication struct {
	Mode     string `json:"mode"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// admitPublication applies the access-mode rules of one node to a publish of
// st at target: a target already published with other arguments is
// ALREADY_EXISTS (the same arguments again are a retry, already reports
// it); a SINGLE_NODE_SINGLE_WRITER volume has one target at most, whichever
// side asked for it, so a second is FAILED_PRECONDITION. Records whose mount
// is gone (not in mounted, the node's mount points) are dropped first.
func admitPublication(st *stagedVolume, target string, mode csi.VolumeCapability_AccessMode_Mode, readonly bool,
	mounted map[string]bool) (already bool, err error) {
	single := csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER.String()
	for path, p := range st.Published {
		if !mounted[path] {
			delete(st.Published, path)
			continue
		}
		if path == target {
			if p.Mode != mode.String() || p.ReadOnly != readonly {
				return false, status.Errorf(codes.AlreadyExists,
					"volume is already published at %s as %s (readonly %v), not %s (readonly %v)", target, p.Mode, p.ReadOnly, mode, readonly)
			}
			already = true
			continue
		}
		if p.Mode == single || mode.String() == single {
			return false, status.Errorf(codes.FailedPrecondition,
				"volume is published at %s with %s access, which allows one target path on a node; unpublish it first", path, single)
		}
	}
	return already, nil
}

// recordPublication notes target in st.
func recordPublication(st *stagedVolume, target string, mode csi.VolumeCapability_AccessMode_Mode, readonly bool) {
	if st.Published == nil {
		st.Published = map[string]publication{}
	}
	st.Published[target] = publication{Mode: mode.String(), ReadOnly: readonly}
}
