package ownership

import (
	"testing"

	"github.com/rds-csi/rds-csi/driver/rds"
)

func TestOwnership(t *testing.T) {
	r, err := New("/storage-pool/k8s", "/storage-pool/other", "/storage-pool/k8s")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Bases(); len(got) != 2 || got[0] != "/storage-pool/k8s" {
		t.Fatalf("bases %v", got)
	}
	disk := func(slot, path string) *rds.Disk { return &rds.Disk{Type: "file", Slot: slot, FilePath: path} }
	const snap = "snap-0123456789abcdef-t5x1-pvc-a"
	cases := []struct {
		name           string
		d              *rds.Disk
		volume, snapsh bool
	}{
		{"volume under the default base", disk("pvc-a", "/storage-pool/k8s/pvc-a.img"), true, false},
		{"volume under another allowed base", disk("pvc-a", "/storage-pool/other/pvc-a.img"), true, false},
		{"hashed volume name", disk("vol-0123456789abcdef0123456789abcdef", "/storage-pool/k8s/vol-0123456789abcdef0123456789abcdef.img"), true, false},
		{"snapshot", disk(snap, "/storage-pool/k8s/"+snap+".img"), false, true},
		{"hand-made disk in a directory not allowed", disk("pvc-manual", "/storage-pool/backups/pvc-manual.img"), false, false},
		{"prefix look-alike directory", disk("pvc-a", "/storage-pool/k8s-old/pvc-a.img"), false, false},
		{"nested below a base", disk("pvc-a", "/storage-pool/k8s/sub/pvc-a.img"), false, false},
		{"file named after another slot", disk("pvc-a", "/storage-pool/k8s/pvc-a2.img"), false, false},
		{"slot is a prefix of the file", disk("pvc-x", "/storage-pool/k8s/pvc-x2.img"), false, false},
		{"not a file disk", &rds.Disk{Type: "partition", Slot: "pvc-pool", FilePath: "/storage-pool/k8s/pvc-pool.img"}, false, false},
		{"no file path", disk("pvc-a", ""), false, false},
		{"foreign shape in our directory", disk("manual", "/storage-pool/k8s/manual.img"), false, false},
		{"volume shape is not a snapshot", disk("pvc-a", "/storage-pool/k8s/pvc-a.img"), true, false},
		{"nil", nil, false, false},
	}
	for _, tc := range cases {
		if got := r.OwnsVolume(tc.d); got != tc.volume {
			t.Errorf("%s: OwnsVolume = %v", tc.name, got)
		}
		if got := r.OwnsSnapshot(tc.d); got != tc.snapsh {
			t.Errorf("%s: OwnsSnapshot = %v", tc.name, got)
		}
	}
	if (Rules{}).OwnsVolume(disk("pvc-a", "/storage-pool/k8s/pvc-a.img")) {
		t.Error("the zero Rules own a volume")
	}
	for _, bad := range []string{"relative/x", "/storage-pool", "/storage-pool/k8s/", "/storage-pool/../etc"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func TestSnapshotSlotParts(t *testing.T) {
	h, c, src, ok := SnapshotSlotParts("snap-0123456789abcdef-t5x1-pvc-a")
	if !ok || h != "0123456789abcdef" || c != "t5x1" || src != "pvc-a" {
		t.Fatalf("parts %q %q %q %v", h, c, src, ok)
	}
	for _, bad := range []string{"snap-0123456789abcdef-t5x1-manual", "snap-xyz-t5x1-pvc-a", "pvc-a", "snap-0123456789abcdef--pvc-a"} {
		if IsSnapshotSlot(bad) {
			t.Errorf("IsSnapshotSlot(%q)", bad)
		}
	}
}
