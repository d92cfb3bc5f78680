package console

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/emulator/routeros"
)

// flagsLegend is the first line of every /disk print, matching or not. /file
// print has none (see the real sample and RouterOS's own documentation).
const flagsLegend = "Flags: X - disabled; B - blocked"

// DefaultWidth is the terminal width RouterOS assumes when none was negotiated.
const DefaultWidth = 80

// prop is one name=value pair as printed.
type prop struct{ name, value string }

func (p prop) String() string { return p.name + "=" + p.value }

// quoted renders a string-typed property the way RouterOS does: always in double
// quotes, escaped so the output parses back to the stored value.
func quoted(s string) string { return routeros.Quote(s) }

// bare renders a value RouterOS prints unquoted (paths, numbers, enums) unless it
// contains something that would make it ambiguous, in which case it is quoted.
func bare(s string) string {
	if !isBare(s) {
		return quoted(s)
	}
	return s
}

// isBare reports whether s prints unquoted: not empty, and made only of
// characters that cannot be mistaken for a separator or a quote.
func isBare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("./:_-+@%,*", c) >= 0) {
			return false
		}
	}
	return true
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// spacedInt prints a byte count with spaces between thousands: 53 687 091 200.
func spacedInt(n int64) string { return string(appendSpacedInt(nil, n)) }

func appendSpacedInt(dst []byte, n int64) []byte {
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], n, 10)
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			dst = append(dst, ' ')
		}
		dst = append(dst, c)
	}
	return dst
}

// humanSize prints sizes the lossy way RouterOS does in file-size= and /file
// size=: one decimal and a binary unit (50.0GiB, 1.5TiB). Below 1 KiB it prints
// the plain number.
func humanSize(n int64) string { return string(appendHumanSize(nil, n)) }

var sizeUnits = [...]string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

func appendHumanSize(dst []byte, n int64) []byte {
	if n < 1024 {
		return strconv.AppendInt(dst, n, 10)
	}
	v := float64(n)
	u := -1
	for v >= 1024 && u < len(sizeUnits)-1 {
		v /= 1024
		u++
	}
	dst = strconv.AppendFloat(dst, v, 'f', 1, 64)
	return append(dst, sizeUnits[u]...)
}

// entry is one item of a print detail listing.
type entry struct {
	flags   string // flag letters, e.g. "X"; "" for none
	comment string
	props   []prop
}

// renderDetail prints entries in `print detail` form at the given width, after
// the menu's legend line if it has one.
func renderDetail(b *strings.Builder, legend string, entries []entry, width int) {
	w := newDetailWriter(b, legend, len(entries), width)
	for _, e := range entries {
		w.begin(e.flags, e.comment)
		for _, p := range e.props {
			w.raw(p.name, p.value)
		}
		w.end()
	}
}

// detailWriter lays entries out in `print detail` form straight into the
// output, reusing one line and one token buffer from entry to entry: a full
// print of 10,000 disks formats a quarter of a million values, and a string
// per value and per partial line was most of what such a print cost.
//
// Use: begin, then one call per property (raw, quoted, bare, spaced, human,
// int), then end; entries are numbered in the order they are begun.
type detailWriter struct {
	b        *strings.Builder
	width    int
	idxWidth int
	next     int // index of the next entry
	// Per entry: the effective width, the indentation and whether the
	// current line holds a token yet.
	w      int
	indent int
	hasTok bool
	line   []byte // the line being filled, its head or indentation included
	tok    []byte // the property being formatted
	// sized is set once the output was grown for the whole listing.
	sized      bool
	count      int
	entryStart int // output length where the current entry began
}

// newDetailWriter starts a listing of count entries (the count sets the width
// of the index column) and writes the legend, if any.
func newDetailWriter(b *strings.Builder, legend string, count, width int) *detailWriter {
	if legend != "" {
		b.WriteString(legend)
		b.WriteByte('\n')
	}
	if width <= 0 {
		width = DefaultWidth
	}
	idxWidth := len(strconv.Itoa(count - 1))
	if idxWidth < 2 {
		idxWidth = 2
	}
	return &detailWriter{b: b, width: width, idxWidth: idxWidth, count: count,
		line: make([]byte, 0, 2*width), tok: make([]byte, 0, 128)}
}

