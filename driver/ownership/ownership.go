package ownership

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"github.com/rds-csi/rds-csi/driver/rds"
)

// Slot shapes. Volumes are "pvc-<...>" (external-provisioner's names, kept as
// they are) or "vol-<32 hex>" (a hash of any other CSI name); snapshots are
// "snap-<16 hex name hash>-<creation time, base 36>-<source volume slot>".
var (
	volumeSlotRE   = regexp.MustCompile(`^(pvc-[a-z0-9][a-z0-9-]{0,59}|vol-[0-9a-f]{32})$`)
	snapshotSlotRE = regexp.MustCompile(`^snap-([0-9a-f]{16})-([0-9a-z]{1,13})-((?:pvc|vol)-[a-z0-9-]+)$`)
)

// IsVolumeSlot reports whether s has the shape of a volume slot.
func IsVolumeSlot(s string) bool { return volumeSlotRE.MatchString(s) }

// SnapshotSlotParts splits a snapshot slot into its name hash, its creation
// time in base 36 and its source volume slot.
func SnapshotSlotParts(s string) (nameHash, created36, source string, ok bool) {
	m := snapshotSlotRE.FindStringSubmatch(s)
	if m == nil || !IsVolumeSlot(m[3]) {
		return "", "", "", false
	}
	return m[1], m[2], m[3], true
}

// IsSnapshotSlot reports whether s has the shape of a snapshot slot.
func IsSnapshotSlot(s string) bool {
	_, _, _, ok := SnapshotSlotParts(s)
	return ok
}

// FilePath is the one backing file a disk in slot may have under base.
func FilePath(base, slot string) string { return base + "/" + slot + ".img" }

// Rules are the allowed base paths. The zero value owns nothing.
type Rules struct {
	bases []string
}

// New returns the rules for the given base paths (the default one first).
// Each must be an absolute, clean path of at least two segments
// (/<pool>/<dir>); duplicates are dropped.
func New(bases ...string) (Rules, error) {
	var r Rules
	seen := map[string]bool{}
	for _, b := range bases {
		if b == "" || seen[b] {
			continue
		}
		if path.Clean(b) != b || !strings.HasPrefix(b, "/") || strings.Count(b, "/") < 2 {
			return Rules{}, fmt.Errorf("base path %q: want an absolute, clean /<pool>/<directory>", b)
		}
		seen[b] = true
		r.bases = append(r.bases, b)
	}
	return r, nil
}

// Bases returns the allowed base paths, the default first.
func (r Rules) Bases() []string { return append([]string(nil), r.bases...) }

// Allowed reports whether base is one of the allowed base paths.
func (r Rules) Allowed(base string) bool {
	for _, b := range r.bases {
		if b == base {
			return true
		}
	}
	return false
}

// BaseOf returns the allowed base path under which d has exactly the file a
// disk in its slot may have, or false: the disk is not the driver's.
func (r Rules) BaseOf(d *rds.Disk) (string, bool) {
	if d == nil || d.Type != "file" {
		return "", false
	}
	for _, b := range r.bases {
		if d.FilePath == FilePath(b, d.Slot) {
			return b, true
		}
	}
	return "", false
}

// OwnsVolume reports whether d is one of the driver's volumes.
func (r Rules) OwnsVolume(d *rds.Disk) bool {
	if d == nil || !IsVolumeSlot(d.Slot) {
		return false
	}
	_, ok := r.BaseOf(d)
	return ok
}

// OwnsSnapshot reports whether d is one of the driver's snapshots.
func (r Rules) OwnsSnapshot(d *rds.Disk) bool {
	if d == nil || !IsSnapshotSlot(d.Slot) {
		return false
	}
	_, ok := r.BaseOf(d)
	return ok
}
