package rds

import (
	"fmt"
	"math"
	"path"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// AllocationUnit is the granularity of disk sizes: requests are rounded up
// to it so that a retried request with the same size compares equal to what
// RDS holds.
const AllocationUnit int64 = 1 << 20

// Limits on arguments. They are far above real use and keep a hostile or
// buggy caller from building megabyte commands.
const (
	maxPathLen  = 512
	maxNQNLen   = 223 // NVMe base specification, NQN field size
	maxRegexLen = 256
	// MaxDiskSize bounds size requests (1 EiB) so rounding cannot overflow.
	MaxDiskSize int64 = 1 << 60
)

var (
	slotRE        = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	pathSegmentRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	// nqn.yyyy-mm.reverse.domain:anything-safe
	nqnRE = regexp.MustCompile(`^nqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*:[A-Za-z0-9._:-]+$`)
)

// ValidateSlot checks a disk slot name. Slots become part of commands, file
// names and NQNs, so only a conservative alphabet is allowed.
func ValidateSlot(s string) error {
	if !slotRE.MatchString(s) {
		return invalidf("slot %q must match %s", truncate(s, 64), slotRE)
	}
	return nil
}

// ValidateNQN checks an NVMe qualified name's shape.
func ValidateNQN(s string) error {
	if len(s) > maxNQNLen || !nqnRE.MatchString(s) {
		return invalidf("NQN %q is not of the form nqn.yyyy-mm.reverse.domain:name (max %d bytes, [A-Za-z0-9._:-])", truncate(s, 64), maxNQNLen)
	}
	return nil
}

// ValidatePort checks a TCP port.
func ValidatePort(p int) error {
	if p < 1 || p > 65535 {
		return invalidf("port %d out of range", p)
	}
	return nil
}

// validateAbsPath checks that p is an absolute, clean path made of safe
// segments.
func validateAbsPath(p string) error {
	if len(p) == 0 || len(p) > maxPathLen || p[0] != '/' || path.Clean(p) != p || p == "/" {
		return invalidf("path %q must be absolute and clean (max %d bytes)", truncate(p, 64), maxPathLen)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." || !pathSegmentRE.MatchString(seg) {
			return invalidf("path %q has a bad segment %q", truncate(p, 64), truncate(seg, 64))
		}
	}
	return nil
}

// ValidatePathUnder checks that p is a safe absolute path strictly below
// base. Deletes derive file names from such paths, so a path outside base
// must never reach a command.
func ValidatePathUnder(base, p string) error {
	if err := validateAbsPath(p); err != nil {
		return err
	}
	if !strings.HasPrefix(p, base+"/") {
		return invalidf("path %q is not under %q", truncate(p, 64), base)
	}
	return nil
}

// ValidateRegex checks a pattern for a RouterOS "~" match: printable ASCII,
// bounded length, and syntactically a regular expression (checked with Go's
// POSIX parser, close to RouterOS's).
func ValidateRegex(re string) error {
	if len(re) > maxRegexLen {
		return invalidf("regex longer than %d bytes", maxRegexLen)
	}
	for i := 0; i < len(re); i++ {
		if re[i] < 0x20 || re[i] > 0x7e {
			return invalidf("regex contains non-printable or non-ASCII byte 0x%02x", re[i])
		}
	}
	if _, err := syntax.Parse(re, syntax.POSIX); err != nil {
		return invalidf("regex %q: %v", truncate(re, 64), err)
	}
	return nil
}

// RoundUpSize rounds a byte count up to AllocationUnit.
func RoundUpSize(n int64) (int64, error) {
	if n <= 0 || n > MaxDiskSize {
		return 0, invalidf("size %d out of range (1..%d)", n, MaxDiskSize)
	}
	if r := n % AllocationUnit; r != 0 {
		if n > math.MaxInt64-AllocationUnit {
			return 0, invalidf("size %d overflows", n)
		}
		n += AllocationUnit - r
	}
	return n, nil
}

