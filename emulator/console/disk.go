package console

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rds-csi/rds-csi/emulator/routeros"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// partitionID stands for the pool's partition entry in a session's numbering; store
// IDs of file disks start at 1.
const partitionID = 0

func diskProps(d store.Disk) []prop {
	return []prop{
		{"type", "file"},
		{"slot", quoted(d.Slot)},
		{"slot-default", `""`},
		{"parent", `""`},
		{"fs", "-"},
		{"model", quoted(d.FilePath)},
		{"size", spacedInt(d.FileSize)},
		{"mount-filesystem", "yes"},
		{"mount-read-only", "no"},
		{"compress", "no"},
		{"sector-size", "512"},
		{"raid-master", "none"},
		{"nvme-tcp-export", yesNo(d.NVMeTCPExport)},
		{"nvme-tcp-server-port", strconv.Itoa(d.NVMeTCPServerPort)},
		{"nvme-tcp-server-nqn", quoted(d.NVMeTCPServerNQN)},
		{"nvme-tcp-server-allow-host-name", quoted(d.NVMeTCPServerAllowHostName)},
		{"iscsi-export", "no"},
		{"nfs-sharing", "no"},
		{"smb-sharing", "no"},
		{"media-sharing", "no"},
		{"media-interface", "none"},
		{"swap", "no"},
		{"file-path", bare(d.FilePath)},
		{"file-size", humanSize(d.FileSize)},
		{"file-offset", "0"},
	}
}

// writeDiskDetail prints what diskProps lists, in the same order, without a
// string per value (see detailWriter). TestStreamingPrinterMatchesProps keeps
// the two in step.
func writeDiskDetail(w *detailWriter, d *store.Disk) {
	w.raw("type", "file")
	w.quoted("slot", d.Slot)
	w.raw("slot-default", `""`)
	w.raw("parent", `""`)
	w.raw("fs", "-")
	w.quoted("model", d.FilePath)
	w.spaced("size", d.FileSize)
	w.raw("mount-filesystem", "yes")
	w.raw("mount-read-only", "no")
	w.raw("compress", "no")
	w.raw("sector-size", "512")
	w.raw("raid-master", "none")
	w.raw("nvme-tcp-export", yesNo(d.NVMeTCPExport))
	w.int("nvme-tcp-server-port", int64(d.NVMeTCPServerPort))
	w.quoted("nvme-tcp-server-nqn", d.NVMeTCPServerNQN)
	w.quoted("nvme-tcp-server-allow-host-name", d.NVMeTCPServerAllowHostName)
	w.raw("iscsi-export", "no")
	w.raw("nfs-sharing", "no")
	w.raw("smb-sharing", "no")
	w.raw("media-sharing", "no")
	w.raw("media-interface", "none")
	w.raw("swap", "no")
	w.bare("file-path", d.FilePath)
	w.human("file-size", d.FileSize)
	w.raw("file-offset", "0")
}

func writePartitionDetail(w *detailWriter, p store.Pool) {
	for _, pr := range partitionProps(p) {
		w.raw(pr.name, pr.value)
	}
}

// diskMatcher exposes a disk's properties, unformatted, to where-expressions
// (its props method is a routeros.Props). It is pointed at one disk after
// another, so a scan of 10,000 disks makes one closure, not one per disk.
type diskMatcher struct{ d *store.Disk }

func (m *diskMatcher) props(name string) (string, bool) {
	d := m.d
	switch name {
	case "type":
		return "file", true
	case "slot":
		return d.Slot, true
	case "model", "file-path":
		return d.FilePath, true
	case "size":
		return strconv.FormatInt(d.FileSize, 10), true
	case "file-size":
		return humanSize(d.FileSize), true
	case "nvme-tcp-export":
		return yesNo(d.NVMeTCPExport), true
	case "nvme-tcp-server-port":
		return strconv.Itoa(d.NVMeTCPServerPort), true
	case "nvme-tcp-server-nqn":
		return d.NVMeTCPServerNQN, true
	case "nvme-tcp-server-allow-host-name":
		return d.NVMeTCPServerAllowHostName, true
	case "comment":
		return d.Comment, true
	case "disabled":
		return "no", true
	}
	return "", false
}

