package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// DefaultPool is the pool (and mount-point) name used when Options.Pool is empty.
const DefaultPool = "storage-pool"

// Names inside Options.Dir.
const (
	journalFile  = "journal.log"
	snapshotFile = "snapshot"
	lockFile     = "LOCK"
	filesDir     = "files"
	tmpDir       = "tmp"
)

// Compaction thresholds: the journal is folded into a snapshot once it holds
// more than compactMinRecords records and more than compactFactor times the
// number of live items, which keeps replay short without making compaction
// (which is O(state)) frequent. Variables so tests can force compactions.
var (
	compactMinRecords = 10000
	compactFactor     = 4
)

// Disk is a /disk entry of type=file.
type Disk struct {
	ID                         uint64 // creation order; never reused
	Slot                       string
	FilePath                   string // with leading "/": /<pool>/dir/name.img
	FileSize                   int64  // bytes
	NVMeTCPExport              bool
	NVMeTCPServerPort          int
	NVMeTCPServerNQN           string
	NVMeTCPServerAllowHostName string
	Comment                    string
	Created                    time.Time
}

// File is a /file entry. Name has no leading slash.
type File struct {
	Name         string
	Type         string // "directory", ".img file", "file"
	Size         int64  // logical size in bytes; 0 for directories
	LastModified time.Time
	Dir          bool
}

// Pool is the partition that holds the files. Used counts every regular
// file's logical size, sparse or not, disk or orphan, as RDS does.
type Pool struct {
	Name string
	Size int64
	Used int64
}

// Free is the space left; it can be negative if the pool was reconfigured
// smaller than what is already used.
func (p Pool) Free() int64 { return p.Size - p.Used }

// Options configures Open.
type Options struct {
	// Dir is the state directory; "" keeps everything in memory (no files,
	// no persistence).
	Dir string
	// Pool names the pool; "" means DefaultPool for a new state and "keep
	// the recorded one" for an existing one.
	Pool string
	// PoolSize in bytes: required for a new state; for an existing one a
	// different positive value resizes the pool (journaled), 0 keeps it.
	PoolSize int64
	// Clock supplies every timestamp; nil means the real clock.
	Clock clock.Clock
	// Fsync makes each change durable against machine crashes before it is
	// acknowledged (journal fsync, plus the directory of new files). Without
	// it the journal write() still happens before acknowledging, which
	// survives the process being killed but not the machine going down.
	Fsync bool
	// NoGroupCommit, with Fsync, flushes every change by itself under the
	// store's lock before the next one may start: one fsync per change, as
	// the store did before group commit (commit.go). It is for measuring
	// what group commit buys (the "before" case of the benchmarks) and for
	// ruling group commit out when a durability bug is suspected; it makes
	// no difference to what survives a crash, only to how fast.
	NoGroupCommit bool
	// SyncJournal replaces the journal's fsync (nil: f.Sync), so that a
	// test can make a flush fail the way a dying disk does.
	SyncJournal func(f *os.File) error
}

// Store is the emulated RDS state. All methods are safe for concurrent use.
type Store struct {
	clk     clock.Clock
	fsync   bool
	noGroup bool   // Options.NoGroupCommit
	dir     string // "" when in memory
	persist bool

	mu          sync.RWMutex
	st          *state
	journal     *os.File
	jsize       int64  // bytes of intact records in the journal
	seq         uint64 // sequence number of the last record
	nrec        int    // records since the last compaction
	nextCompact int
	lock        *os.File
	closed      bool
	broken      error // set when the journal can no longer be trusted for appends

	// Group commit (see commit.go). flushMu is taken before mu, never after.
	flushMu     sync.Mutex
	durable     uint64    // guarded by mu: records up to here are flushed and their host changes made
	pending     []*hostOp // guarded by mu: host changes of records not flushed yet, in order
	syncJournal func(*os.File) error
	flushes     atomic.Int64 // journal fsyncs (group commits) since Open

	stageSeq atomic.Uint64 // names staged copies under tmp/
	// copyProgress, when set by a test, runs after each stretch of a copy
	// (copied bytes so far) and once more, with -1, after the staged copy is
	// complete and before it is journaled; a test blocks in it to hold a copy.
	copyProgress func(copied int64)
	copiedBytes  atomic.Int64 // data bytes copies read and wrote (not cloned)
	clonedCopies atomic.Int64 // copies made with a reflink
}

