package rds

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors. Every error returned by this package wraps one of Kinds,
// so callers can map them to gRPC codes with errors.Is.
var (
	// ErrNotFound: the disk, file or pool does not exist.
	ErrNotFound = errors.New("rds: not found")
	// ErrCapacity: RDS refused for lack of space. Retrying will not help
	// until space is freed.
	ErrCapacity = errors.New("rds: not enough space")
	// ErrUnavailable: RDS could not be reached, the connection dropped, or the
	// deadline passed. The outcome of a mutating command is unknown; callers
	// may retry (CreateDisk re-checks state before adding again).
	ErrUnavailable = errors.New("rds: unavailable")
	// ErrRejected: RouterOS rejected the command text (syntax error, bad
	// command name, invalid value...). That is a bug in this package or a
	// firmware incompatibility, never a transient condition: never retried.
	ErrRejected = errors.New("rds: command rejected by RouterOS")
	// ErrExists: a disk with the slot already exists with different
	// parameters. See *ExistsError for details.
	ErrExists = errors.New("rds: already exists")
	// ErrInvalidArgument: an argument failed validation before anything was
	// sent to RDS.
	ErrInvalidArgument = errors.New("rds: invalid argument")
	// ErrInUse: the command would destroy or take over something another
	// disk still uses (a backing file another disk points at). Nothing was
	// changed; it needs an operator or a later retry, not a blind one.
	ErrInUse = errors.New("rds: in use by another disk")
	// ErrFailed: RouterOS reported a failure this package does not recognise,
	// or printed output it could not parse, or a post-condition check failed.
	ErrFailed = errors.New("rds: command failed")
	// ErrHostKeyMismatch: the SSH server presented a host key other than the
	// pinned one. Also wrapped as ErrUnavailable by the Manager.
	ErrHostKeyMismatch = errors.New("rds: SSH host key mismatch")
	// ErrIncompleteReply: RDS's answer cannot be shown to be whole: the
	// session ended without an exit status, a /disk listing lacks its
	// "Flags:" legend, or an anchored read lacks its anchor. It is always
	// wrapped together with ErrUnavailable (retry later), and it is never
	// read as "nothing matched": an empty or cut reply proves no absence.
	ErrIncompleteReply = errors.New("rds: incomplete reply")
	// ErrUnreachable: RDS did not accept a connection at all (refused, no
	// route, dial timeout), as opposed to accepting one and then failing
	// the handshake or not answering. Always wrapped together with
	// ErrUnavailable. The Manager probes cheaply for RDS's return only
	// after such a failure, so a hung RDS stays on the backoff.
	ErrUnreachable = errors.New("rds: unreachable")
)

// kinds are the sentinels that classify an error, in the order KindOf tries
// them. ErrUnavailable comes last: a transport error may carry a definite
// answer (ErrFailed for an oversized reply) besides the dropped session.
// ErrHostKeyMismatch, ErrIncompleteReply and ErrUnreachable are not kinds but
// qualifiers: they always come wrapped together with ErrUnavailable.
var kinds = [...]error{ErrNotFound, ErrCapacity, ErrRejected, ErrExists, ErrInUse, ErrInvalidArgument, ErrFailed, ErrUnavailable}

// Kinds returns the sentinels that classify this package's errors, in the
// order KindOf tries them, for callers that name or count errors by kind.
func Kinds() []error { return slices.Clone(kinds[:]) }

