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
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("./:_-+@%,*", r)) {
			return quoted(s)
		}
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// spacedInt prints a byte count with spaces between thousands: 53 687 091 200.
func spacedInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanSize prints sizes the lossy way RouterOS does in file-size= and /file
// size=: one decimal and a binary unit (50.0GiB, 1.5TiB). Below 1 KiB it prints
// the plain number.
func humanSize(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 {
		return strconv.FormatInt(n, 10)
	}
	v := float64(n)
	u := -1
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	return fmt.Sprintf("%.1f%s", v, units[u])
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
	if legend != "" {
		b.WriteString(legend + "\n")
	}
	if width <= 0 {
		width = DefaultWidth
	}
	idxWidth := len(strconv.Itoa(len(entries) - 1))
	if idxWidth < 2 {
		idxWidth = 2
	}
	for i, e := range entries {
		if i > 0 {
			b.WriteByte('\n')
		}
		flag := e.flags
		if flag == "" {
			flag = " "
		}
		head := fmt.Sprintf("%*d %s ", idxWidth, i, flag)
		indent := strings.Repeat(" ", len(head))
		w := max(width, len(head)+minText) // room for text after the indentation, always
		tokens := make([]string, 0, len(e.props)+1)
		if e.comment != "" {
			// RouterOS prints the comment on its own line after the index.
			b.WriteString(head + ";;; " + commentText(e.comment) + "\n")
			head = indent
		}
		for _, p := range e.props {
			tokens = append(tokens, p.String())
		}
		wrapTokens(b, head, indent, tokens, w)
	}
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
func wrapTokens(b *strings.Builder, head, indent string, tokens []string, width int) {
	line := head
	lineHasToken := false
	avail := width - len(indent)
	if avail < 1 {
		avail = 1
	}
	flush := func() {
		b.WriteString(line)
		b.WriteByte('\n')
		line, lineHasToken = indent, false
	}
	for _, tok := range tokens {
		sep := ""
		if lineHasToken {
			sep = " "
		}
		switch {
		case len(line)+len(sep)+len(tok) < width:
			line += sep + tok
		case len(tok) < avail:
			flush()
			line += tok
		default:
			text := sep + tok
			for text != "" {
				room := width - len(line)
				if room <= 0 {
					flush()
					room = width - len(line)
					text = strings.TrimPrefix(text, " ")
				}
				if room > len(text) {
					room = len(text)
				}
				line += text[:room]
				text = text[room:]
			}
		}
		lineHasToken = true
	}
	if lineHasToken || line != indent {
		b.WriteString(line)
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