// Open loads (or creates) the state in o.Dir, heals the host files so they
// match the journal, and compacts the journal into a fresh snapshot.
func Open(o Options) (*Store, error) {
	s := &Store{clk: o.Clock, fsync: o.Fsync, noGroup: o.NoGroupCommit, dir: o.Dir, persist: o.Dir != "", st: newState(), syncJournal: defaultSyncJournal}
	if o.SyncJournal != nil {
		s.syncJournal = o.SyncJournal
	}
	if s.clk == nil {
		s.clk = clock.New()
	}
	if o.PoolSize < 0 {
		return nil, fmt.Errorf("store: negative PoolSize %d", o.PoolSize)
	}
	if !s.persist {
		name := o.Pool
		if name == "" {
			name = DefaultPool
		}
		if o.PoolSize == 0 {
			return nil, errors.New("store: PoolSize is required")
		}
		if err := s.commit(&record{Op: opPool, Name: name, Size: o.PoolSize}); err != nil {
			return nil, err
		}
		return s, nil
	}
	if err := s.open(o); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Store) open(o Options) error {
	for _, d := range []string{s.dir, filepath.Join(s.dir, filesDir), filepath.Join(s.dir, tmpDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	var err error
	if s.lock, err = lockDir(filepath.Join(s.dir, lockFile)); err != nil {
		return err
	}

	sd, err := readSnapshot(filepath.Join(s.dir, snapshotFile))
	if err != nil {
		return err
	}
	if sd != nil {
		if s.st, err = stateFromSnapshot(sd); err != nil {
			return &CorruptError{File: filepath.Join(s.dir, snapshotFile), Reason: err.Error()}
		}
		s.seq = sd.Seq
	}

	jpath := filepath.Join(s.dir, journalFile)
	recs, valid, size, err := readJournal(jpath)
	if err != nil {
		return err
	}
	s.journal, err = os.OpenFile(jpath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if valid < size {
		// A torn tail is a write that never returned, so never acknowledged:
		// cut it off so new records do not land behind garbage.
		if err := s.journal.Truncate(valid); err != nil {
			return fmt.Errorf("store: truncating torn journal tail: %w", err)
		}
		if err := s.journal.Sync(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	s.jsize = valid
	for i, r := range recs {
		if r.Seq <= s.seq {
			continue // already in the snapshot (crash during compaction)
		}
		if r.Seq != s.seq+1 {
			return &CorruptError{File: jpath, Reason: fmt.Sprintf("record %d has sequence %d, expected %d", i+1, r.Seq, s.seq+1)}
		}
		if err := s.st.check(r); err != nil {
			return &CorruptError{File: jpath, Reason: fmt.Sprintf("record %d (seq %d, %s) does not apply: %v", i+1, r.Seq, r.Op, err)}
		}
		s.st.mutate(r)
		s.seq = r.Seq
		s.nrec++
	}

	if err := s.configurePool(o); err != nil {
		return err
	}
	if err := s.reconcile(); err != nil {
		return err
	}
	if err := s.importOrphans(); err != nil {
		return err
	}
	// Whatever is left in tmp/ is a staged copy that was never journaled
	// (or one reconcile just published).
	staged, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for _, e := range staged {
		if err := os.RemoveAll(filepath.Join(s.dir, tmpDir, e.Name())); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	clear(s.st.stages)
	return s.compact()
}

func (s *Store) configurePool(o Options) error {
	p := s.st.pool
	if p.Name == "" {
		name := o.Pool
		if name == "" {
			name = DefaultPool
		}
		if o.PoolSize == 0 {
			return errors.New("store: PoolSize is required for a new state directory")
		}
		return s.commit(&record{Op: opPool, Name: name, Size: o.PoolSize})
	}
	if o.Pool != "" && o.Pool != p.Name {
		return fmt.Errorf("store: %s holds pool %q, not %q", s.dir, p.Name, o.Pool)
	}
	if o.PoolSize != 0 && o.PoolSize != p.Size {
		return s.commit(&record{Op: opPool, Name: p.Name, Size: o.PoolSize})
	}
	return nil
}

// reconcile makes the host match the replayed state: every file exists with at
// least its recorded size (publishing journaled copies still in tmp/), and
// every journaled removal is carried out. This is what heals a crash between
// a journal write and the filesystem change it describes.
func (s *Store) reconcile() error {
	if err := os.MkdirAll(s.host(s.st.pool.Name), 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	names := make([]string, 0, len(s.st.files))
	for n := range s.st.files {
		names = append(names, n)
	}
	slices.Sort(names) // parents before children
	for _, n := range names {
		f := s.st.files[n]
		p := s.host(n)
		if f.Dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			continue
		}
		if stage, ok := s.st.stages[n]; ok {
			if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
				if err := os.Rename(filepath.Join(s.dir, tmpDir, stage), p); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("store: publishing copy %s: %w", n, err)
				}
			}
		}
		if _, err := growFile(p, f.Size); err != nil {
			return fmt.Errorf("store: restoring %s: %w", n, err)
		}
	}
	// Deepest first, so directories are empty by the time they are removed.
	tombs := make([]string, 0, len(s.st.tombs))
	for n := range s.st.tombs {
		tombs = append(tombs, n)
	}
	slices.Sort(tombs)
	for i := len(tombs) - 1; i >= 0; i-- {
		n := tombs[i]
		if _, live := s.st.files[n]; !live {
			if err := os.Remove(s.host(n)); err != nil && !errors.Is(err, os.ErrNotExist) {
				// Keep the tomb: it stops importOrphans from resurrecting
				// the file and goes into the snapshot, so the next Open
				// tries again. A directory still holding unknown files
				// ends up here too; importing those files revives it.
				continue
			}
		}
		delete(s.st.tombs, n)
	}
	return nil
}

// importOrphans records regular files found under the pool that the journal
// does not know, as orphans that use space, rather than ignoring them (they
// would leak invisibly) or deleting them (they may hold someone's data). They
// appear after a machine crash without Fsync, or when placed there by hand
// to stage an orphan.
func (s *Store) importOrphans() error {
	root := s.host(s.st.pool.Name)
	var found []record
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.host(""), p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if _, ok := s.st.files[name]; ok {
			return nil
		}
		if _, ok := s.st.tombs[name]; ok {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		found = append(found, record{Op: opImport, Name: name, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: scanning %s: %w", root, err)
	}
	for i := range found {
		r := &found[i]
		r.Time = s.now()
		if s.st.check(r) != nil {
			continue // e.g. a name RouterOS could not have; leave it alone
		}
		if err := s.commit(r); err != nil {
			return err
		}
	}
	return nil
}

// Close flushes the journal, finishes the host changes of every appended
// record and releases the state directory.
func (s *Store) Close() error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.fsync {
		s.drainLocked()
	}
	s.closed = true
	var err error
	if s.journal != nil {
		err = s.journal.Sync()
	}
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) closeFiles() error {
	var err error
	if s.journal != nil {
		err = s.journal.Close()
		s.journal = nil
	}
	if s.lock != nil {
		if cerr := s.lock.Close(); err == nil {
			err = cerr
		}
		s.lock = nil
	}
	return err
}

func (s *Store) now() time.Time { return s.clk.Now().UTC() }

// host maps a /file name to its path on the host.
func (s *Store) host(name string) string {
	return filepath.Join(s.dir, filesDir, filepath.FromSlash(path.Clean("/"+name)))
}

// BackingPath returns where the sparse file for a disk's file-path (or a /file
// name) lives on the host, or "" for an in-memory store.
func (s *Store) BackingPath(filePath string) string {
	if !s.persist {
		return ""
	}
	return s.host(fileName(filePath))
}

func (s *Store) writable() error {
	if s.closed {
		return ErrClosed
	}
	return s.broken
}

// commit journals r (write-ahead: before any host change and before the
// caller acknowledges) and applies it to memory. The caller holds s.mu. With
// Fsync the record is written but not yet flushed: the caller must await it
// (commit.go) before acknowledging.
func (s *Store) commit(r *record) error {
	if err := s.st.check(r); err != nil {
		return err
	}
	if s.persist {
		r.Seq = s.seq + 1
		if err := s.append(r); err != nil {
			return err
		}
		s.seq = r.Seq
		s.nrec++
	}
	s.st.mutate(r)
	return nil
}

var encBufPool = sync.Pool{New: func() any { return new([]byte) }}

func (s *Store) append(r *record) error {
	payload, err := marshalRecord(r)
	if err != nil {
		return err
	}
	bp := encBufPool.Get().(*[]byte)
	buf := appendFrame((*bp)[:0], payload)
	defer func() { *bp = buf[:0]; encBufPool.Put(bp) }()
	// One write() per record: a kill -9 cannot split it, only a machine
	// crash can, and that is the torn tail Open cuts off. The fsync is the
	// group commit's (commit.go).
	n, err := s.journal.Write(buf)
	if err != nil {
		// Remove any partial record so later ones do not follow garbage,
		// which Open would have to treat as mid-journal corruption.
		if n > 0 {
			if terr := s.journal.Truncate(s.jsize); terr != nil {
				s.broken = fmt.Errorf("store: journal damaged by a failed append (%v) and could not be repaired: %w", err, terr)
			}
		}
		return fmt.Errorf("failure: journal append: %w", err)
	}
	s.jsize += int64(n)
	return nil
}

// maybeCompact folds the journal into a snapshot once it is long compared with
// the state, so replay stays proportional to the state and not its history.
// With Fsync it runs only from the flush, once every record is durable.
func (s *Store) maybeCompact() {
	if !s.compactDue() {
		return
	}
	if err := s.compact(); err != nil {
		// Not fatal: the journal is still complete. Back off so a failing
		// disk does not turn every mutation into an O(state) attempt.
		s.nextCompact = 2 * s.nrec
	}
}

func (s *Store) compactDue() bool {
	return s.persist && s.nrec > compactMinRecords && s.nrec > compactFactor*(len(s.st.disks)+len(s.st.files)) && s.nrec >= s.nextCompact
}

// compact writes the snapshot and only then empties the journal. A crash in
// between leaves records the snapshot already covers; their sequence numbers
// make replay skip them.
func (s *Store) compact() error {
	if err := writeSnapshot(s.dir, s.st.snapshot(s.seq)); err != nil {
		return fmt.Errorf("store: writing snapshot: %w", err)
	}
	if err := s.journal.Truncate(0); err != nil {
		return fmt.Errorf("store: resetting journal: %w", err)
	}
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("store: resetting journal: %w", err)
	}
	s.jsize, s.nrec, s.nextCompact = 0, 0, 0
	// The snapshot was fsynced: everything up to seq is durable. Callers
	// with Fsync compact only with no host change pending.
	s.durable = s.seq
	return nil
}

// entryDirs lists the host directories holding name and the new directories
// before it: what must be fsynced to make their new entries durable.
func (s *Store) entryDirs(name string, newDirs []string) []string {
	out := make([]string, 0, len(newDirs)+1)
	for _, d := range append(newDirs, name) {
		out = append(out, filepath.Dir(s.host(d)))
	}
	return out
}

// hostErr reports a host failure after the journal write: the change stands.
func hostErr(err error) error {
	return fmt.Errorf("failure: %w: %w", ErrHost, err)
}

// prepErr reports a host failure before the journal write: nothing changed.
func prepErr(err error) error {
	return fmt.Errorf("failure: %w", err)
}

// settle is how every reply leaves: it waits until everything the reply was
// built from (records up to seq) is durable, so a machine crash cannot take
// back what a caller was told. err is the reply's own error, if any.
func (s *Store) settle(seq uint64, err error) error {
	if ferr := s.await(seq); ferr != nil && err == nil {
		return ferr
	}
	return err
}

// Err is what broke the store (a failed journal flush or a journal it could
// not repair), or nil. Reads still answer from memory after that, and what
// they show may include changes that would not survive a machine crash, so
// a reply built from a broken store must not be trusted: the console fails
// it instead of printing it.
func (s *Store) Err() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.broken
}

// Pool returns the pool and its usage.
func (s *Store) Pool() Pool {
	s.mu.RLock()
	p, seq := s.st.pool, s.seq
	s.mu.RUnlock()
	s.await(seq)
	return p
}

// AddDisk creates a file disk. ID and Created are assigned. If FilePath names
// an existing file no disk uses (an orphan), the disk adopts it: the file is
// grown to FileSize if smaller and the disk's FileSize becomes the file's
// size if larger, since the disk exposes the whole file. FileSize may be 0
// only when adopting.
//
// Like every mutation, an error wrapping ErrHost means the disk was recorded
// but the host file could not be created or grown; the returned Disk is
// valid and the next Open retries the host side.
func (s *Store) AddDisk(d Disk) (Disk, error) {
	s.mu.Lock()
	op, err := s.addDiskLocked(&d)
	seq := s.seq
	s.mu.Unlock()
	if err = s.settle(seq, err); err != nil {
		return Disk{}, err
	}
	if op != nil && op.err != nil {
		return d, hostErr(op.err)
	}
	return d, nil
}

func (s *Store) addDiskLocked(d *Disk) (*hostOp, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	now := s.now()
	d.ID, d.Created = s.st.nextID, now
	name := fileName(d.FilePath)
	f, exists := s.st.files[name]
	if exists && !f.Dir && d.FileSize >= 0 && d.FileSize < f.Size {
		d.FileSize = f.Size
	}
	r := &record{Op: opAdd, Time: now, Disk: toDiskRec(d)}
	if err := s.st.check(r); err != nil {
		return nil, err
	}
	newDirs := s.st.missingDirs(name)
	p := s.host(name)
	if s.persist && len(newDirs) > 0 {
		// Directories before the journal write: an empty directory left by
		// a crash is harmless, and a failure here leaves nothing recorded.
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, prepErr(err)
		}
	}
	size := d.FileSize
	op := &hostOp{run: func() ([]string, error) {
		// Again, in journal order: a removal journaled before this record
		// may have taken the directory away in the meantime.
		if len(newDirs) > 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
		}
		created, err := growFile(p, size)
		if err != nil || !created {
			return nil, err
		}
		return s.entryDirs(name, newDirs), nil
	}}
	if err := s.apply(r, op); err != nil {
		return nil, err
	}
	return op, nil
}

// CopyDisk creates disk d whose file is a copy of the file of the disk in
// srcSlot; its size is the larger of d.FileSize and the source file's size.
// The target file must not exist yet.
//
// The data is copied without the store's lock, so other commands go on while
// a large copy runs, and it costs what the data costs: a reflink where the
// filesystem has one, else only the source's data extents. The copy is made
// under tmp/ and fsynced there; only then is it validated again and journaled
// (naming the staged file), and renamed into place after the journal write.
// So the disk appears only complete and durable, and a crash at any point
// leaves either no disk (tmp/ is emptied by Open) or the whole copy (Open
// publishes a journaled stage).
func (s *Store) CopyDisk(srcSlot string, d Disk) (Disk, error) {
	if !s.persist {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, r, err := s.copyCheckLocked(srcSlot, &d)
		if err == nil {
			err = s.commit(r)
		}
		if err != nil {
			return Disk{}, err
		}
		return d, nil
	}

	s.mu.Lock()
	srcName, _, err := s.copyCheckLocked(srcSlot, &d)
	seq := s.seq
	s.mu.Unlock()
	// The source's own host changes (its creation, a resize) must have
	// happened before its file is read.
	if err = s.settle(seq, err); err != nil {
		return Disk{}, err
	}
	name := fileName(d.FilePath)
	if err := os.MkdirAll(filepath.Dir(s.host(name)), 0o755); err != nil {
		return Disk{}, prepErr(err)
	}
	stage := "copy-" + strconv.FormatUint(s.stageSeq.Add(1), 10)
	stagePath := filepath.Join(s.dir, tmpDir, stage)
	var st copyStats
	inBackground(func() { st, err = copySparse(stagePath, s.host(srcName), d.FileSize, s.fsync, s.copyProgress) })
	if err == nil && s.fsync {
		// The staged file's name must be durable before a journal record
		// names it: Open would otherwise find the record but no copy.
		err = syncDir(filepath.Join(s.dir, tmpDir))
	}
	if err != nil {
		os.Remove(stagePath)
		return Disk{}, prepErr(err)
	}
	s.copiedBytes.Add(st.copied)
	if st.cloned {
		s.clonedCopies.Add(1)
	}
	if s.copyProgress != nil {
		s.copyProgress(-1)
	}

	s.mu.Lock()
	op, err := s.publishCopyLocked(srcName, &d, stage, stagePath, st.size)
	seq = s.seq
	s.mu.Unlock()
	if err != nil {
		os.Remove(stagePath)
	}
	if err = s.settle(seq, err); err != nil {
		return Disk{}, err
	}
	if op.err != nil {
		return d, hostErr(op.err)
	}
	return d, nil
}

// copyCheckLocked sizes d for a copy of srcSlot and checks that the copy
// could be recorded now. It assigns ID and Created provisionally.
func (s *Store) copyCheckLocked(srcSlot string, d *Disk) (srcName string, r *record, err error) {
	if err := s.writable(); err != nil {
		return "", nil, err
	}
	srcID, ok := s.st.bySlot[srcSlot]
	if !ok {
		return "", nil, ErrNoSuchItem
	}
	srcName = fileName(s.st.disks[srcID].FilePath)
	src := s.st.files[srcName]
	now := s.now()
	d.ID, d.Created = s.st.nextID, now
	if d.FileSize < src.Size && d.FileSize >= 0 {
		d.FileSize = src.Size
	}
	r = &record{Op: opCopy, Time: now, Disk: toDiskRec(d), Name: srcName}
	if err := s.st.check(r); err != nil {
		return "", nil, err
	}
	return srcName, r, nil
}

// publishCopyLocked records a finished staged copy. Anything may have
// changed while the data was copied (the slot or the name taken, the space
// used, the source removed or grown), so it is all checked again.
func (s *Store) publishCopyLocked(srcName string, d *Disk, stage, stagePath string, staged int64) (*hostOp, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	if src, ok := s.st.files[srcName]; ok && d.FileSize < src.Size {
		// The source grew during the copy: the growth is a hole, which
		// the copy gets by growing too.
		d.FileSize = src.Size
	}
	now := s.now()
	d.ID, d.Created = s.st.nextID, now
	r := &record{Op: opCopy, Time: now, Disk: toDiskRec(d), Name: srcName, Stage: stage}
	if err := s.st.check(r); err != nil {
		return nil, err
	}
	if d.FileSize > staged {
		if err := os.Truncate(stagePath, d.FileSize); err != nil {
			return nil, prepErr(err)
		}
	}
	name := fileName(d.FilePath)
	newDirs := s.st.missingDirs(name)
	p := s.host(name)
	op := &hostOp{
		run: func() ([]string, error) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			if err := os.Rename(stagePath, p); err != nil {
				return nil, err
			}
			return s.entryDirs(name, newDirs), nil
		},
		done: func() {
			if s.st.stages[name] == stage {
				delete(s.st.stages, name)
			}
		},
	}
	if err := s.apply(r, op); err != nil {
		return nil, err
	}
	return op, nil
}