// KindOf returns the first of Kinds that err wraps, or nil.
func KindOf(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// CommandError describes a failed RouterOS command. Unwrap yields Kind (one
// of the sentinels) and, for transport failures, the underlying cause.
type CommandError struct {
	// Verb is the bounded verb label (add, set, remove, print, other).
	Verb string
	// Command is the command text. It carries slots, paths and NQNs, never
	// secrets, so it is safe to log.
	Command string
	// Output is the RouterOS line that reported the error, if any.
	Output string
	// Kind is the sentinel error this failure maps to.
	Kind error
	// Err is the underlying cause (transport error, context error), if any.
	Err error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Command != "" {
		b.WriteString(": ")
		b.WriteString(e.Command)
	}
	if e.Output != "" {
		b.WriteString(": ")
		b.WriteString(e.Output)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *CommandError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// ExistsError is returned when a disk with the requested slot already exists
// but does not match the request, so treating the request as a retry would
// hand the caller a volume it did not ask for.
type ExistsError struct {
	Slot          string
	ExistingSize  int64
	RequestedSize int64
	ExistingPath  string
	RequestedPath string
	Reason        string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("rds: disk %q exists with different %s (existing size=%d path=%q, requested size=%d path=%q)",
		e.Slot, e.Reason, e.ExistingSize, e.ExistingPath, e.RequestedSize, e.RequestedPath)
}

// Unwrap makes errors.Is(err, ErrExists) true.
func (e *ExistsError) Unwrap() error { return ErrExists }

// HostKeyError reports a pinned host key mismatch with both fingerprints so
// an operator can tell a re-keyed RDS from an impostor.
type HostKeyError struct {
	Host     string
	Expected []string
	Got      string
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("rds: SSH host key mismatch for %s: expected %s, got %s (refusing to connect)",
		e.Host, strings.Join(e.Expected, " or "), e.Got)
}

// Unwrap makes errors.Is(err, ErrHostKeyMismatch) true.
func (e *HostKeyError) Unwrap() error { return ErrHostKeyMismatch }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

// errorPattern maps the start of a RouterOS message line to an error kind.
type errorPattern struct {
	prefix string
	kind   error
}

// Ordered: the first match wins. "failure:" is handled separately because
// its text is free-form.
var errorPatterns = []errorPattern{
	{"no such item", ErrNotFound},
	{"not enough space", ErrCapacity},
	{"syntax error", ErrRejected},
	{"bad command name", ErrRejected},
	{"expected end of command", ErrRejected},
	{"expected ", ErrRejected},
	{"invalid value", ErrRejected},
	{"input does not match", ErrRejected},
	{"missing value", ErrRejected},
	{"ambiguous value", ErrRejected},
	{"unknown parameter", ErrRejected},
	{"value of ", ErrRejected},
	{"invalid internal item number", ErrNotFound},
}

// Classify inspects RouterOS output for an error message and returns the
// matching sentinel (nil if the output reports no error) and the line that
// carried it.
//
// Only lines that start in column 0 are considered: RouterOS prints errors
// there, while property values (which might contain arbitrary text) are
// always indented or follow a "key=". An entry index such as "12  " also
// starts in column 0 but begins with a digit, which no pattern does.
func Classify(output string) (kind error, line string) {
	lines := splitLines(output)
	nonBlank := 0
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			nonBlank++
		}
	}
	for _, l := range lines {
		cand := l
		if nonBlank == 1 {
			// A lone line is the whole answer; accept it even if indented.
			cand = strings.TrimLeft(l, " \t")
		}
		if cand == "" || cand[0] == ' ' || cand[0] == '\t' {
			continue
		}
		if k := classifyLine(cand); k != nil {
			return k, strings.TrimSpace(cand)
		}
	}
	return nil, ""
}

func classifyLine(l string) error {
	low := strings.ToLower(strings.TrimSpace(l))
	if rest, ok := strings.CutPrefix(low, "failure:"); ok {
		rest = strings.TrimSpace(rest)
		switch {
		case strings.Contains(rest, "not enough space"), strings.Contains(rest, "no space"),
			strings.Contains(rest, "disk full"):
			return ErrCapacity
		case strings.Contains(rest, "no such item"), strings.Contains(rest, "not found"),
			strings.Contains(rest, "does not exist"):
			return ErrNotFound
		case strings.Contains(rest, "already"), strings.Contains(rest, "exists"):
			return ErrExists
		default:
			return ErrFailed
		}
	}
	for _, p := range errorPatterns {
		if strings.HasPrefix(low, p.prefix) {
			return p.kind
		}
	}
	return nil
}
