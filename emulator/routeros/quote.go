package routeros

import "strings"

const hexDigits = "0123456789ABCDEF"

// Quote returns a double-quoted RouterOS literal that Parse reads back as
// exactly s.
//
// Everything outside printable ASCII is written as an upper-case `\HH` byte
// escape: RouterOS itself prints non-ASCII that way, and keeping the literal
// pure ASCII means no terminal or SSH layer can reinterpret it. `?` is written
// as `\3F` rather than `\?` because the named escape changed meaning across
// RouterOS versions, while a hex escape is read the same by all of them.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 || c >= 0x7f || c == '?' {
				b.WriteByte('\\')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