// DiskBySlot finds a disk by slot in O(1).
func (s *Store) DiskBySlot(slot string) (Disk, bool) {
	s.mu.RLock()
	var d Disk
	id, ok := s.st.bySlot[slot]
	if ok {
		d = *s.st.disks[id]
	}
	seq := s.seq
	s.mu.RUnlock()
	s.await(seq)
	return d, ok
}

// DiskByID finds a disk by its internal ID in O(1).
func (s *Store) DiskByID(id uint64) (Disk, bool) {
	s.mu.RLock()
	var d Disk
	p, ok := s.st.disks[id]
	if ok {
		d = *p
	}
	seq := s.seq
	s.mu.RUnlock()
	s.await(seq)
	return d, ok
}

// Disks lists all disks in creation order.
func (s *Store) Disks() []Disk { return s.AppendDisks(nil) }

// AppendDisks appends all disks, in creation order, to dst: a printer that
// lists every disk over and over can reuse one buffer.
func (s *Store) AppendDisks(dst []Disk) []Disk {
	s.mu.RLock()
	out := slices.Grow(dst, len(s.st.disks))
	base := len(out)
	for _, d := range s.st.disks {
		out = append(out, *d)
	}
	seq := s.seq
	s.mu.RUnlock()
	slices.SortFunc(out[base:], func(a, b Disk) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	s.await(seq)
	return out
}

// DiskCount is the number of disks.
func (s *Store) DiskCount() int {
	s.mu.RLock()
	n, seq := len(s.st.disks), s.seq
	s.mu.RUnlock()
	s.await(seq)
	return n
}

// UpdateDisk changes the disk with the given ID: change edits a copy, and the
// result is validated as a whole before anything is recorded. Slot must stay
// unique, FileSize may only grow (the file grows with it), and ID, FilePath
// and Created may not change. change runs with the store locked, so it must
// not call the Store.
func (s *Store) UpdateDisk(id uint64, change func(*Disk) error) (Disk, error) {
	s.mu.Lock()
	d, op, err := s.updateDiskLocked(id, change)
	seq := s.seq
	s.mu.Unlock()
	if err = s.settle(seq, err); err != nil {
		return Disk{}, err
	}
	if op != nil && op.err != nil {
		return d, hostErr(op.err)
	}
	return d, nil
}

func (s *Store) updateDiskLocked(id uint64, change func(*Disk) error) (Disk, *hostOp, error) {
	if err := s.writable(); err != nil {
		return Disk{}, nil, err
	}
	cur, ok := s.st.disks[id]
	if !ok {
		return Disk{}, nil, ErrNoSuchItem
	}
	d := *cur
	if err := change(&d); err != nil {
		return Disk{}, nil, err
	}
	if d.ID != id {
		return Disk{}, nil, errFixedID
	}
	if d == *cur {
		return d, nil, nil // nothing to record
	}
	grow := d.FileSize > cur.FileSize
	r := &record{Op: opUpdate, Time: s.now(), Disk: toDiskRec(&d)}
	name := fileName(d.FilePath)
	op := &hostOp{}
	if grow {
		p := s.host(name)
		op.run = func() ([]string, error) {
			_, err := growFile(p, d.FileSize)
			return nil, err
		}
	}
	if err := s.apply(r, op); err != nil {
		return Disk{}, nil, err
	}
	return d, op, nil
}

// RemoveDisk removes a disk but, as on real RDS, not its file: the file stays
// and keeps using space until RemoveFile.
func (s *Store) RemoveDisk(id uint64) error {
	s.mu.Lock()
	err := s.writable()
	if err == nil {
		err = s.apply(&record{Op: opRmDisk, ID: id, Time: s.now()}, &hostOp{})
	}
	seq := s.seq
	s.mu.Unlock()
	return s.settle(seq, err)
}

// Files lists all files and directories sorted by name. Directories inside the
// pool get entries (created on demand by AddDisk); the pool's mount point
// itself has none, matching the /file print samples from RDS.
func (s *Store) Files() []File {
	s.mu.RLock()
	out := make([]File, 0, len(s.st.files))
	for _, f := range s.st.files {
		out = append(out, *f)
	}
	seq := s.seq
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	s.await(seq)
	return out
}

// FileByName finds a file by its /file name (no leading slash) in O(1).
func (s *Store) FileByName(name string) (File, bool) {
	s.mu.RLock()
	var f File
	p, ok := s.st.files[name]
	if ok {
		f = *p
	}
	seq := s.seq
	s.mu.RUnlock()
	s.await(seq)
	return f, ok
}

// RemoveFile removes a file or an empty directory. A name with a leading
// slash matches nothing, as on RouterOS. A file a disk still uses is refused.
func (s *Store) RemoveFile(name string) error {
	s.mu.Lock()
	op := &hostOp{}
	err := s.writable()
	if err == nil {
		r := &record{Op: opRmFile, Name: name, Time: s.now()}
		p := s.host(name)
		op.run = func() ([]string, error) {
			// On failure the tomb stays (and goes into snapshots), so the
			// next Open retries the unlink.
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			return nil, nil
		}
		op.done = func() {
			// Only this removal's tomb: the name may have been made and
			// removed again since, with its own unlink still to come.
			if s.st.tombs[name] == op.seq {
				delete(s.st.tombs, name)
			}
		}
		err = s.apply(r, op)
		if !s.persist && err == nil {
			delete(s.st.tombs, name)
		}
	}
	seq := s.seq
	s.mu.Unlock()
	if err = s.settle(seq, err); err != nil {
		return err
	}
	if op.err != nil {
		return hostErr(op.err)
	}
	return nil
}