// begin starts the next entry: index, flag letters, and the comment line.
func (w *detailWriter) begin(flags, comment string) {
	if w.next > 0 {
		w.b.WriteByte('\n')
	}
	w.entryStart = w.b.Len()
	if flags == "" {
		flags = " "
	}
	// head is "%*d %s ": the index right-aligned, the flags, a space.
	w.line = w.line[:0]
	n := strconv.AppendInt(w.tok[:0], int64(w.next), 10)
	for pad := w.idxWidth - len(n); pad > 0; pad-- {
		w.line = append(w.line, ' ')
	}
	w.line = append(w.line, n...)
	w.line = append(w.line, ' ')
	w.line = append(w.line, flags...)
	w.line = append(w.line, ' ')
	w.indent = len(w.line)
	w.w = max(w.width, w.indent+minText) // room for text after the indentation, always
	w.hasTok = false
	w.next++
	if comment != "" {
		// RouterOS prints the comment on its own line after the index.
		w.b.Write(w.line)
		w.b.WriteString(";;; ")
		w.b.WriteString(commentText(comment))
		w.b.WriteByte('\n')
		w.resetLine()
	}
}

// resetLine starts a continuation line: the indentation only.
func (w *detailWriter) resetLine() {
	w.line = w.line[:0]
	for i := 0; i < w.indent; i++ {
		w.line = append(w.line, ' ')
	}
	w.hasTok = false
}

// end finishes the entry. After the second one, the output is grown once for
// the whole listing (estimated from that entry), so a 10,000-entry print
// does not copy its growing output a dozen times over.
func (w *detailWriter) end() {
	if w.hasTok || len(w.line) != w.indent || !isSpaces(w.line) {
		w.b.Write(w.line)
		w.b.WriteByte('\n')
	}
	if !w.sized && w.next == 2 {
		// Sized from the second entry: the first may be the pool's short
		// partition entry.
		w.sized = true
		if rest := w.count - w.next; rest > 0 {
			n := w.b.Len() - w.entryStart + 1
			w.b.Grow(rest*n + rest*n/32)
		}
	}
}

func isSpaces(b []byte) bool {
	for _, c := range b {
		if c != ' ' {
			return false
		}
	}
	return true
}

func (w *detailWriter) start(name string) {
	w.tok = append(append(w.tok[:0], name...), '=')
}

// raw is a property whose value is already formatted.
func (w *detailWriter) raw(name, value string) {
	w.start(name)
	w.tok = append(w.tok, value...)
	w.layout()
}

// quoted is a string property, always quoted (see quoted).
func (w *detailWriter) quoted(name, value string) {
	w.start(name)
	w.tok = routeros.AppendQuote(w.tok, value)
	w.layout()
}

// bare is a property printed unquoted unless ambiguous (see bare).
func (w *detailWriter) bare(name, value string) {
	w.start(name)
	if isBare(value) {
		w.tok = append(w.tok, value...)
	} else {
		w.tok = routeros.AppendQuote(w.tok, value)
	}
	w.layout()
}

// int is a plain number.
func (w *detailWriter) int(name string, n int64) {
	w.start(name)
	w.tok = strconv.AppendInt(w.tok, n, 10)
	w.layout()
}

// spaced is a byte count with spaces between thousands (see spacedInt).
func (w *detailWriter) spaced(name string, n int64) {
	w.start(name)
	w.tok = appendSpacedInt(w.tok, n)
	w.layout()
}

// human is a lossy size (see humanSize).
func (w *detailWriter) human(name string, n int64) {
	w.start(name)
	w.tok = appendHumanSize(w.tok, n)
	w.layout()
}

