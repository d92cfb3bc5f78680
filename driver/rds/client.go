package rds

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// Transport runs one RouterOS command and returns what it printed. It is the
// seam between the typed Client and the connection: the Manager (SSH) is one
// implementation, tests and the scenario runner plug in others.
//
// A Transport returns an error only when the command could not be run or its
// outcome is unknown (connection lost, deadline passed); RouterOS's own error
// messages come back as output and are classified by the Client. Errors that
// do not wrap one of the package sentinels are treated as ErrUnavailable.
type Transport interface {
	Run(ctx context.Context, command string) (output string, err error)
}

// ClientOptions configures a Client.
type ClientOptions struct {
	// BasePath is the directory all volume files live under, e.g.
	// "/storage-pool/k8s". Every file path the client sends must be below it.
	BasePath string
	// WrapWidth is the width output is parsed at; zero means
	// DefaultWrapWidth (see its comment for why that is right even with
	// "+ct512w").
	WrapWidth int
	// Clock times commands; nil means the real clock.
	Clock clock.Clock
	// Registerer receives the command metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Client performs typed RDS operations over a Transport. It is safe for
// concurrent use. It never retries by itself: reads are idempotent and safe
// for callers to retry, and CreateDisk/CopyDisk check existing state first so
// that a retry after an ambiguous failure cannot create a second disk.
type Client struct {
	t    Transport
	base string
	// pool is the partition the base path is on ("storage-pool"): its entry
	// anchors the reads that justify a removal.
	pool    string
	parse   ParseOptions
	clk     clock.Clock
	metrics *clientMetrics
}

// NewClient returns a Client using t.
func NewClient(t Transport, opts ClientOptions) (*Client, error) {
	if t == nil {
		return nil, invalidf("nil transport")
	}
	if err := validateAbsPath(opts.BasePath); err != nil {
		return nil, fmt.Errorf("base path: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	return &Client{
		t:       t,
		base:    opts.BasePath,
		pool:    strings.SplitN(opts.BasePath[1:], "/", 2)[0],
		parse:   ParseOptions{Width: opts.WrapWidth},
		clk:     opts.Clock,
		metrics: newClientMetrics(opts.Registerer),
	}, nil
}

// exec runs cmd, classifies the result and records metrics. The output is
// returned even with an error so callers can inspect it.
func (c *Client) exec(ctx context.Context, cmd string) (string, error) {
	verb := verbOf(cmd)
	start := c.clk.Now()
	var out string
	var err error
	if cerr := ctx.Err(); cerr != nil {
		err = &CommandError{Verb: verb, Command: cmd, Kind: ErrUnavailable, Err: cerr}
	} else {
		out, err = c.t.Run(ctx, cmd)
		if err != nil {
			err = transportError(verb, cmd, err)
		} else if kind, line := Classify(out); kind != nil {
			err = &CommandError{Verb: verb, Command: cmd, Output: line, Kind: kind}
		}
	}
	elapsed := c.clk.Since(start)
	res := resultOf(err)
	c.metrics.duration.WithLabelValues(verb).Observe(elapsed.Seconds())
	c.metrics.total.WithLabelValues(verb, res).Inc()
	if err != nil && res != ResultNotFound {
		klog.V(2).InfoS("RDS command failed", "verb", verb, "result", res, "duration", elapsed, "err", err)
	} else {
		klog.V(5).InfoS("RDS command", "verb", verb, "command", cmd, "result", res, "duration", elapsed)
	}
	return out, err
}

func transportError(verb, cmd string, err error) error {
	var ce *CommandError
	if errors.As(err, &ce) {
		return err
	}
	kind := KindOf(err)
	if kind == nil {
		kind = ErrUnavailable
	}
	return &CommandError{Verb: verb, Command: cmd, Kind: kind, Err: err}
}

func (c *Client) printDetail(ctx context.Context, cmd string, opts ParseOptions) ([]Entry, error) {
	out, err := c.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	entries, err := ParseDetail(out, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return entries, nil
}

// printDisks runs a /disk print detail. Its reply must carry the Flags:
// legend, which RouterOS prints even when nothing matches: an empty reply is
// not an empty listing.
func (c *Client) printDisks(ctx context.Context, cmd string) ([]Entry, error) {
	opts := c.parse
	opts.RequireLegend = true
	return c.printDetail(ctx, cmd, opts)
}

// printFiles runs a /file print detail, which prints no legend; only the
// transport's exit status vouches that its reply is whole.
func (c *Client) printFiles(ctx context.Context, cmd string) ([]Entry, error) {
	return c.printDetail(ctx, cmd, c.parse)
}

// GetDisk returns the disk in slot, or ErrNotFound.
func (c *Client) GetDisk(ctx context.Context, slot string) (*Disk, error) {
	if err := ValidateSlot(slot); err != nil {
		return nil, err
	}
	entries, err := c.printDisks(ctx, cmdDiskGet(slot))
	if err != nil {
		return nil, err
	}
	var found []Disk
	for _, e := range entries {
		d, err := diskFromEntry(e)
		if err != nil {
			return nil, err
		}
		if d.Slot != slot {
			// The where clause should have filtered it out: a reply that
			// does not answer the question asked answers nothing.
			return nil, fmt.Errorf("%w: asked for slot %q, RDS printed slot %q", ErrFailed, slot, truncate(d.Slot, 64))
		}
		found = append(found, d)
	}
	switch len(found) {
	case 0:
		// An empty listing is only a claim; "not found" needs a count of 0.
		if err := c.expectCount(ctx, cmdDiskCount("slot", "=", slot), 0); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("disk %q: %w", slot, ErrNotFound)
	case 1:
		return &found[0], nil
	default:
		return nil, fmt.Errorf("%w: %d disks with slot %q", ErrFailed, len(found), slot)
	}
}

// ListDisks returns the /disk entries whose slot matches the regular
// expression slotRegex (RouterOS "~" semantics); "" matches all. Like
// RouterOS it includes non-file entries such as the pool's partition; check
// Disk.Type.
func (c *Client) ListDisks(ctx context.Context, slotRegex string) ([]Disk, error) {
	if err := ValidateRegex(slotRegex); err != nil {
		return nil, err
	}
	entries, err := c.printDisks(ctx, cmdDiskList(slotRegex))
	if err != nil {
		return nil, err
	}
	disks := make([]Disk, 0, len(entries))
	for _, e := range entries {
		d, err := diskFromEntry(e)
		if err != nil {
			return nil, err
		}
		disks = append(disks, d)
	}
	// A listing cut between entries, or emptied to its legend, reads like a
	// shorter one; the count says how long it must be.
	if err := c.expectCount(ctx, cmdDiskCount("slot", "~", slotRegex), len(disks)); err != nil {
		return nil, err
	}
	return disks, nil
}

// CreateDiskRequest describes a new file-backed disk.
type CreateDiskRequest struct {
	Slot string
	// FilePath is the backing file, under the client's base path.
	FilePath string
	// Size in bytes; rounded up to AllocationUnit.
	Size int64
	// Export over NVMe/TCP on Port with NQN.
	Export bool
	Port   int
	NQN    string
}

func (c *Client) validateExport(export bool, port int, nqn string) error {
	if !export {
		return nil
	}
	if err := ValidatePort(port); err != nil {
		return err
	}
	return ValidateNQN(nqn)
}

// CreateDisk creates a disk and returns it as read back from RDS (with the
// real size). It is idempotent: if the slot already holds a disk with the
// same file path and size (and NQN when exporting), that disk is returned;
// if it holds a different one, an *ExistsError is returned.
//
// "/disk add" is not idempotent, so it is never retried blindly: when its
// outcome is unknown the disk is looked up, and if that is impossible the
// error wraps ErrUnavailable and a later call starts by looking it up.
func (c *Client) CreateDisk(ctx context.Context, req CreateDiskRequest) (*Disk, error) {
	if err := ValidateSlot(req.Slot); err != nil {
		return nil, err
	}
	if err := ValidatePathUnder(c.base, req.FilePath); err != nil {
		return nil, err
	}
	if err := c.validateExport(req.Export, req.Port, req.NQN); err != nil {
		return nil, err
	}
	size, err := RoundUpSize(req.Size)
	if err != nil {
		return nil, err
	}
	match := func(d *Disk) (*Disk, error) {
		return d, matchExisting(d, req.Slot, req.FilePath, size, req.Export, req.NQN)
	}
	if d, err := c.GetDisk(ctx, req.Slot); err == nil {
		return match(d)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := c.clearLeftoverFile(ctx, req.Slot, req.FilePath); err != nil {
		return nil, err
	}
	if _, err := c.exec(ctx, cmdDiskAdd(req.Slot, req.FilePath, size, req.Export, req.Port, req.NQN)); err != nil {
		return c.afterFailedAdd(ctx, err, req.Slot, match)
	}
	d, err := c.GetDisk(ctx, req.Slot)
	if err != nil {
		return nil, fmt.Errorf("reading back created disk: %w", err)
	}
	if d.Size < size {
		return nil, fmt.Errorf("%w: disk %q created with %d bytes, requested %d", ErrFailed, req.Slot, d.Size, size)
	}
	klog.InfoS("Created RDS disk", "slot", d.Slot, "size", d.Size, "path", d.FilePath)
	return d, nil
}

// afterFailedAdd decides what a failed "/disk add" means. Definite refusals
// are returned as they are; anything else may have created the disk, so the
// disk is looked up before deciding.
func (c *Client) afterFailedAdd(ctx context.Context, addErr error, slot string, match func(*Disk) (*Disk, error)) (*Disk, error) {
	if errors.Is(addErr, ErrCapacity) || errors.Is(addErr, ErrRejected) || errors.Is(addErr, ErrInvalidArgument) {
		return nil, addErr
	}
	if ctx.Err() != nil {
		return nil, addErr // cannot look now; the caller's retry looks first
	}
	d, gerr := c.GetDisk(ctx, slot)
	if gerr != nil {
		// Not found after a definite failure: not created. Not found after
		// an unavailable error, or no answer: unknown, and the command may
		// still complete, so report it as unavailable for a checked retry.
		return nil, addErr
	}
	if _, merr := match(d); merr != nil {
		return nil, merr
	}
	klog.InfoS("RDS disk exists after an ambiguous add; treating it as created", "slot", slot, "addErr", addErr.Error())
	return d, nil
}

func matchExisting(d *Disk, slot, filePath string, size int64, export bool, nqn string) error {
	e := &ExistsError{Slot: slot, ExistingSize: d.Size, RequestedSize: size, ExistingPath: d.FilePath, RequestedPath: filePath}
	switch {
	case d.FilePath != filePath:
		e.Reason = "file path"
	case size > 0 && (d.Size < size || d.Size-size >= AllocationUnit):
		e.Reason = "size"
	case export && (!d.Export || d.NQN != nqn):
		e.Reason = "export"
	default:
		return nil
	}
	return e
}

// CopyDiskRequest describes a copy of an existing disk (snapshot or clone).
type CopyDiskRequest struct {
	SourceSlot string
	Slot       string
	FilePath   string
	// Export the copy over NVMe/TCP; snapshots are not exported.
	Export bool
	Port   int
	NQN    string
}

// CopyDisk creates Slot as a copy of SourceSlot and returns it as read back.
// Like CreateDisk it is idempotent on Slot and FilePath.
func (c *Client) CopyDisk(ctx context.Context, req CopyDiskRequest) (*Disk, error) {
	if err := ValidateSlot(req.SourceSlot); err != nil {
		return nil, err
	}
	if err := ValidateSlot(req.Slot); err != nil {
		return nil, err
	}
	if req.Slot == req.SourceSlot {
		return nil, invalidf("copy source and destination are both %q", req.Slot)
	}
	if err := ValidatePathUnder(c.base, req.FilePath); err != nil {
		return nil, err
	}
	if err := c.validateExport(req.Export, req.Port, req.NQN); err != nil {
		return nil, err
	}
	match := func(d *Disk) (*Disk, error) {
		return d, matchExisting(d, req.Slot, req.FilePath, 0, req.Export, req.NQN)
	}
	if d, err := c.GetDisk(ctx, req.Slot); err == nil {
		return match(d)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	src, err := c.GetDisk(ctx, req.SourceSlot)
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if err := c.clearLeftoverFile(ctx, req.Slot, req.FilePath); err != nil {
		return nil, err
	}
	if _, err := c.exec(ctx, cmdDiskCopy(req.SourceSlot, req.Slot, req.FilePath, req.Export, req.Port, req.NQN)); err != nil {
		return c.afterFailedAdd(ctx, err, req.Slot, match)
	}
	d, err := c.GetDisk(ctx, req.Slot)
	if err != nil {
		return nil, fmt.Errorf("reading back copied disk: %w", err)
	}
	if d.Size < src.Size {
		return nil, fmt.Errorf("%w: copy %q has %d bytes, source %q has %d", ErrFailed, d.Slot, d.Size, src.Slot, src.Size)
	}
	klog.InfoS("Copied RDS disk", "source", src.Slot, "slot", d.Slot, "size", d.Size, "path", d.FilePath)
	return d, nil
}

// ResizeDisk grows a disk to at least size bytes (rounded up) and returns it
// as read back. A disk already that large is returned unchanged; disks are
// never shrunk.
func (c *Client) ResizeDisk(ctx context.Context, slot string, size int64) (*Disk, error) {
	if err := ValidateSlot(slot); err != nil {
		return nil, err
	}
	want, err := RoundUpSize(size)
	if err != nil {
		return nil, err
	}
	d, err := c.GetDisk(ctx, slot)
	if err != nil {
		return nil, err
	}
	if d.Size >= want {
		return d, nil
	}
	if _, err := c.exec(ctx, cmdDiskResize(slot, want)); err != nil {
		if errors.Is(err, ErrCapacity) || errors.Is(err, ErrRejected) || ctx.Err() != nil {
			return nil, err
		}
		// "set" is idempotent, but look before reporting failure: it may
		// have been applied before the connection dropped.
		if d2, gerr := c.GetDisk(ctx, slot); gerr == nil && d2.Size >= want {
			return d2, nil
		}
		return nil, err
	}
	d, err = c.GetDisk(ctx, slot)
	if err != nil {
		return nil, fmt.Errorf("reading back resized disk: %w", err)
	}
	if d.Size < want {
		return nil, fmt.Errorf("%w: disk %q has %d bytes after resize to %d", ErrFailed, slot, d.Size, want)
	}
	klog.InfoS("Resized RDS disk", "slot", slot, "size", d.Size)
	return d, nil
}

// diskView is what one anchored read shows about a slot and a file path.
type diskView struct {
	// slot is the disk in the slot, whatever its file; nil if the slot is free.
	slot *Disk
	// users are the other disks whose file-path is the path.
	users []Disk
}

// usersOf names the disks in users, for messages.
func (v diskView) usersOf() string {
	names := make([]string, len(v.users))
	for i, d := range v.users {
		names[i] = d.Slot
	}
	return strings.Join(names, ", ")
}

// viewSlotAndFile lists, in one reply, the disk in slot, every disk whose
// file is filePath, and the pool's own partition entry. The partition entry
// is the anchor: it exists on every RDS, so a reply without it was emptied or
// cut and proves nothing, while a reply with it and without a disk proves the
// disk absent. Every decision to remove rests on such a reply.
func (c *Client) viewSlotAndFile(ctx context.Context, slot, filePath string) (diskView, error) {
	var v diskView
	entries, err := c.printDisks(ctx, cmdDiskView(slot, filePath, c.pool))
	if err != nil {
		return v, err
	}
	anchored := false
	for _, e := range entries {
		if t, _ := e.Get("type"); t == "partition" {
			if mp, _ := e.Get("mount-point"); mp == c.pool {
				anchored = true
				continue
			}
		}
		d, err := diskFromEntry(e)
		if err != nil {
			return v, err
		}
		switch {
		case d.Slot == slot:
			if v.slot != nil {
				return v, fmt.Errorf("%w: RDS printed slot %q twice", ErrFailed, slot)
			}
			v.slot = &d
		case d.FilePath == filePath:
			v.users = append(v.users, d)
		default:
			return v, fmt.Errorf("%w: asked for slot %q or file %q, RDS printed disk %q with file %q",
				ErrFailed, slot, filePath, truncate(d.Slot, 64), truncate(d.FilePath, 80))
		}
	}
	if !anchored {
		return v, fmt.Errorf("%w: %w: the reply lacks the entry of pool %q, so it proves nothing about slot %q",
			ErrUnavailable, ErrIncompleteReply, c.pool, slot)
	}
	return v, nil
}

// fileByName returns the /file entry named exactly name, or nil when RDS
// shows it absent. /file print has no legend, so an empty listing alone
// proves nothing: absence must also be stated as a count of zero.
func (c *Client) fileByName(ctx context.Context, name string) (*File, error) {
	entries, err := c.printFiles(ctx, cmdFileGet("/"+name))
	if err != nil {
		return nil, err
	}
	var found *File
	for _, e := range entries {
		f, err := fileFromEntry(e)
		if err != nil {
			return nil, err
		}
		if f.Name != name || found != nil {
			return nil, fmt.Errorf("%w: asked for file %q, RDS printed %q", ErrFailed, name, truncate(f.Name, 80))
		}
		found = &f
	}
	if found != nil {
		return found, nil
	}
	if err := c.expectCount(ctx, cmdFileCount("/"+name), 0); err != nil {
		return nil, err
	}
	return nil, nil
}

// File returns the /file entry of a disk's backing file (a /disk path with
// its leading slash), or nil when RDS shows it absent; a reply that shows
// neither is an error.
func (c *Client) File(ctx context.Context, filePath string) (*File, error) {
	if err := ValidatePathUnder(c.base, filePath); err != nil {
		return nil, err
	}
	return c.fileByName(ctx, fileName(filePath))
}

// count runs a print count-only and reads its number.
func (c *Client) count(ctx context.Context, cmd string) (int, error) {
	out, err := c.exec(ctx, cmd)
	if err != nil {
		return 0, err
	}
	n, err := ParseCount(out)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", cmd, err)
	}
	return n, nil
}

// expectCount checks that a listing of want entries was whole: RouterOS
// must count as many. A listing is a claim that can be cut short cleanly; a
// printed count cannot be shortened into another count of the same set.
func (c *Client) expectCount(ctx context.Context, cmd string, want int) error {
	n, err := c.count(ctx, cmd)
	if err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("%w: %w: a listing showed %d entries, RouterOS counts %d (%s)", ErrUnavailable, ErrIncompleteReply, want, n, cmd)
	}
	return nil
}

// checkVolumeFile checks that filePath is the file a volume in slot may own:
// under the client's base path and named after the slot.
func (c *Client) checkVolumeFile(slot, filePath string) error {
	if err := ValidatePathUnder(c.base, filePath); err != nil {
		return err
	}
	if path.Base(filePath) != slot+".img" {
		return invalidf("file %q is not named after slot %q (want %s.img)", truncate(filePath, 80), slot, slot)
	}
	return nil
}

// removeUnusedFile removes the file at filePath after proving that no disk
// uses it twice over (an anchored listing and a count of zero), and then
// verifies it is gone. A file already absent is fine.
func (c *Client) removeUnusedFile(ctx context.Context, slot, filePath string) (removed bool, err error) {
	name := fileName(filePath)
	f, err := c.fileByName(ctx, name)
	if err != nil || f == nil {
		return false, err
	}
	if f.IsDir() {
		return false, fmt.Errorf("%w: %q is a directory, not a disk's file", ErrInUse, name)
	}
	v, err := c.viewSlotAndFile(ctx, slot, filePath)
	if err != nil {
		return false, err
	}
	if v.slot != nil && v.slot.FilePath == filePath {
		return false, fmt.Errorf("%w: file %q belongs to disk %q", ErrInUse, name, slot)
	}
	if len(v.users) > 0 {
		return false, fmt.Errorf("%w: file %q is used by disk %s; not removing it", ErrInUse, name, v.usersOf())
	}
	// The listing shows no user; a count must say so too, in so many words.
	// A listing cut at an entry boundary with a clean exit reads like a
	// shorter one, a count of zero cannot be made by cutting.
	if n, err := c.count(ctx, cmdDiskCount("file-path", "=", filePath)); err != nil {
		return false, err
	} else if n != 0 {
		return false, fmt.Errorf("%w: file %q is used by %d disk(s); not removing it", ErrInUse, name, n)
	}
	if _, err := c.exec(ctx, cmdFileRemove(filePath)); err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if f, err := c.fileByName(ctx, name); err != nil {
		return false, err
	} else if f != nil {
		return false, fmt.Errorf("%w: file %q still present after remove", ErrFailed, name)
	}
	return true, nil
}

// clearLeftoverFile makes sure a new disk in slot starts from an empty file.
// RouterOS builds a disk on a file already at its path, contents and all; a
// file left at a volume's path by a half-finished create or delete must never
// hand its old data to a new volume. Only a file that no disk uses is removed.
func (c *Client) clearLeftoverFile(ctx context.Context, slot, filePath string) error {
	removed, err := c.removeUnusedFile(ctx, slot, filePath)
	if err != nil {
		return fmt.Errorf("leftover backing file: %w", err)
	}
	if removed {
		klog.InfoS("Removed a leftover backing file no disk used, so the new disk starts empty", "slot", slot, "path", filePath)
	}
	return nil
}

// DeleteDisk removes the disk in slot if, and only if, its backing file is
// filePath, and then removes filePath itself if no disk uses it; both are
// verified gone. A disk in the slot with another file is not this call's to
// touch and is left alone. Deleting what is already gone succeeds, so a
// retry after a partial delete finishes the job.
//
// Each removal follows an anchored read that shows what it removes and that
// nothing else depends on it (see viewSlotAndFile): an empty, cut or garbled
// reply stops the delete with an error instead of being read as "not there".
// filePath must be named after the slot: /disk remove leaves the file behind,
// and the file is removed by its exact name, never by pattern.
func (c *Client) DeleteDisk(ctx context.Context, slot, filePath string) error {
	if err := ValidateSlot(slot); err != nil {
		return err
	}
	if err := c.checkVolumeFile(slot, filePath); err != nil {
		return err
	}
	v, err := c.viewSlotAndFile(ctx, slot, filePath)
	if err != nil {
		return err
	}
	if len(v.users) > 0 {
		return fmt.Errorf("%w: file %q is also used by disk %s; deleting nothing", ErrInUse, fileName(filePath), v.usersOf())
	}
	if v.slot != nil && v.slot.FilePath == filePath {
		if _, err := c.exec(ctx, cmdDiskRemove(slot, filePath)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		// A remove that printed nothing is not proof of removal.
		after, err := c.viewSlotAndFile(ctx, slot, filePath)
		if err != nil {
			return err
		}
		if after.slot != nil && after.slot.FilePath == filePath {
			return fmt.Errorf("%w: disk %q still present after remove", ErrFailed, slot)
		}
	} else if v.slot != nil {
		klog.InfoS("Slot holds a disk with another file; leaving it alone", "slot", slot, "file", v.slot.FilePath, "expected", filePath)
	}
	if _, err := c.removeUnusedFile(ctx, slot, filePath); err != nil {
		return err
	}
	klog.InfoS("Deleted RDS disk", "slot", slot, "path", filePath)
	return nil
}

// PoolCapacity returns the size and free space of the partition mounted at
// pool (e.g. "storage-pool").
func (c *Client) PoolCapacity(ctx context.Context, pool string) (*Capacity, error) {
	if err := ValidateSlot(pool); err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	entries, err := c.printDisks(ctx, cmdPool(pool))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if mp, _ := e.Get("mount-point"); mp != pool {
			continue
		}
		cp, err := capacityFromEntry(e)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", pool, err)
		}
		return &cp, nil
	}
	return nil, fmt.Errorf("pool %q: %w", pool, ErrNotFound)
}

// ListFiles returns the /file entries whose name (no leading slash) matches
// nameRegex.
func (c *Client) ListFiles(ctx context.Context, nameRegex string) ([]File, error) {
	if err := ValidateRegex(nameRegex); err != nil {
		return nil, err
	}
	entries, err := c.printFiles(ctx, cmdFileList(nameRegex))
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(entries))
	for _, e := range entries {
		f, err := fileFromEntry(e)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if err := c.expectCount(ctx, cmdFileCountList(nameRegex), len(files)); err != nil {
		return nil, err
	}
	return files, nil
}

func (c *Client) keyValue(ctx context.Context, cmd, key string) (string, error) {
	out, err := c.exec(ctx, cmd)
	if err != nil {
		return "", err
	}
	kv, err := ParseKeyValue(out)
	if err != nil {
		return "", fmt.Errorf("%s: %w", cmd, err)
	}
	v, ok := kv[key]
	if !ok {
		return "", fmt.Errorf("%w: %s printed no %s", ErrFailed, cmd, key)
	}
	return v, nil
}

// Identity returns the device's system identity (its name).
func (c *Client) Identity(ctx context.Context) (string, error) {
	return c.keyValue(ctx, cmdIdentity, "name")
}

// Version returns the RouterOS version string, e.g. "7.16 (stable)".
func (c *Client) Version(ctx context.Context) (string, error) {
	return c.keyValue(ctx, cmdResource, "version")
}
