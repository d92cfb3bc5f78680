package rds

import (
	"context"
	"errors"
	"fmt"

	"github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
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
	t       Transport
	base    string
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
		parse:   ParseOptions{Width: opts.WrapWidth},
		clk:     opts.Clock,
		metrics: newClientMetrics(opts.Registerer),
	}, nil
}

// BasePath returns the directory volume files live under.
func (c *Client) BasePath() string { return c.base }

// FilePathFor returns the conventional backing file of a slot.
func (c *Client) FilePathFor(slot string) string { return c.base + "/" + slot + ".img" }

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
	for _, k := range []error{ErrNotFound, ErrCapacity, ErrRejected, ErrExists, ErrInvalidArgument, ErrFailed, ErrUnavailable} {
		if errors.Is(err, k) {
			return &CommandError{Verb: verb, Command: cmd, Kind: k, Err: err}
		}
	}
	return &CommandError{Verb: verb, Command: cmd, Kind: ErrUnavailable, Err: err}
}

func (c *Client) printDetail(ctx context.Context, cmd string) ([]Entry, error) {
	out, err := c.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	entries, err := ParseDetail(out, c.parse)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return entries, nil
}

// GetDisk returns the disk in slot, or ErrNotFound.
func (c *Client) GetDisk(ctx context.Context, slot string) (*Disk, error) {
	if err := ValidateSlot(slot); err != nil {
		return nil, err
	}
	entries, err := c.printDetail(ctx, cmdDiskGet(slot))
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
			// The where clause should have filtered it; never hand back
			// another volume's disk.
			klog.ErrorS(nil, "RDS returned a disk that does not match the query", "want", slot, "got", d.Slot)
			continue
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
	entries, err := c.printDetail(ctx, cmdDiskList(slotRegex))
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

// DeleteDisk removes the disk in slot and its backing file, then verifies
// both are gone. filePath is the caller's idea of the backing file; it is
// used when the disk is already gone (a retry after a partial delete) and
// must agree with the disk's own path otherwise. Deleting a missing disk and
// file succeeds.
//
// The file is removed by exact name, never by pattern, only if it is under
// the base path and no other disk uses it: /disk remove leaves the file
// behind, and a sloppy file delete can destroy live volumes.
func (c *Client) DeleteDisk(ctx context.Context, slot, filePath string) error {
	if err := ValidateSlot(slot); err != nil {
		return err
	}
	if filePath != "" {
		if err := ValidatePathUnder(c.base, filePath); err != nil {
			return err
		}
	}
	d, err := c.GetDisk(ctx, slot)
	switch {
	case err == nil:
		if d.FilePath != "" {
			if err := ValidatePathUnder(c.base, d.FilePath); err != nil {
				return fmt.Errorf("refusing to delete disk %q: its file: %w", slot, err)
			}
			if filePath != "" && filePath != d.FilePath {
				return fmt.Errorf("%w: disk %q uses file %q, caller expected %q; refusing to delete", ErrInvalidArgument, slot, d.FilePath, filePath)
			}
			filePath = d.FilePath
		}
		if _, err := c.exec(ctx, cmdDiskRemove(slot)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	case errors.Is(err, ErrNotFound):
	default:
		return err
	}
	if filePath != "" {
		users, err := c.printDetail(ctx, cmdDiskByPath(filePath))
		if err != nil {
			return err
		}
		if len(users) > 0 {
			u, _ := users[0].Get("slot")
			return fmt.Errorf("%w: file %q is still used by disk %q; not removing it", ErrFailed, filePath, u)
		}
		if _, err := c.exec(ctx, cmdFileRemove(filePath)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	// Verify: a remove that printed nothing is not proof of removal.
	if _, err := c.GetDisk(ctx, slot); err == nil {
		return fmt.Errorf("%w: disk %q still present after remove", ErrFailed, slot)
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if filePath != "" {
		files, err := c.printDetail(ctx, cmdFileGet(filePath))
		if err != nil {
			return err
		}
		if len(files) > 0 {
			return fmt.Errorf("%w: file %q still present after remove", ErrFailed, fileName(filePath))
		}
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
	entries, err := c.printDetail(ctx, cmdPool(pool))
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
	entries, err := c.printDetail(ctx, cmdFileList(nameRegex))
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
