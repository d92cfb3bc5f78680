package rds

import (
	"fmt"
	"strconv"
	"time"
)

// Disk is one /disk entry as RDS reports it.
type Disk struct {
	Slot string
	// Type is "file" for file-backed disks.
	Type string
	// FilePath is the backing file with a leading slash, as /disk prints it.
	FilePath string
	// Size is the exact size in bytes, from size= (never from the rounded
	// file-size= text).
	Size int64
	// FileSize is RouterOS's rounded display size (file-size=), for humans.
	FileSize string
	Export   bool
	Port     int
	NQN      string
	// Flags are the entry's flag letters (X disabled, B blocked...).
	Flags string
	// Properties holds every printed property, including ones this package
	// does not model.
	Properties map[string]string
}

// Capacity is a pool's size and free space in bytes.
type Capacity struct {
	Size int64
	Free int64
}

// File is one /file entry.
type File struct {
	// Name has no leading slash ("storage-pool/k8s/pvc-x.img").
	Name string
	Type string
	// Size is approximate: /file prints only rounded human units.
	Size     int64
	SizeText string
	// Modified is last-modified (7.16+) or creation-time (older), in UTC as
	// printed; zero if absent or unparsable.
	Modified time.Time
}

// IsDir reports whether the entry is a directory.
func (f File) IsDir() bool { return f.Type == "directory" }

func props(e Entry) map[string]string {
	m := make(map[string]string, len(e.Properties))
	for _, p := range e.Properties {
		m[p.Key] = p.Value
	}
	return m
}

// diskFromEntry checks and converts one /disk entry. Every property the
// driver acts on must be present and well formed: a reply cut or garbled in
// the middle of an entry drops or mangles properties, and a disk read with a
// missing file-path or export flag must never be mistaken for a disk that has
// none. The error names the property.
func diskFromEntry(e Entry) (Disk, error) {
	m := props(e)
	d := Disk{
		Slot:       m["slot"],
		Type:       m["type"],
		FilePath:   m["file-path"],
		FileSize:   m["file-size"],
		NQN:        m["nvme-tcp-server-nqn"],
		Flags:      e.Flags,
		Properties: m,
	}
	if d.Slot == "" {
		return Disk{}, fmt.Errorf("%w: disk entry %d has no slot", ErrFailed, e.Index)
	}
	missing := func(key string) error {
		return fmt.Errorf("%w: disk %q (entry %d) has no %s", ErrFailed, truncate(d.Slot, 64), e.Index, key)
	}
	if d.Type == "" {
		return Disk{}, missing("type")
	}
	if s, ok := m["size"]; ok {
		n, err := ParseBytes(s)
		if err != nil {
			return Disk{}, fmt.Errorf("disk %q: %w", d.Slot, err)
		}
		d.Size = n
	} else if d.Type == "file" {
		return Disk{}, missing("size")
	}
	if d.Type == "file" {
		// Only presence is checked here: a hand-made disk may use any path,
		// and one odd neighbour must not break a listing. Whether the path
		// is one this driver owns is decided by exact comparison later.
		if _, ok := m["file-path"]; !ok {
			return Disk{}, missing("file-path")
		}
		switch v, ok := m["nvme-tcp-export"]; {
		case !ok:
			return Disk{}, missing("nvme-tcp-export")
		case v == "yes":
			d.Export = true
		case v != "no":
			return Disk{}, fmt.Errorf("%w: disk %q: nvme-tcp-export=%q is neither yes nor no", ErrFailed, d.Slot, truncate(v, 20))
		}
	}
	if p, ok := m["nvme-tcp-server-port"]; ok && p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 65535 {
			return Disk{}, fmt.Errorf("%w: disk %q: bad port %q", ErrFailed, d.Slot, truncate(p, 20))
		}
		d.Port = n
	}
	return d, nil
}

func fileFromEntry(e Entry) (File, error) {
	m := props(e)
	f := File{Name: m["name"], Type: m["type"], SizeText: m["size"]}
	if f.Name == "" {
		return File{}, fmt.Errorf("%w: file entry %d has no name", ErrFailed, e.Index)
	}
	if f.SizeText != "" {
		if n, err := ParseHumanSize(f.SizeText); err == nil {
			f.Size = n
		} else if n, err := ParseBytes(f.SizeText); err == nil {
			f.Size = n
		}
	}
	for _, k := range []string{"last-modified", "creation-time"} {
		if v, ok := m[k]; ok {
			if t, err := ParseTime(v); err == nil {
				f.Modified = t
				break
			}
		}
	}
	return f, nil
}

func capacityFromEntry(e Entry) (Capacity, error) {
	m := props(e)
	var c Capacity
	var err error
	sz, ok1 := m["size"]
	fr, ok2 := m["free"]
	if !ok1 || !ok2 {
		return c, fmt.Errorf("%w: pool entry lacks size= or free=", ErrFailed)
	}
	if c.Size, err = ParseBytes(sz); err != nil {
		return c, err
	}
	if c.Free, err = ParseBytes(fr); err != nil {
		return c, err
	}
	return c, nil
}