// Quote renders s as a RouterOS double-quoted string literal that no input
// can escape from: backslash, double quote and '$' (variable substitution)
// are backslash-escaped, and '?' (interactive help) and every control or
// non-ASCII byte are written as upper-case \XX hex escapes, so the literal is
// always one line of printable ASCII that ends at its closing quote. '?' uses
// hex because the meaning of the named escape "\?" varied across RouterOS
// versions; upper case because "\a", "\b", "\f" are named escapes.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"' || c == '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f || c == '?':
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// fileName turns a /disk file-path into a /file name: /file names carry no
// leading slash (mixing the two up once deleted live volumes elsewhere).
func fileName(p string) string { return strings.TrimPrefix(p, "/") }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Command builders. Arguments are validated by the callers; quoting here is
// the second line of defence.

func cmdDiskAdd(slot, filePath string, size int64, export bool, port int, nqn, allow string) string {
	var b strings.Builder
	b.WriteString("/disk add type=file file-path=")
	b.WriteString(Quote(filePath))
	b.WriteString(" file-size=")
	b.WriteString(itoa(size))
	b.WriteString(" slot=")
	b.WriteString(Quote(slot))
	writeExport(&b, export, port, nqn, allow)
	return b.String()
}

func cmdDiskCopy(src, slot, filePath string, export bool, port int, nqn, allow string) string {
	var b strings.Builder
	b.WriteString("/disk add type=file copy-from=[find slot=")
	b.WriteString(Quote(src))
	b.WriteString("] file-path=")
	b.WriteString(Quote(filePath))
	b.WriteString(" slot=")
	b.WriteString(Quote(slot))
	writeExport(&b, export, port, nqn, allow)
	return b.String()
}

// writeExport writes the export's arguments; allow, when not "", is an
// allow-host value encodeAllowedHosts made (its alphabet needs no quoting,
// and it is quoted anyway).
func writeExport(b *strings.Builder, export bool, port int, nqn, allow string) {
	if !export {
		b.WriteString(" nvme-tcp-export=no")
		return
	}
	b.WriteString(" nvme-tcp-export=yes nvme-tcp-server-port=")
	b.WriteString(strconv.Itoa(port))
	b.WriteString(" nvme-tcp-server-nqn=")
	b.WriteString(Quote(nqn))
	if allow != "" {
		b.WriteString(" " + AllowHostProperty + "=")
		b.WriteString(Quote(allow))
	}
}

// Where clauses of the listings the client reads (see listing and
// provenScript, which turn them into a listing followed by its count).

func whereSlot(slot string) string     { return "slot=" + Quote(slot) }
func whereSlotLike(re string) string   { return "slot~" + Quote(re) }
func wherePool(pool string) string     { return "mount-point=" + Quote(pool) }
func whereFileLike(re string) string   { return "name~" + Quote(re) }
func whereFile(filePath string) string { return "name=" + Quote(fileName(filePath)) }

// whereView selects the disk in slot, the disks using filePath and the
// pool's partition entry (the anchor that shows the reply is whole).
func whereView(slot, filePath, pool string) string {
	return "slot=" + Quote(slot) + " or file-path=" + Quote(filePath) + " or mount-point=" + Quote(pool)
}

func cmdDiskResize(slot string, size int64) string {
	return "/disk set [find slot=" + Quote(slot) + "] file-size=" + itoa(size)
}

// cmdDiskRemove removes the disk in slot only if its file is still filePath,
// so the remove itself cannot hit a disk that changed since it was read.
func cmdDiskRemove(slot, filePath string) string {
	return "/disk remove [find slot=" + Quote(slot) + " and file-path=" + Quote(filePath) + "]"
}

func cmdFileRemove(filePath string) string {
	return "/file remove [find name=" + Quote(fileName(filePath)) + "]"
}

const (
	cmdIdentity = "/system identity print"
	cmdResource = "/system resource print"
)

// Verb labels; the set is fixed so metrics stay bounded.
const (
	VerbAdd    = "add"
	VerbSet    = "set"
	VerbRemove = "remove"
	VerbPrint  = "print"
	VerbOther  = "other"
)

// verbOf returns the bounded verb label of a command: the first known verb
// among the words before any argument.
func verbOf(cmd string) string {
	for _, f := range strings.Fields(cmd) {
		if strings.ContainsAny(f, "=[\"") {
			break
		}
		switch f {
		case VerbAdd, VerbSet, VerbRemove, VerbPrint:
			return f
		}
	}
	return VerbOther
}