func partitionProps(p store.Pool) []prop {
	return []prop{
		{"type", "partition"},
		{"slot", quoted(p.Name)},
		{"mount-point", quoted(p.Name)},
		{"file-system", "btrfs"},
		{"size", spacedInt(p.Size)},
		{"free", spacedInt(p.Free())},
		{"use", usePercent(p) + "%"},
	}
}

// usePercent is the pool's use rounded to the nearest percent, as RouterOS
// prints it (26.68% is use=27%, 4.94% is use=5%). Computed in integers: a
// float64 could not hold every byte count exactly.
func usePercent(p store.Pool) string {
	if p.Size <= 0 || p.Used <= 0 {
		return "0"
	}
	used := min(p.Used, p.Size) // a pool shrunk by a restart with a smaller --pool-size
	q, r := bits.Mul64(uint64(used), 200)
	half, _ := bits.Div64(q, r, uint64(p.Size))
	return strconv.FormatUint((half+1)/2, 10)
}

func partitionMatchProps(p store.Pool) routeros.Props {
	return func(name string) (string, bool) {
		switch name {
		case "type":
			return "partition", true
		case "slot", "mount-point":
			return p.Name, true
		case "file-system":
			return "btrfs", true
		case "size":
			return strconv.FormatInt(p.Size, 10), true
		case "free":
			return strconv.FormatInt(p.Free(), 10), true
		case "disabled":
			return "no", true
		}
		return "", false
	}
}

func (s *Session) disk(b *strings.Builder, cmd routeros.Command) error {
	switch cmd.Verb {
	case "print":
		return s.diskPrint(b, cmd)
	case "add":
		return s.diskAdd(cmd)
	case "set":
		return s.diskSet(cmd)
	case "remove":
		return s.diskRemove(cmd)
	}
	return failure("bad command name " + cmd.Verb)
}

// selectDisks returns the IDs of the disks an expression matches, in print order.
// The partition entry is included as partitionID when it matches. `slot=X` alone
// is answered from the store's index so lookups stay O(1) with many disks.
func (s *Session) selectDisks(where routeros.Expr) []uint64 {
	ids, _, _ := s.selectDiskEntries(where, nil)
	return ids
}

// selectDiskEntries is selectDisks with the disks themselves, as read in the
// same pass, so a print needs no second lookup per disk: partition reports
// whether the pool's partition entry matched (it prints first), disks are the
// file disks that matched.
//
// With scratch, the store's disks are read into *scratch (and a full listing
// is returned in it), so scans and prints of every disk reuse one buffer.
func (s *Session) selectDiskEntries(where routeros.Expr, scratch *[]store.Disk) (ids []uint64, partition bool, disks []store.Disk) {
	st := s.c.store
	if cmp, ok := where.(*routeros.Compare); ok && cmp.Op == "=" && cmp.Prop == "slot" {
		if p := st.Pool(); p.Name == cmp.Value {
			ids, partition = append(ids, partitionID), true
		}
		if d, ok := st.DiskBySlot(cmp.Value); ok {
			ids = append(ids, d.ID)
			disks = append(disks, d)
		}
		return ids, partition, disks
	}
	var all []store.Disk
	if scratch != nil {
		all = st.AppendDisks((*scratch)[:0])
		*scratch = all
	} else {
		all = st.Disks()
	}
	if where == nil || where.Match(partitionMatchProps(st.Pool())) {
		ids, partition = append(ids, partitionID), true
	}
	if where == nil {
		// Everything: the store's copy is the listing.
		ids = slices.Grow(ids, len(all))
		for i := range all {
			ids = append(ids, all[i].ID)
		}
		return ids, partition, all
	}
	m := &diskMatcher{}
	props := m.props
	for i := range all {
		m.d = &all[i]
		if where.Match(props) {
			ids = append(ids, all[i].ID)
			disks = append(disks, all[i])
		}
	}
	return ids, partition, disks
}

