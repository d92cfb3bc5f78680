package store

import (
	"fmt"
	"path"
	"strings"
	"time"
)

// Operation names as they appear in journal records. They are part of the
// on-disk format: never rename one.
const (
	opPool   = "pool"
	opAdd    = "add"
	opCopy   = "copy"
	opUpdate = "update"
	opRmDisk = "rmdisk"
	opRmFile = "rmfile"
	opImport = "import"
)

// record is one journaled state change. It carries every value the change
// depends on (IDs, timestamps, final sizes) so that replay reproduces the
// original outcome exactly instead of recomputing it from a clock or the host.
type record struct {
	Seq   uint64    `json:"seq"`
	Op    string    `json:"op"`
	Time  time.Time `json:"t,omitzero"`
	Disk  *diskRec  `json:"disk,omitempty"`
	ID    uint64    `json:"id,omitempty"`
	Name  string    `json:"name,omitempty"`  // rmfile/import target; copy source file
	Size  int64     `json:"size,omitempty"`  // pool size; imported file size
	Stage string    `json:"stage,omitempty"` // copy: staged file under tmp/
}

// state is the in-memory model. Both live operations and replay change it only
// through check and mutate, so a journal always means the same thing to the
// process that wrote it and to the one that reads it back.
type state struct {
	pool     Pool
	nextID   uint64
	disks    map[uint64]*Disk
	bySlot   map[string]uint64
	byFile   map[string]uint64 // file name (no leading slash) -> disk using it
	files    map[string]*File
	children map[string]int // directory name -> number of direct entries
	// tombs are removed file names whose host unlink may not have happened yet
	// (crash after the journal write, or an unlink that failed). Open unlinks
	// them, which is also what keeps it from importing them back as orphans.
	// The value is the removal's sequence number, so a late unlink clears
	// only its own tomb.
	tombs map[string]uint64
	// stages maps a copied file's name to its staged copy under tmp/, so Open
	// can publish a copy that was journaled but not yet renamed into place.
	stages map[string]string
}

func newState() *state {
	return &state{
		nextID:   1,
		disks:    make(map[uint64]*Disk),
		bySlot:   make(map[string]uint64),
		byFile:   make(map[string]uint64),
		files:    make(map[string]*File),
		children: make(map[string]int),
		tombs:    make(map[string]uint64),
		stages:   make(map[string]string),
	}
}

func (st *state) free() int64 { return st.pool.Size - st.pool.Used }

// fileName turns a disk's file-path into a /file name: RouterOS prints one with
// and the other without the leading slash, and mixing them up is the classic
// way to delete the wrong files.
func fileName(filePath string) string { return strings.TrimPrefix(filePath, "/") }

// fileType is what /file print shows as type=.
func fileType(name string, dir bool) string {
	if dir {
		return "directory"
	}
	if ext := path.Ext(name); ext != "" && ext != name {
		return ext + " file"
	}
	return "file"
}

// validName accepts a file name inside the pool: no empty, "." or ".." parts,
// so it can never point outside Dir/files/<pool> on the host.
func (st *state) validName(name string) bool {
	if st.pool.Name == "" || !strings.HasPrefix(name, st.pool.Name+"/") {
		return false
	}
	if strings.ContainsRune(name, 0) {
		return false
	}
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." || p == ".." {
			return false
		}
	}
	return true
}

// checkPlace reports whether name can hold a regular file: every parent that
// exists must be a directory and name itself must not be one. The pool's
// mount point is the root and has no entry of its own.
func (st *state) checkPlace(name string) error {
	if !st.validName(name) {
		return errBadFilePath
	}
	for dir := path.Dir(name); dir != st.pool.Name; dir = path.Dir(dir) {
		if f, ok := st.files[dir]; ok {
			if !f.Dir {
				return errNotDir
			}
			break // its own parents were checked when it was created
		}
	}
	if f, ok := st.files[name]; ok && f.Dir {
		return errIsDir
	}
	return nil
}

func (st *state) checkDiskFields(d *Disk) error {
	if d.Slot == "" || strings.ContainsAny(d.Slot, "/\x00") {
		return errBadSlot
	}
	if d.FileSize <= 0 {
		return errBadFileSize
	}
	if d.NVMeTCPServerPort < 0 || d.NVMeTCPServerPort > 65535 {
		return errBadPort
	}
	if !strings.HasPrefix(d.FilePath, "/") {
		return errBadFilePath
	}
	return nil
}

// slotFree reports whether slot can be given to disk id (0 = a new disk). The
// pool's partition entry has a slot too (its name), so a disk cannot take it.
func (st *state) slotFree(slot string, id uint64) bool {
	if slot == st.pool.Name {
		return false
	}
	other, ok := st.bySlot[slot]
	return !ok || other == id
}

