package rds

import (
	"regexp"
	"strings"
)

// This file re-joins the physical lines of one wrapped "print detail" entry
// into one logical line. RouterOS breaks an entry either at a space between
// properties or hard, anywhere, even inside a key or a value, and not always
// at the terminal width (the samples show a cut one column past it; a cut one
// column short happens too). So the decision whether a break replaced a
// space is made from what is being cut, not from the column: see
// needsSeparator.

// valueClass says what a property's value can look like, which decides how a
// break inside it is joined.
type valueClass int

const (
	// solidValue never contains a space: slots, paths, NQNs, numbers,
	// booleans, units. A break inside it is joined directly.
	solidValue valueClass = iota
	// shapedValue contains spaces only where its grammar puts them (byte
	// counts in groups of three, "<date> <time>", "<.ext> file"). A break
	// inside it is joined directly and the spaces are restored from the
	// grammar (normalizeValue).
	shapedValue
	// freeValue is free text (or a key this package does not know): a break
	// inside it is taken as a replaced space when the line was shorter than
	// the width, as a hard cut otherwise. Only here does the column matter.
	freeValue
)

var (
	shapedKeys = map[string]bool{"size": true, "free": true, "type": true, "last-modified": true, "creation-time": true}
	freeKeys   = map[string]bool{"model": true, "serial": true, "fw-version": true, "label": true, "comment": true, "contents": true, "package": true}
)

func classOf(key string) valueClass {
	switch {
	case shapedKeys[key]:
		return shapedValue
	case freeKeys[key] || !knownKeys[key]:
		return freeValue
	}
	return solidValue
}

var (
	byteCountRE = regexp.MustCompile(`^[0-9][0-9 ]*$`)
	fileTypeRE  = regexp.MustCompile(`^(\.[^ ]+?) ?file$`)
)

// normalizeValue restores the spaces of an unquoted shapedValue, which a
// break may have dropped or (in a byte count) misplaced.
func normalizeValue(key, v string) string {
	switch key {
	case "size", "free":
		if isGrouped(v) {
			return v // already as RouterOS groups it: nothing to restore
		}
		if byteCountRE.MatchString(v) {
			return groupDigits(strings.ReplaceAll(v, " ", ""))
		}
	case "last-modified", "creation-time":
		if m := newTimeRE.FindStringSubmatch(v); m != nil {
			return m[1] + " " + m[2]
		}
		if m := oldTimeRE.FindStringSubmatch(v); m != nil {
			return m[1] + "/" + m[2] + "/" + m[3] + " " + m[4]
		}
	case "type":
		if m := fileTypeRE.FindStringSubmatch(v); m != nil {
			return m[1] + " file"
		}
	}
	return v
}

// isGrouped reports whether v is a byte count exactly as groupDigits prints
// it: 1 to 3 digits, then groups of a space and 3 digits.
func isGrouped(v string) bool {
	first := len(v) % 4
	if first == 0 || len(v) == 0 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if (i-first)%4 == 0 && i >= first {
			if v[i] != ' ' {
				return false
			}
		} else if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// groupDigits prints a decimal number as RouterOS does: "53 687 091 200".
func groupDigits(d string) string {
	var b strings.Builder
	for i := 0; i < len(d); i++ {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(d[i])
	}
	return b.String()
}

// quoteTracker follows the tokenizer's view of the text so far (inside a
// quoted value or not, and whose value is being read) incrementally, so the
// joiner need not rescan the whole entry for every continuation line.
type quoteTracker struct {
	state    int
	keyShape bool
	word     []byte // the key being read (bounded by maxKeyLen)
	valKey   string // the key of the unquoted value being read; "" after a quoted one
}

const (
	qsSep      = iota // after a space or a closing quote
	qsKey             // inside a bare word: a key, or a word of a value
	qsValStart        // just after "key="
	qsQuoted
	qsQuotedEsc
	qsUnquoted // inside an unquoted value's first word
)

// maxKeyLen bounds the key a tracker remembers; longer words are no known key.
const maxKeyLen = 64

// keyString is string(k), without allocating for the keys RDS prints.
func keyString(k []byte) string {
	if name, ok := knownKeyNames[string(k)]; ok {
		return name
	}
	return string(k)
}

func (q *quoteTracker) feed(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch q.state {
		case qsSep:
			if c != ' ' {
				q.state = qsKey
				q.keyShape = isKeyStart(c)
				q.word = append(q.word[:0], c)
			}
		case qsKey:
			switch {
			case c == ' ':
				q.state = qsSep
			case c == '=':
				if q.keyShape && len(q.word) <= maxKeyLen {
					q.state = qsValStart
					q.valKey = keyString(q.word)
				} else {
					q.state = qsUnquoted
				}
			case !isKeyChar(c):
				q.keyShape = false
			}
			if q.keyShape && len(q.word) <= maxKeyLen && c != '=' {
				q.word = append(q.word, c)
			}
		case qsValStart:
			switch c {
			case '"':
				q.state = qsQuoted
			case ' ':
				q.state = qsSep
			default:
				q.state = qsUnquoted
			}
		case qsQuoted:
			switch c {
			case '\\':
				q.state = qsQuotedEsc
			case '"':
				q.state = qsSep
				q.valKey = "" // a word after a closed value is a key
			}
		case qsQuotedEsc:
			q.state = qsQuoted
		case qsUnquoted:
			if c == ' ' {
				q.state = qsSep
			}
		}
	}
}

