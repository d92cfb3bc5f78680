package routeros

import (
	"sort"
	"strings"
)

const (
	// maxScript bounds the work one request can cause. Real driver scripts
	// are a few hundred bytes.
	maxScript = 1 << 20
	// maxDepth bounds nesting of (), [] and ! so hostile input cannot
	// exhaust the stack through recursive descent.
	maxDepth = 64
)

// lexer scans the script on demand. It has no mode of its own: the parser
// calls the method for the token class it expects, because RouterOS's token
// boundaries depend on context (see the package comment).
type lexer struct {
	src   string
	off   int
	lines []int // byte offset of each line start, for Pos
}

func newLexer(src string) *lexer {
	l := &lexer{src: src, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			l.lines = append(l.lines, i+1)
		}
	}
	return l
}

func (l *lexer) pos(off int) Pos {
	i := sort.Search(len(l.lines), func(i int) bool { return l.lines[i] > off }) - 1
	return Pos{Line: i + 1, Col: off - l.lines[i] + 1}
}

func (l *lexer) errAt(off int, msg string) *Error { return &Error{Msg: msg, Pos: l.pos(off)} }

// at returns the byte at off, or -1 past the end.
func (l *lexer) at(off int) int {
	if off < 0 || off >= len(l.src) {
		return -1
	}
	return int(l.src[off])
}

func (l *lexer) peek() int { return l.at(l.off) }

// continuation reports the length of a backslash-newline line continuation at
// off (0 if none). RouterOS export output wraps long commands this way, so
// accepting it lets exported scripts be replayed; it is only honoured between
// tokens, never inside one.
func (l *lexer) continuation(off int) int {
	if l.at(off) != '\\' {
		return 0
	}
	switch {
	case l.at(off+1) == '\n':
		return 2
	case l.at(off+1) == '\r' && l.at(off+2) == '\n':
		return 3
	}
	return 0
}

// skipSpace skips blanks within one command. Newlines are not blanks: they end
// commands.
func (l *lexer) skipSpace() {
	for {
		switch c := l.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			l.off++
		case c == '\\' && l.continuation(l.off) > 0:
			l.off += l.continuation(l.off)
		default:
			return
		}
	}
}

// atEOC reports whether the next byte ends the command.
func (l *lexer) atEOC() bool {
	c := l.peek()
	return c < 0 || c == '\n' || c == ';'
}

func isNameChar(c int) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

func isCtl(c int) bool { return c >= 0 && c < 0x20 && c != '\t' || c == 0x7f }

// isForbidden reports bytes that may not appear unquoted. `$` would be variable
// expansion and `\` an escape on real RouterOS; we support neither, and
// silently treating them as literals would let quoting bugs in the driver pass
// the emulator and then fail (or worse, expand) on hardware.
func isForbidden(c int) bool { return c == '$' || c == '\\' || isCtl(c) }

// endsUnquoted reports bytes that terminate an unquoted value.
func endsUnquoted(c int) bool {
	switch c {
	case -1, ' ', '\t', '\r', '\n', ';', '[', ']', '(', ')', '"', '{', '}':
		return true
	}
	return false
}

// name scans a property or argument name.
func (l *lexer) name() string {
	start := l.off
	for isNameChar(l.peek()) {
		l.off++
	}
	return l.src[start:l.off]
}

// pathWord scans a menu or verb word. It is looser than name so that
// `/fr@b` is reported whole as a bad command name, as RouterOS does.
func (l *lexer) pathWord() string {
	start := l.off
	for {
		c := l.peek()
		if endsUnquoted(c) || isForbidden(c) || c == '/' || c == '=' {
			break
		}
		l.off++
	}
	return l.src[start:l.off]
}

// isOpAt reports whether a comparison operator starts at off; it is what
// distinguishes the keywords where/and/or/not from properties of that name.
func (l *lexer) isOpAt(off int) bool {
	c := l.at(off)
	return c == '=' || c == '~' || c == '!' && l.at(off+1) == '='
}

// keywordAt reports whether the keyword kw is next (and not a property name).
func (l *lexer) keywordAt(kw string) bool {
	end := l.off + len(kw)
	return strings.HasPrefix(l.src[l.off:], kw) && !isNameChar(l.at(end)) && !l.isOpAt(end)
}

// unquoted scans an unquoted value up to its terminator.
func (l *lexer) unquoted() (string, *Error) {
	start := l.off
	for {
		c := l.peek()
		if endsUnquoted(c) {
			return l.src[start:l.off], nil
		}
		if isForbidden(c) {
			return "", l.errAt(l.off, msgSyntax)
		}
		l.off++
	}
}

func isUpperHex(c int) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c int) byte {
	if c <= '9' {
		return byte(c - '0')
	}
	return byte(c - 'A' + 10)
}

// quoted scans a double-quoted string at l.off and returns its unescaped
// text. Errors point at the opening quote when the string is unterminated and
// at the backslash or `$` when an escape or character is bad.
func (l *lexer) quoted() (string, *Error) {
	open := l.off
	l.off++
	var b strings.Builder
	for {
		c := l.peek()
		switch {
		case c < 0 || c == '\n' || c == '\r':
			// A raw line break never belongs to a string: RouterOS would treat
			// it as the end of the command, leaving the quote open.
			return "", l.errAt(open, msgSyntax)
		case c == '"':
			l.off++
			return b.String(), nil
		case c == '$':
			return "", l.errAt(l.off, msgSyntax)
		case c == '\\':
			e := l.at(l.off + 1)
			switch e {
			case '"', '\\', '$', '?':
				b.WriteByte(byte(e))
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '_':
				b.WriteByte(' ')
			default:
				// Hex escapes are upper case only: RouterOS reads `\a`, `\b`,
				// `\f` as named escapes, so `\ab` is not 0xAB there. Accepting
				// lower case would hide that ambiguity from the driver.
				if e < 0 {
					return "", l.errAt(open, msgSyntax)
				}
				if !isUpperHex(e) || !isUpperHex(l.at(l.off+2)) {
					return "", l.errAt(l.off, msgSyntax)
				}
				b.WriteByte(unhex(e)<<4 | unhex(l.at(l.off+2)))
				l.off++
			}
			l.off += 2
		default:
			b.WriteByte(byte(c))
			l.off++
		}
	}
}

// valueEnd checks that a value is followed by something that can follow a
// token. `"a"b` or `a(b` would be glued tokens that RouterOS rejects.
func (l *lexer) valueEnd() *Error {
	switch c := l.peek(); c {
	case -1, ' ', '\t', '\r', '\n', ';', ']', ')':
		return nil
	default:
		if l.continuation(l.off) > 0 {
			return nil
		}
		return l.errAt(l.off, msgSyntax)
	}
}
