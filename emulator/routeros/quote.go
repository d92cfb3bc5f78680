package routeros

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
	return string(AppendQuote(make([]byte, 0, len(s)+2), s))
}

// AppendQuote appends Quote(s) to dst: the emulator's printer formats a
// 10,000-disk listing into one buffer without a string per value.
func AppendQuote(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"', '$':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			if c < 0x20 || c >= 0x7f || c == '?' {
				dst = append(dst, '\\', hexDigits[c>>4], hexDigits[c&0xf])
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}
