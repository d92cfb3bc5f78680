package console

import (
	"fmt"
	"strconv"
	"strings"
)

// The printer as it was before it learnt to reuse its buffers, kept as the
// reference the streaming printer must match byte for byte.

// renderDetail prints entries in `print detail` form at the given width, after
// the menu's legend line if it has one.
func refRenderDetail(b *strings.Builder, legend string, entries []entry, width int) {
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
		refWrapTokens(b, head, indent, tokens, w)
	}
}

// wrapTokens lays tokens out greedily. A token that does not fit on the current
// line starts a new one if it fits there; a token too long for any line is cut at
// the width wherever it falls, even inside a value, which is the quirk real
// RouterOS output has and the driver's parser must handle. Lines that end between
// tokens stay shorter than the width, so a line filled exactly to the width always
// means "cut inside a token": that keeps the emulator's output unambiguous to
// unwrap. (Real output is not always so kind: the parser must not rely on it.)
func refWrapTokens(b *strings.Builder, head, indent string, tokens []string, width int) {
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
