package rds

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
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

// A proven listing is a listing RouterOS vouches for in the same reply: the
// script prints it and then counts the same where clause. A reply cut
// anywhere loses that count, or the end of its line, and proves nothing; a
// listing emptied or shortened (cleanly, between entries) no longer matches
// its count. So one round trip does what a listing and a separate count did,
// and a destructive command can travel in front of the read that verifies
// it: RouterOS stops a script at its first error, so the listings only print
// when the command succeeded.
type listing struct {
	menu  string // "disk" or "file"
	where string
	// legend: /disk print always prints its Flags: legend, /file print none.
	legend bool
}

func diskListing(where string) listing { return listing{menu: "disk", where: where, legend: true} }
func fileListing(where string) listing { return listing{menu: "file", where: where} }

// provenScript is first (a command whose own output is nothing, or "")
// followed by each listing and its count.
func provenScript(first string, ls ...listing) string {
	var b strings.Builder
	if first != "" {
		b.WriteString(first)
		b.WriteString("; ")
	}
	for i, l := range ls {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString("/" + l.menu + " print detail where " + l.where + "; /" + l.menu + " print count-only where " + l.where)
	}
	return b.String()
}

// runProven runs first and the listings in one script and returns each
// listing's entries, each proven whole by its count.
func (c *Client) runProven(ctx context.Context, first string, ls ...listing) ([][]Entry, error) {
	cmd := provenScript(first, ls...)
	out, err := c.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	res, err := parseProven(out, c.parse, ls)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return res, nil
}

// parseProven splits a proven reply at its counts. A count is a line of
// digits alone, starting at the first column and ended by a newline; no line
// of a listing has that shape (an entry's first line carries properties after
// its index, continuation lines are indented), and a cut cannot make one,
// since it would have to leave the newline.
func parseProven(out string, opts ParseOptions, ls []listing) ([][]Entry, error) {
	if strings.IndexByte(out, 0x1b) >= 0 {
		out = ansiRE.ReplaceAllString(out, "")
	}
	res := make([][]Entry, 0, len(ls))
	rest := out
	for i, l := range ls {
		body, n, tail, ok := cutAtCount(rest)
		if !ok {
			return nil, fmt.Errorf("%w: %w: the reply ends before the count that proves listing %d of %d whole", ErrUnavailable, ErrIncompleteReply, i+1, len(ls))
		}
		o := opts
		o.RequireLegend = l.legend
		entries, err := ParseDetail(body, o)
		if err != nil {
			return nil, err
		}
		if len(entries) != n {
			return nil, fmt.Errorf("%w: %w: a listing showed %d entries, RouterOS counts %d", ErrUnavailable, ErrIncompleteReply, len(entries), n)
		}
		res = append(res, entries)
		rest = tail
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("%w: unexpected output after the last count: %q", ErrFailed, truncate(rest, 80))
	}
	return res, nil
}

// cutAtCount finds the first count line in s and returns what precedes it,
// the count and what follows it.
func cutAtCount(s string) (body string, n int, rest string, ok bool) {
	for start := 0; start < len(s); {
		end := strings.IndexByte(s[start:], '\n')
		if end < 0 {
			return "", 0, "", false // an unterminated line may be a cut one
		}
		end += start
		line := strings.TrimSuffix(s[start:end], "\r")
		if isCount(line) {
			n, _ := strconv.Atoi(line)
			return s[:start], n, s[end+1:], true
		}
		start = end + 1
	}
	return "", 0, "", false
}

