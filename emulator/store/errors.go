package store

import "errors"

// The sentinel errors classify failures for callers that branch on them with
// errors.Is. The errors the Store returns print exactly what RouterOS prints for
// the same mistake, because the emulator's interpreter shows Error() to the
// driver verbatim and the driver detects failures from that text.
var (
	// ErrNotEnoughSpace: the pool cannot hold the requested bytes.
	ErrNotEnoughSpace = errors.New("failure: not enough space")
	// ErrNoSuchItem: no disk or file matches.
	ErrNoSuchItem = errors.New("failure: no such item")
	// ErrExists: a slot, or the target file of a copy, is already taken.
	ErrExists = errors.New("failure: already exists")
	// ErrInUse: a file is used by a disk, or a directory still has entries.
	ErrInUse = errors.New("failure: file is in use")
	// ErrCannotShrink: a disk's file-size may only grow. RouterOS documents no
	// text for this case; "failure: can not shrink" follows its style.
	ErrCannotShrink = errors.New("failure: can not shrink")
	// ErrInvalid: an argument is malformed or a property may not change.
	ErrInvalid = errors.New("invalid value")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrHost: the change was recorded in the journal, but bringing the host
	// filesystem in line with it failed. The change stands and Open retries the
	// filesystem side; the error exists so the failure is not silent.
	ErrHost = errors.New("store: host filesystem")
)

// rosError carries a RouterOS message while classifying it under a sentinel,
// so the printed text can be more specific than the sentinel's own.
type rosError struct {
	msg  string
	kind error
}

func (e *rosError) Error() string { return e.msg }
func (e *rosError) Unwrap() error { return e.kind }

func rosErr(kind error, msg string) error { return &rosError{msg: msg, kind: kind} }

var (
	errSlotExists    = rosErr(ErrExists, "failure: item with such slot already exists")
	errFileExists    = rosErr(ErrExists, "failure: file already exists")
	errFileTaken     = rosErr(ErrInUse, "failure: file already in use")
	errFileInUse     = ErrInUse // "failure: file is in use"
	errDirNotEmpty   = rosErr(ErrInUse, "failure: directory is not empty")
	errBadSlot       = rosErr(ErrInvalid, "invalid value for argument slot")
	errBadFilePath   = rosErr(ErrInvalid, "invalid value for argument file-path")
	errBadFileSize   = rosErr(ErrInvalid, "invalid value for argument file-size")
	errBadPort       = rosErr(ErrInvalid, "invalid value for argument nvme-tcp-server-port")
	errNotDir        = rosErr(ErrInvalid, "failure: file-path goes through a file, not a directory")
	errIsDir         = rosErr(ErrInvalid, "failure: file-path is a directory")
	errFixedFilePath = rosErr(ErrInvalid, "failure: file-path can not be changed")
	errFixedID       = rosErr(ErrInvalid, "failure: id can not be changed")
)