// diskBufs are the buffers full prints read the store's disks into.
var diskBufs = sync.Pool{New: func() any { return new([]store.Disk) }}

func (s *Session) diskPrint(b *strings.Builder, cmd routeros.Command) error {
	scratch := diskBufs.Get().(*[]store.Disk)
	defer diskBufs.Put(scratch)
	ids, partition, disks := s.selectDiskEntries(cmd.Where, scratch)
	s.lastDisks = ids
	if hasWord(cmd, "count-only") {
		b.WriteString(strconv.Itoa(len(ids)) + "\n")
		return nil
	}
	st := s.c.store
	n := len(disks)
	if partition {
		n++
	}
	if hasWord(cmd, "detail") {
		w := newDetailWriter(b, flagsLegend, n, s.Width)
		if partition {
			w.begin("", "")
			writePartitionDetail(w, st.Pool())
			w.end()
		}
		for i := range disks {
			w.begin("", disks[i].Comment)
			writeDiskDetail(w, &disks[i])
			w.end()
		}
		return nil
	}
	entries := make([]entry, 0, n)
	if partition {
		entries = append(entries, entry{props: partitionProps(st.Pool())})
	}
	for _, d := range disks {
		entries = append(entries, entry{comment: d.Comment, props: diskProps(d)})
	}
	renderTable(b, flagsLegend, entries, []string{"slot", "type", "file-path", "file-size"})
	return nil
}

// resolveDisks turns a set/remove item selector into disk IDs. Like RouterOS, an
// empty match is "no such item".
func (s *Session) resolveDisks(items *routeros.Items) ([]uint64, error) {
	if items == nil {
		return nil, failure("no such item")
	}
	var ids []uint64
	if items.Find != nil {
		ids = s.selectDisks(items.Find.Where)
	} else {
		for _, n := range items.Indices {
			if n < 0 || n >= len(s.lastDisks) {
				return nil, failure("no such item")
			}
			ids = append(ids, s.lastDisks[n])
		}
	}
	if len(ids) == 0 {
		return nil, failure("no such item")
	}
	return ids, nil
}

func (s *Session) diskAdd(cmd routeros.Command) error {
	args := argMap(cmd)
	if t, ok := args["type"]; !ok {
		return failure("type not specified")
	} else if t.Text != "file" {
		return invalidValue("type")
	}
	d := store.Disk{NVMeTCPServerPort: 4420}
	var copyFrom *routeros.Find
	sizeGiven := false
	for _, a := range cmd.Args {
		v := a.Value.Text
		switch a.Name {
		case "type":
		case "slot":
			if v == "" {
				return invalidValue("slot")
			}
			d.Slot = v
		case "file-path":
			p, err := s.filePath(v)
			if err != nil {
				return err
			}
			d.FilePath = p
		case "file-size":
			n, err := ParseSize(v)
			if err != nil {
				return invalidValue("file-size")
			}
			d.FileSize, sizeGiven = n, true
		case "copy-from":
			if a.Value.Find == nil {
				return invalidValue("copy-from")
			}
			copyFrom = a.Value.Find
		default:
			if err := setNVMeArg(&d, a); err != nil {
				return err
			}
		}
	}
	if d.FilePath == "" {
		return failure("file-path not specified")
	}
	if d.Slot == "" {
		return failure("slot not specified")
	}
	if copyFrom != nil {
		src := s.selectDisks(copyFrom.Where)
		var srcDisk store.Disk
		found := 0
		for _, id := range src {
			if dd, ok := s.c.store.DiskByID(id); ok && id != partitionID {
				srcDisk, found = dd, found+1
			}
		}
		if found != 1 {
			return failure("no such item")
		}
		_, err := s.c.store.CopyDisk(srcDisk.Slot, d)
		return err
	}
	if !sizeGiven {
		return failure("file-size not specified")
	}
	_, err := s.c.store.AddDisk(d)
	return err
}