func isCount(l string) bool {
	if l == "" || len(l) > 9 {
		return false
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// printDisks runs a /disk print detail, proven by its count. Its reply must
// also carry the Flags: legend, which RouterOS prints even when nothing
// matches: an empty reply is not an empty listing.
func (c *Client) printDisks(ctx context.Context, where string) ([]Entry, error) {
	ls, err := c.runProven(ctx, "", diskListing(where))
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// GetDisk returns the disk in slot, or ErrNotFound.
func (c *Client) GetDisk(ctx context.Context, slot string) (*Disk, error) {
	if err := ValidateSlot(slot); err != nil {
		return nil, err
	}
	entries, err := c.printDisks(ctx, whereSlot(slot))
	if err != nil {
		return nil, err
	}
	return diskInSlot(entries, slot)
}

// diskInSlot reads a proven listing of one slot. An empty one is proof of
// absence (its count said 0).
func diskInSlot(entries []Entry, slot string) (*Disk, error) {
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
	// A listing cut between entries, or emptied to its legend, reads like a
	// shorter one; its count says how long it must be.
	entries, err := c.printDisks(ctx, whereSlotLike(slotRegex))
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
	// AllowedHosts, when set, is the export's allow-list from the moment
	// the disk exists (nvme-tcp-server-allow-host-name in the same /disk
	// add), so no host can connect in between; nil leaves RouterOS's
	// default, any host.
	AllowedHosts []string
	// OnExisting, if set, decides about a disk already in the slot instead
	// of the default rule (same file, size and export, else *ExistsError):
	// a nil error returns that disk as the result, any other is returned as
	// it is. A caller with rules of its own (ownership, a capacity range)
	// needs no read of the slot before calling.
	OnExisting func(*Disk) error
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
	allow, err := allowAtAdd(req.Export, req.AllowedHosts)
	if err != nil {
		return nil, err
	}
	size, err := RoundUpSize(req.Size)
	if err != nil {
		return nil, err
	}
	match := func(d *Disk) (*Disk, error) {
		if req.OnExisting != nil {
			if err := req.OnExisting(d); err != nil {
				return nil, err
			}
			return d, nil
		}
		return d, matchExisting(d, req.Slot, req.FilePath, size, req.Export, req.NQN)
	}
	// One read shows the slot, every disk on the path and the file there.
	v, err := c.viewSlotAndFile(ctx, "", req.Slot, req.FilePath)
	if err != nil {
		return nil, err
	}
	if v.slot != nil {
		return match(v.slot)
	}
	if err := c.clearLeftoverFile(ctx, req.Slot, req.FilePath, v); err != nil {
		return nil, err
	}
	d, err := c.addAndRead(ctx, cmdDiskAdd(req.Slot, req.FilePath, size, req.Export, req.Port, req.NQN, allow), req.Slot, match)
	if err != nil {
		return nil, err
	}
	if d.Size < size {
		return nil, fmt.Errorf("%w: disk %q created with %d bytes, requested %d", ErrFailed, req.Slot, d.Size, size)
	}
	klog.InfoS("Created RDS disk", "slot", d.Slot, "size", d.Size, "path", d.FilePath)
	return d, nil
}

// addAndRead runs a /disk add and reads the new disk back in the same
// script. A failed add prints its error and nothing else (the script stops
// there); an add whose outcome is unknown is decided by afterFailedAdd.
func (c *Client) addAndRead(ctx context.Context, add, slot string, match func(*Disk) (*Disk, error)) (*Disk, error) {
	ls, err := c.runProven(ctx, add, diskListing(whereSlot(slot)))
	var ce *CommandError
	if errors.As(err, &ce) {
		return c.afterFailedAdd(ctx, err, slot, match)
	}
	if err != nil {
		return nil, fmt.Errorf("reading back added disk: %w", err)
	}
	d, err := diskInSlot(ls[0], slot)
	if err != nil {
		return nil, fmt.Errorf("reading back added disk: %w", err)
	}
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
	// AllowedHosts: as in CreateDiskRequest.
	AllowedHosts []string
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
	allow, err := allowAtAdd(req.Export, req.AllowedHosts)
	if err != nil {
		return nil, err
	}
	match := func(d *Disk) (*Disk, error) {
		return d, matchExisting(d, req.Slot, req.FilePath, 0, req.Export, req.NQN)
	}
	v, err := c.viewSlotAndFile(ctx, "", req.Slot, req.FilePath)
	if err != nil {
		return nil, err
	}
	if v.slot != nil {
		return match(v.slot)
	}
	src, err := c.GetDisk(ctx, req.SourceSlot)
	if err != nil {
		return nil, fmt.Errorf("copy source: %w", err)
	}
	if err := c.clearLeftoverFile(ctx, req.Slot, req.FilePath, v); err != nil {
		return nil, err
	}
	d, err := c.addAndRead(ctx, cmdDiskCopy(req.SourceSlot, req.Slot, req.FilePath, req.Export, req.Port, req.NQN, allow), req.Slot, match)
	if err != nil {
		return nil, err
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
	ls, err := c.runProven(ctx, cmdDiskResize(slot, want), diskListing(whereSlot(slot)))
	var ce *CommandError
	if errors.As(err, &ce) {
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
	if err == nil {
		d, err = diskInSlot(ls[0], slot)
	}
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
	// file is the /file entry at the path; nil if there is none.
	file *File
}

// usersOf names the disks in users, for messages.
func (v diskView) usersOf() string {
	names := make([]string, len(v.users))
	for i, d := range v.users {
		names[i] = d.Slot
	}
	return strings.Join(names, ", ")
}

// viewSlotAndFile lists, in one proven reply, the disk in slot, every disk
// whose file is filePath, the pool's own partition entry and the /file entry
// at filePath, after running first (a removal, or ""). The partition entry is
// the anchor: it exists on every RDS, so a reply without it was emptied or
// cut; the counts show that nothing was left out between entries. Every
// decision to remove rests on such a reply.
func (c *Client) viewSlotAndFile(ctx context.Context, first, slot, filePath string) (diskView, error) {
	var v diskView
	name := fileName(filePath)
	ls, err := c.runProven(ctx, first, diskListing(whereView(slot, filePath, c.pool)), fileListing(whereFile(filePath)))
	if err != nil {
		return v, err
	}
	anchored := false
	for _, e := range ls[0] {
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
	if v.file, err = fileNamed(ls[1], name); err != nil {
		return v, err
	}
	return v, nil
}

// fileNamed reads a proven /file listing of one name: the entry, or nil when
// the count said there is none.
func fileNamed(entries []Entry, name string) (*File, error) {
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
	return found, nil
}

// fileByName returns the /file entry of filePath (a /disk path; /file names
// carry no leading slash), or nil when RDS
// shows it absent (a proven listing: /file print has no legend, so an empty
// listing alone would prove nothing), after running first.
func (c *Client) fileByName(ctx context.Context, first, filePath string) (*File, error) {
	ls, err := c.runProven(ctx, first, fileListing(whereFile(filePath)))
	if err != nil {
		return nil, err
	}
	return fileNamed(ls[0], fileName(filePath))
}

// File returns the /file entry of a disk's backing file (a /disk path with
// its leading slash), or nil when RDS shows it absent; a reply that shows
// neither is an error.
func (c *Client) File(ctx context.Context, filePath string) (*File, error) {
	if err := ValidatePathUnder(c.base, filePath); err != nil {
		return nil, err
	}
	return c.fileByName(ctx, "", filePath)
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

// removeUnusedFile removes the file at filePath if v, a proven view of the
// slot and the path (see viewSlotAndFile) taken just before, shows it there,
// a plain file, and used by no disk; the same script then shows it gone. A
// file already absent is fine.
func (c *Client) removeUnusedFile(ctx context.Context, slot, filePath string, v diskView) (removed bool, err error) {
	name := fileName(filePath)
	if v.file == nil {
		return false, nil
	}
	if v.file.IsDir() {
		return false, fmt.Errorf("%w: %q is a directory, not a disk's file", ErrInUse, name)
	}
	if v.slot != nil && v.slot.FilePath == filePath {
		return false, fmt.Errorf("%w: file %q belongs to disk %q", ErrInUse, name, slot)
	}
	if len(v.users) > 0 {
		return false, fmt.Errorf("%w: file %q is used by disk %s; not removing it", ErrInUse, name, v.usersOf())
	}
	f, err := c.fileByName(ctx, cmdFileRemove(filePath), filePath)
	if errors.Is(err, ErrNotFound) {
		// "no such item": gone already; look, since the listing did not print.
		f, err = c.fileByName(ctx, "", filePath)
	}
	if err != nil {
		return false, err
	}
	if f != nil {
		return false, fmt.Errorf("%w: file %q still present after remove", ErrFailed, name)
	}
	return true, nil
}

// clearLeftoverFile makes sure a new disk in slot starts from an empty file.
// RouterOS builds a disk on a file already at its path, contents and all; a
// file left at a volume's path by a half-finished create or delete must never
// hand its old data to a new volume. Only a file that no disk uses is removed,
// as v (a proven view of the free slot and the path) shows.
func (c *Client) clearLeftoverFile(ctx context.Context, slot, filePath string, v diskView) error {
	removed, err := c.removeUnusedFile(ctx, slot, filePath, v)
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
// Each removal follows a proven, anchored read that shows what it removes
// and that nothing else depends on it (see viewSlotAndFile): an empty, cut or
// garbled reply stops the delete with an error instead of being read as "not
// there". The disk's removal and the read that shows it gone travel in one
// script, and that read is the proof the file's removal rests on: it shows
// the slot, every disk on the path and the file. filePath must be named
// after the slot: /disk remove leaves the file behind, and the file is
// removed by its exact name, never by pattern.
func (c *Client) DeleteDisk(ctx context.Context, slot, filePath string) error {
	if err := ValidateSlot(slot); err != nil {
		return err
	}
	if err := c.checkVolumeFile(slot, filePath); err != nil {
		return err
	}
	v, err := c.viewSlotAndFile(ctx, "", slot, filePath)
	if err != nil {
		return err
	}
	if len(v.users) > 0 {
		return fmt.Errorf("%w: file %q is also used by disk %s; deleting nothing", ErrInUse, fileName(filePath), v.usersOf())
	}
	if v.slot != nil && v.slot.FilePath == filePath {
		// A remove that printed nothing is not proof of removal: the view
		// after it, in the same script, is.
		after, err := c.viewSlotAndFile(ctx, cmdDiskRemove(slot, filePath), slot, filePath)
		if errors.Is(err, ErrNotFound) {
			// "no such item": gone meanwhile; the listing did not print.
			after, err = c.viewSlotAndFile(ctx, "", slot, filePath)
		}
		if err != nil {
			return err
		}
		if after.slot != nil && after.slot.FilePath == filePath {
			return fmt.Errorf("%w: disk %q still present after remove", ErrFailed, slot)
		}
		v = after
	} else if v.slot != nil {
		klog.InfoS("Slot holds a disk with another file; leaving it alone", "slot", slot, "file", v.slot.FilePath, "expected", filePath)
	}
	if _, err := c.removeUnusedFile(ctx, slot, filePath, v); err != nil {
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
	entries, err := c.printDisks(ctx, wherePool(pool))
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
	ls, err := c.runProven(ctx, "", fileListing(whereFileLike(nameRegex)))
	if err != nil {
		return nil, err
	}
	files := make([]File, 0, len(ls[0]))
	for _, e := range ls[0] {
		f, err := fileFromEntry(e)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
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