// layout places the token in w.tok, with the rule wrapTokens documents.
func (w *detailWriter) layout() {
	width := w.w
	avail := width - w.indent
	if avail < 1 {
		avail = 1
	}
	tok := w.tok
	sep := 0
	if w.hasTok {
		sep = 1
	}
	switch {
	case len(w.line)+sep+len(tok) < width:
		if sep == 1 {
			w.line = append(w.line, ' ')
		}
		w.line = append(w.line, tok...)
	case len(tok) < avail:
		w.flushLine()
		w.line = append(w.line, tok...)
	default:
		// Too long for any line: cut at the width wherever it falls. The
		// separator is part of the text cut, and a space a cut lands on (the
		// separator or one inside the value) is dropped, as RouterOS does.
		space := sep == 1
		for space || len(tok) > 0 {
			room := width - len(w.line)
			if room <= 0 {
				w.flushLine()
				room = width - len(w.line)
				if space {
					space = false
				} else if len(tok) > 0 && tok[0] == ' ' {
					tok = tok[1:]
				}
				if room <= 0 {
					break
				}
				continue
			}
			if space {
				w.line = append(w.line, ' ')
				space = false
				continue
			}
			if room > len(tok) {
				room = len(tok)
			}
			w.line = append(w.line, tok[:room]...)
			tok = tok[room:]
		}
	}
	w.hasTok = true
}

func (w *detailWriter) flushLine() {
	w.b.Write(w.line)
	w.b.WriteByte('\n')
	w.resetLine()
}

// minText is the least room a printed line keeps for text after its
// indentation, whatever width was asked for.
const minText = 20

// commentText keeps a comment on its one line: a comment is free text set by
// whoever made the disk, and a newline in it must not start what reads as
// another entry or property. Control bytes print as RouterOS string escapes.
func commentText(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case ch == '\n':
			b.WriteString(`\n`)
		case ch == '\r':
			b.WriteString(`\r`)
		case ch == '\t':
			b.WriteString(`\t`)
		case ch < 0x20 || ch == 0x7f:
			fmt.Fprintf(&b, "\\%02X", ch)
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

// wrapTokens lays tokens out greedily. A token that does not fit on the current
// line starts a new one if it fits there; a token too long for any line is cut at
// the width wherever it falls, even inside a value, which is the quirk real
// RouterOS output has and the driver's parser must handle. Lines that end between
// tokens stay shorter than the width, so a line filled exactly to the width always
// means "cut inside a token": that keeps the emulator's output unambiguous to
// unwrap. (Real output is not always so kind: the parser must not rely on it.)
//
// head and indent must have the same length (detailWriter builds both from the
// index column).
func wrapTokens(b *strings.Builder, head, indent string, tokens []string, width int) {
	w := &detailWriter{b: b, width: width, w: width, indent: len(indent), line: []byte(head)}
	for _, tok := range tokens {
		w.tok = append(w.tok[:0], tok...)
		w.layout()
	}
	if w.hasTok || string(w.line) != indent {
		b.Write(w.line)
		b.WriteByte('\n')
	}
}

// renderKeyValues prints the `key: value` form of /system menus, keys right-aligned
// as RouterOS does.
func renderKeyValues(b *strings.Builder, kv []prop) {
	w := 0
	for _, p := range kv {
		if len(p.name) > w {
			w = len(p.name)
		}
	}
	for _, p := range kv {
		fmt.Fprintf(b, "%*s: %s\n", w+2, p.name, p.value)
	}
}

// renderTable prints the non-detail form: a legend, a column header and one row
// per entry. Nothing in the driver reads it; it exists so a person at the prompt
// gets what they expect.
func renderTable(b *strings.Builder, legend string, entries []entry, cols []string) {
	if legend != "" {
		b.WriteString(legend + "\n")
	}
	upper := make([]string, len(cols))
	for i, c := range cols {
		upper[i] = strings.ToUpper(c)
	}
	b.WriteString("Columns: " + strings.Join(upper, ", ") + "\n")
	rows := [][]string{append([]string{"#"}, upper...)}
	for i, e := range entries {
		m := map[string]string{}
		for _, p := range e.props {
			m[p.name] = p.value
		}
		row := []string{strconv.Itoa(i)}
		for _, c := range cols {
			row = append(row, strings.Trim(m[c], `"`))
		}
		rows = append(rows, row)
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if len(c) > widths[i] {
				widths[i] = len(c)
			}
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-len(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}
