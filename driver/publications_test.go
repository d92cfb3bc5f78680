package driver

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAdmitPublication(t *testing.T) {
	const (
		snsw = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		snmw = csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER
		snw  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	)
	for _, tc := range []struct {
		name      string
		have      map[string]publication
		gone      string // a recorded path no longer mounted
		target    string
		mode      csi.VolumeCapability_AccessMode_Mode
		readonly  bool
		want      codes.Code
		already   bool
		remaining int
	}{
		{"first publish", nil, "", "/t1", snsw, false, codes.OK, false, 0},
		{"single writer: second target refused", map[string]publication{"/t1": {Mode: snsw.String()}}, "", "/t2", snsw, false, codes.FailedPrecondition, false, 1},
		{"single writer joining a multi-writer target refused", map[string]publication{"/t1": {Mode: snmw.String()}}, "", "/t2", snsw, false, codes.FailedPrecondition, false, 1},
		{"multi writer: second target allowed", map[string]publication{"/t1": {Mode: snmw.String()}}, "", "/t2", snmw, false, codes.OK, false, 1},
		{"legacy single node writer: second target allowed", map[string]publication{"/t1": {Mode: snw.String()}}, "", "/t2", snw, false, codes.OK, false, 1},
		{"same target, same arguments: a retry", map[string]publication{"/t1": {Mode: snsw.String()}}, "", "/t1", snsw, false, codes.OK, true, 1},
		{"same target, readonly changed", map[string]publication{"/t1": {Mode: snsw.String()}}, "", "/t1", snsw, true, codes.AlreadyExists, false, 1},
		{"same target, mode changed", map[string]publication{"/t1": {Mode: snmw.String()}}, "", "/t1", snsw, false, codes.AlreadyExists, false, 1},
		{"a target unmounted behind our back no longer counts", map[string]publication{"/t1": {Mode: snsw.String()}}, "/t1", "/t2", snsw, false, codes.OK, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := stagedVolume{Published: map[string]publication{}}
			for k, v := range tc.have {
				st.Published[k] = v
			}
			mounted := map[string]bool{}
			for p := range st.Published {
				mounted[p] = p != tc.gone
			}
			already, err := admitPublication(&st, tc.target, tc.mode, tc.readonly, mounted)
			if status.Code(err) != tc.want || already != tc.already || len(st.Published) != tc.remaining {
				t.Fatalf("admit = %v, %v (records %v); want code %v, already %v, %d records", already, err, st.Published, tc.want, tc.already, tc.remaining)
			}
		})
	}
}

func TestReadOnlyGrants(t *testing.T) {
	var g readOnlyGrants
	if err := g.admit("v", "n", false, false); err != nil {
		t.Fatal(err)
	}
	if err := g.admit("v", "n", true, true); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("readonly changed on a held publish: %v, want ALREADY_EXISTS", err)
	}
	if err := g.admit("v", "n", false, true); err != nil {
		t.Fatalf("the same publish again: %v", err)
	}
	if err := g.admit("v", "n", true, false); err != nil {
		t.Fatalf("after the claim is gone, a new readonly publish: %v", err)
	}
	g.forget("v", "")
	if len(g.m) != 0 {
		t.Fatalf("forget left %v", g.m)
	}
}