func (q *quoteTracker) inQuote() bool { return q.state == qsQuoted || q.state == qsQuotedEsc }

// rawEntry accumulates the physical lines of one entry into one logical line.
type rawEntry struct {
	index     int
	flags     string
	comment   string
	propCol   int // column of the first property; -1 until known
	buf       strings.Builder
	started   bool // buf holds property text
	lastSpace int  // index in buf of the last space, -1 if none
	prevFull  bool // previous physical line reached the wrap width
	qt        quoteTracker
}

func (r *rawEntry) write(s string) {
	if i := strings.LastIndexByte(s, ' '); i >= 0 {
		r.lastSpace = r.buf.Len() + i
	}
	r.buf.WriteString(s)
	r.qt.feed(s)
}

func (r *rawEntry) lastWord() string {
	s := r.buf.String()
	return s[r.lastSpace+1:]
}

// addLine appends a physical line's text (indentation already removed).
func (r *rawEntry) addLine(text string, physLen, width int) {
	if r.started && needsSeparator(r, text) {
		r.write(" ")
	}
	r.started = true
	r.write(text)
	r.prevFull = physLen >= width
}

// needsSeparator decides whether the break before continuation cont replaced
// a space. It looks at what the break cut:
//
//   - inside a quoted value: never (a quoted value is cut, not broken at a
//     space, whatever the column);
//   - before a continuation that starts with a space: no, that space is
//     content;
//   - after a closing quote: yes, a new property starts (after a space: no,
//     it is there already);
//   - right after "key=": no, the value follows;
//   - inside an unquoted value: yes if the continuation starts with "key=";
//     otherwise no for solid and shaped values, and for free text yes
//     exactly when the line was shorter than the width;
//   - after a bare word (a cut key such as "nvme-tcp-", or a later word of a
//     value such as the "file" of "type=.img file"): no unless the
//     continuation starts with "key=" and the word and key do not make a
//     known key (or a key at all) together.
func needsSeparator(r *rawEntry, cont string) bool {
	q := &r.qt
	if q.inQuote() || strings.HasPrefix(cont, " ") {
		return false
	}
	n := keyAt(cont, 0)
	switch q.state {
	case qsSep:
		// After a closing quote a new property starts; after a space the
		// separator is already there.
		return !strings.HasSuffix(r.buf.String(), " ")
	case qsValStart:
		return n > 0 && knownKeys[cont[:n]]
	case qsUnquoted:
		if n > 0 {
			return true
		}
		return classOf(q.valKey) == freeValue && !r.prevFull
	}
	// qsKey: a bare word.
	if n < 0 {
		return q.valKey != "" && classOf(q.valKey) == freeValue && !r.prevFull
	}
	k, w := cont[:n], r.lastWord()
	switch {
	case knownKeys[w+k]:
		return false
	case knownKeys[k]:
		return true
	case isKeyShaped(w + k):
		return false
	}
	return true
}