// check validates r against the current state without changing anything.
func (st *state) check(r *record) error {
	if r.Op != opPool && st.pool.Name == "" {
		return fmt.Errorf("store: %s before the pool was defined", r.Op)
	}
	switch r.Op {
	case opPool:
		if r.Name == "" || strings.ContainsAny(r.Name, "/\x00") || r.Name == "." || r.Name == ".." {
			return fmt.Errorf("store: invalid pool name %q", r.Name)
		}
		if r.Size <= 0 {
			return fmt.Errorf("store: invalid pool size %d", r.Size)
		}
		if st.pool.Name != "" && st.pool.Name != r.Name {
			return fmt.Errorf("store: pool is %q, cannot rename it to %q", st.pool.Name, r.Name)
		}
		return nil

	case opAdd, opCopy:
		if r.Disk == nil {
			return fmt.Errorf("store: %s record without disk", r.Op)
		}
		dv := r.Disk.disk()
		d := &dv
		if d.ID < st.nextID {
			return fmt.Errorf("store: disk id %d reused (next is %d)", d.ID, st.nextID)
		}
		if err := st.checkDiskFields(d); err != nil {
			return err
		}
		if !st.slotFree(d.Slot, 0) {
			return errSlotExists
		}
		name := fileName(d.FilePath)
		if err := st.checkPlace(name); err != nil {
			return err
		}
		if _, ok := st.byFile[name]; ok {
			return errFileTaken
		}
		need := d.FileSize
		if f, ok := st.files[name]; ok {
			if r.Op == opCopy {
				return errFileExists
			}
			// Adoption: only the growth is new usage.
			need = max(0, d.FileSize-f.Size)
		}
		if r.Op == opCopy {
			src, ok := st.files[r.Name]
			if !ok || src.Dir {
				return ErrNoSuchItem
			}
			if d.FileSize < src.Size {
				return errBadFileSize
			}
		}
		if need > st.free() {
			return ErrNotEnoughSpace
		}
		return nil

	case opUpdate:
		if r.Disk == nil {
			return fmt.Errorf("store: update record without disk")
		}
		dv := r.Disk.disk()
		d := &dv
		old, ok := st.disks[d.ID]
		if !ok {
			return ErrNoSuchItem
		}
		if d.FilePath != old.FilePath {
			return errFixedFilePath
		}
		if !d.Created.Equal(old.Created) {
			return rosErr(ErrInvalid, "failure: creation time can not be changed")
		}
		if err := st.checkDiskFields(d); err != nil {
			return err
		}
		if !st.slotFree(d.Slot, d.ID) {
			return errSlotExists
		}
		if d.FileSize < old.FileSize {
			return ErrCannotShrink
		}
		f := st.files[fileName(d.FilePath)]
		if need := d.FileSize - f.Size; need > 0 && need > st.free() {
			return ErrNotEnoughSpace
		}
		return nil

	case opRmDisk:
		if _, ok := st.disks[r.ID]; !ok {
			return ErrNoSuchItem
		}
		return nil

	case opRmFile:
		f, ok := st.files[r.Name]
		if !ok {
			return ErrNoSuchItem
		}
		if f.Dir && st.children[r.Name] > 0 {
			return errDirNotEmpty
		}
		if _, used := st.byFile[r.Name]; used {
			return errFileInUse
		}
		return nil

	case opImport:
		if err := st.checkPlace(r.Name); err != nil {
			return err
		}
		if _, ok := st.files[r.Name]; ok {
			return errFileExists
		}
		if r.Size < 0 {
			return errBadFileSize
		}
		return nil
	}
	return fmt.Errorf("store: unknown journal operation %q", r.Op)
}

// mutate applies a record that check accepted. It must not fail: by the time
// it runs the record may already be in the journal.
func (st *state) mutate(r *record) {
	switch r.Op {
	case opPool:
		st.pool.Name, st.pool.Size = r.Name, r.Size

	case opAdd, opCopy:
		d := r.Disk.disk()
		name := fileName(d.FilePath)
		st.ensureFile(name, d.FileSize, r.Time)
		if r.Op == opCopy && r.Stage != "" {
			st.stages[name] = r.Stage
		}
		st.disks[d.ID] = &d
		st.bySlot[d.Slot] = d.ID
		st.byFile[name] = d.ID
		st.nextID = d.ID + 1

	case opUpdate:
		d := r.Disk.disk()
		old := st.disks[d.ID]
		if old.Slot != d.Slot {
			delete(st.bySlot, old.Slot)
			st.bySlot[d.Slot] = d.ID
		}
		st.ensureFile(fileName(d.FilePath), d.FileSize, r.Time)
		st.disks[d.ID] = &d

	case opRmDisk:
		d := st.disks[r.ID]
		delete(st.disks, r.ID)
		delete(st.bySlot, d.Slot)
		delete(st.byFile, fileName(d.FilePath))

	case opRmFile:
		f := st.files[r.Name]
		if !f.Dir {
			st.pool.Used -= f.Size
		}
		delete(st.files, r.Name)
		delete(st.children, r.Name)
		delete(st.stages, r.Name)
		st.tombs[r.Name] = r.Seq
		st.touchParent(r.Name, -1)

	case opImport:
		st.ensureFile(r.Name, r.Size, r.Time)
	}
}