// setNVMeArg applies the export-related arguments shared by add and set.
func setNVMeArg(d *store.Disk, a routeros.Arg) error {
	v := a.Value.Text
	switch a.Name {
	case "nvme-tcp-export":
		b, ok := parseYesNo(v)
		if !ok {
			return invalidValue(a.Name)
		}
		d.NVMeTCPExport = b
	case "nvme-tcp-server-port":
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return invalidValue(a.Name)
		}
		d.NVMeTCPServerPort = n
	case "nvme-tcp-server-nqn":
		d.NVMeTCPServerNQN = v
	case "nvme-tcp-server-allow-host-name":
		d.NVMeTCPServerAllowHostName = v
	case "comment":
		d.Comment = v
	default:
		return invalidValue(a.Name)
	}
	return nil
}

// filePath checks a file-path argument: absolute (a missing leading slash is
// added, as RouterOS accepts both), inside the pool, no empty or dot segments.
func (s *Session) filePath(v string) (string, error) {
	p := "/" + strings.TrimPrefix(v, "/")
	pool := s.c.store.Pool().Name
	if !strings.HasPrefix(p, "/"+pool+"/") {
		return "", invalidValue("file-path")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalidValue("file-path")
		}
	}
	return p, nil
}

func (s *Session) diskSet(cmd routeros.Command) error {
	ids, err := s.resolveDisks(cmd.Items)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == partitionID {
			return failure("can not change partition")
		}
	}
	for _, id := range ids {
		_, err := s.c.store.UpdateDisk(id, func(d *store.Disk) error {
			for _, a := range cmd.Args {
				switch a.Name {
				case "file-size":
					n, err := ParseSize(a.Value.Text)
					if err != nil {
						return invalidValue("file-size")
					}
					d.FileSize = n
				case "slot":
					if a.Value.Text == "" {
						return invalidValue("slot")
					}
					d.Slot = a.Value.Text
				default:
					if err := setNVMeArg(d, a); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) diskRemove(cmd routeros.Command) error {
	ids, err := s.resolveDisks(cmd.Items)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id == partitionID {
			return failure("can not remove partition")
		}
	}
	for _, id := range ids {
		if err := s.c.store.RemoveDisk(id); err != nil {
			return err
		}
	}
	return nil
}

func argMap(cmd routeros.Command) map[string]routeros.Value {
	m := make(map[string]routeros.Value, len(cmd.Args))
	for _, a := range cmd.Args {
		m[a.Name] = a.Value
	}
	return m
}

func hasWord(cmd routeros.Command, w string) bool {
	for _, x := range cmd.Words {
		if x == w {
			return true
		}
	}
	return false
}

func parseYesNo(v string) (bool, bool) {
	switch v {
	case "yes", "true":
		return true, true
	case "no", "false":
		return false, true
	}
	return false, false
}

// ParseSize reads a RouterOS size argument: plain bytes or a binary suffix
// (K, M, G, T, P, optionally followed by "iB" or "B"): 1G is 1 073 741 824 bytes.
func ParseSize(v string) (int64, error) {
	s := strings.TrimSuffix(strings.TrimSuffix(v, "B"), "i")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		case 'P':
			mult = 1 << 50
		}
		if mult > 1 {
			s = s[:len(s)-1]
		} else if s != v {
			return 0, strconv.ErrSyntax // "iB"/"B" without a unit
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	if n > (1<<62)/mult {
		return 0, strconv.ErrRange
	}
	return n * mult, nil
}