// ensureFile makes name a regular file of at least size bytes, creating any
// missing parent directories. Existing files only ever grow.
func (st *state) ensureFile(name string, size int64, t time.Time) {
	if f, ok := st.files[name]; ok {
		if f.Size < size {
			st.pool.Used += size - f.Size
			f.Size = size
			f.LastModified = t
		}
		return
	}
	st.ensureDir(path.Dir(name), t)
	st.files[name] = &File{Name: name, Type: fileType(name, false), Size: size, LastModified: t}
	st.pool.Used += size
	delete(st.tombs, name)
	st.touchParent(name, +1)
}

func (st *state) ensureDir(name string, t time.Time) {
	if name == st.pool.Name {
		return
	}
	if _, ok := st.files[name]; ok {
		return
	}
	st.ensureDir(path.Dir(name), t)
	st.files[name] = &File{Name: name, Type: fileType(name, true), LastModified: t, Dir: true}
	delete(st.tombs, name)
	st.touchParent(name, +1)
}

// touchParent keeps the parent's entry count, so "directory is not empty" is
// O(1). A directory's last-modified stays the time it was made: the real
// sample (file-print-detail.txt) lists a directory older than both files in
// it, which a time that followed its entries could not show.
func (st *state) touchParent(name string, delta int) {
	dir := path.Dir(name)
	if dir == st.pool.Name {
		return
	}
	st.children[dir] += delta
}

// missingDirs lists the parent directories of name that do not exist yet,
// outermost first.
func (st *state) missingDirs(name string) []string {
	var out []string
	for dir := path.Dir(name); dir != st.pool.Name; dir = path.Dir(dir) {
		if _, ok := st.files[dir]; ok {
			break
		}
		out = append(out, dir)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// snapshotData is the whole state as written by compaction.
type snapshotData struct {
	Version  int       `json:"version"`
	Seq      uint64    `json:"seq"`
	PoolName string    `json:"poolName"`
	PoolSize int64     `json:"poolSize"`
	NextID   uint64    `json:"nextId"`
	Disks    []diskRec `json:"disks"`
	Files    []fileRec `json:"files"`
	Tombs    []string  `json:"tombs,omitempty"`
}

const snapshotVersion = 1

func (st *state) snapshot(seq uint64) *snapshotData {
	sd := &snapshotData{
		Version: snapshotVersion, Seq: seq,
		PoolName: st.pool.Name, PoolSize: st.pool.Size, NextID: st.nextID,
		Disks: make([]diskRec, 0, len(st.disks)),
		Files: make([]fileRec, 0, len(st.files)),
	}
	for _, d := range st.disks {
		sd.Disks = append(sd.Disks, *toDiskRec(d))
	}
	for _, f := range st.files {
		sd.Files = append(sd.Files, fileRec{f.Name, f.Size, f.LastModified, f.Dir})
	}
	for n := range st.tombs {
		sd.Tombs = append(sd.Tombs, n)
	}
	return sd
}

// stateFromSnapshot rebuilds the indices and verifies the invariants the rest
// of the package relies on, so a damaged snapshot fails loudly at Open instead
// of corrupting later operations.
func stateFromSnapshot(sd *snapshotData) (*state, error) {
	if sd.Version != snapshotVersion {
		return nil, fmt.Errorf("unsupported snapshot version %d", sd.Version)
	}
	st := newState()
	st.pool.Name, st.pool.Size, st.nextID = sd.PoolName, sd.PoolSize, sd.NextID
	for _, fr := range sd.Files {
		f := File{Name: fr.Name, Type: fileType(fr.Name, fr.Dir), Size: fr.Size, LastModified: fr.LastModified, Dir: fr.Dir}
		if fr.Dir && fr.Size != 0 {
			return nil, fmt.Errorf("snapshot: directory %q has a size", f.Name)
		}
		if _, dup := st.files[f.Name]; dup || !st.validName(f.Name) {
			return nil, fmt.Errorf("snapshot: bad file entry %q", f.Name)
		}
		st.files[f.Name] = &f
		if !f.Dir {
			st.pool.Used += f.Size
		}
	}
	for name := range st.files {
		if dir := path.Dir(name); dir != st.pool.Name {
			if p, ok := st.files[dir]; !ok || !p.Dir {
				return nil, fmt.Errorf("snapshot: %q has no parent directory", name)
			}
			st.children[dir]++
		}
	}
	for i := range sd.Disks {
		d := sd.Disks[i].disk()
		name := fileName(d.FilePath)
		f, ok := st.files[name]
		_, dupID := st.disks[d.ID]
		_, dupSlot := st.bySlot[d.Slot]
		_, dupFile := st.byFile[name]
		if !ok || f.Dir || dupID || dupSlot || dupFile || d.ID >= st.nextID {
			return nil, fmt.Errorf("snapshot: bad disk entry %d (slot %q)", d.ID, d.Slot)
		}
		st.disks[d.ID] = &d
		st.bySlot[d.Slot] = d.ID
		st.byFile[name] = d.ID
	}
	for _, n := range sd.Tombs {
		st.tombs[n] = 0
	}
	return st, nil
}
