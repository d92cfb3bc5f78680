package rds

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultWrapWidth is the column at which RouterOS wraps output when no
// terminal width was negotiated.
//
// The client parses with this width even when it logs in with "+ct512w":
// a line that reaches 80 columns but was really broken at a property
// boundary (because the true width is 512) is still re-joined correctly by
// the content rule in ParseDetail, whereas parsing with 512 would corrupt
// output from a device that ignored the login option and wrapped at 80.
const DefaultWrapWidth = 80

// maxParseInput bounds the output the parser accepts; the SSH transport has
// its own limit, this protects other Transports.
const maxParseInput = 16 << 20

// ParseOptions tunes ParseDetail.
type ParseOptions struct {
	// Width is the terminal width the output was wrapped at. Zero means
	// DefaultWrapWidth.
	Width int
	// RequireLegend makes output without a "Flags:" legend before the first
	// entry an ErrIncompleteReply. /disk print always prints the legend, even
	// when nothing matches, so its absence means the reply was cut or is not
	// a listing at all; /file print has none.
	RequireLegend bool
}

// Property is one key=value pair of a print entry, in printed order.
type Property struct {
	Key   string
	Value string
	// Quoted reports whether RouterOS printed the value in double quotes.
	Quoted bool
}

// Entry is one item of "print detail" output.
type Entry struct {
	// Index is the printed item number (it shifts as items are removed; never
	// use it to address an item).
	Index int
	// Flags holds the flag letters printed between the index and the first
	// property (e.g. "X" for disabled), without spaces.
	Flags string
	// Comment is the ";;; " comment line, if any, without the marker.
	Comment    string
	Properties []Property
}

// Get returns the value of key.
func (e *Entry) Get(key string) (string, bool) {
	for _, p := range e.Properties {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// knownKeys are the property names RDS prints for /disk and /file. They
// only break ties when a wrap point is ambiguous (see ParseDetail); unknown
// keys still parse.
var knownKeys = map[string]bool{}

// knownKeyNames maps each known key to itself, to intern key names.
var knownKeyNames = map[string]string{}

func init() {
	for _, k := range strings.Fields(`
		type slot slot-default parent fs model serial fw-version size label
		mount-filesystem mount-read-only mount-point compress sector-size
		raid-master raid-role raid-type raid-device-count raid-chunk-size
		nvme-tcp-export nvme-tcp-server-port nvme-tcp-server-nqn
		nvme-tcp-server-allow-host-name iscsi-export iscsi-server-port
		iscsi-server-iqn nfs-sharing smb-sharing smb-user smb-password
		media-sharing media-interface swap file-path file-size file-offset
		file-system free use copy-from interface comment disabled
		name creation-time last-modified contents package
	`) {
		knownKeys[k] = true
		knownKeyNames[k] = k
	}
}

func isKeyStart(c byte) bool { return c >= 'a' && c <= 'z' }
func isKeyChar(c byte) bool  { return isKeyStart(c) || (c >= '0' && c <= '9') || c == '-' }

// isKeyShaped reports whether s looks like a RouterOS property name.
func isKeyShaped(s string) bool {
	if s == "" || !isKeyStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isKeyChar(s[i]) {
			return false
		}
	}
	return true
}

// keyAt returns the length of a "key=" at s[i:], excluding the '=', or -1.
func keyAt(s string, i int) int {
	if i >= len(s) || !isKeyStart(s[i]) {
		return -1
	}
	j := i + 1
	for j < len(s) && isKeyChar(s[j]) {
		j++
	}
	if j < len(s) && s[j] == '=' {
		return j - i
	}
	return -1
}

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// splitLines normalises line endings and strips terminal escape sequences,
// which RouterOS emits only if colours were not disabled at login.
func splitLines(s string) []string {
	if strings.IndexByte(s, 0x1b) >= 0 {
		s = ansiRE.ReplaceAllString(s, "")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "")
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// entryStart matches an entry's first line, as the regular expression
// ^( *)([0-9]{1,9})([ A-Z*]|$) would, and returns where its index digits
// start and end. Written out because it runs on every line of a listing.
func entryStart(line string) (digits, end int, ok bool) {
	i := 0
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j == i || j-i > 9 {
		return 0, 0, false
	}
	if j < len(line) {
		if c := line[j]; c != ' ' && c != '*' && (c < 'A' || c > 'Z') {
			return 0, 0, false
		}
	}
	return i, j, true
}

// ParseDetail parses RouterOS "print detail" output into entries.
//
// Layout handled: an optional "Flags:" legend (printed even when nothing
// matches; it may itself wrap), entries that start with a right-aligned index
// optionally followed by flag letters and a ";;; comment", continuation lines
// indented to the first property's column, blank lines between entries, CRLF
// line ends and stray terminal escapes.
//
// Wrap-joining rule. RouterOS wraps long entries near the terminal width,
// either at a space between properties or hard, anywhere (inside a key or a
// value, or exactly on a space), and not always at the width itself: the
// samples show a cut one column past it, and cuts short of it occur. The
// continuation's indentation (the first-property column) is removed, keeping
// any extra leading space, which is then real content. Whether a break
// replaced a space is decided from what it cut (see needsSeparator): nothing
// is ever inserted inside a quoted value, nor inside a value that cannot hold
// a space (slots, paths, NQNs, numbers, booleans), whatever the column; byte
// counts, timestamps and "<.ext> file" types get their spaces back from their
// grammar; a key cut in two is rejoined when the halves make a known key.
// Only inside unquoted free text (a model name, say) does the column decide:
// a line shorter than Width was broken at a space.
//
// So "...pvc-0f6f3b1" + "e2d11.img\"" (inside quotes), "nvme-tcp-server-" +
// "port=4420" and "file-path=/pool/pvc-3f2a" + "-77c1.img" join directly,
// while "...swap=no" + "file-path=/..." and "type=.img file" + "size=1.5TiB"
// get a space. Ambiguity remains only for unquoted values that themselves
// contain " key="; RDS prints such values quoted or not at all, and this
// package never creates them.
//
// Within the joined line, a quoted value ends at its closing quote (with
// RouterOS backslash escapes decoded); an unquoted value runs up to the next
// " key=" where key is kebab-case, so "type=.img file size=0" yields
// type=".img file". Values are never attributed across entries: an entry
// ends at a blank line or at the next index line.
func ParseDetail(out string, opts ParseOptions) ([]Entry, error) {
	if len(out) > maxParseInput {
		return nil, fmt.Errorf("%w: output too large (%d bytes)", ErrFailed, len(out))
	}
	width := opts.Width
	if width <= 0 {
		width = DefaultWrapWidth
	}
	var (
		entries []Entry
		cur     *rawEntry
		seen    bool
		legend  bool
	)
	flush := func() error {
		if cur == nil {
			return nil
		}
		props, err := tokenize(cur.buf.String())
		if err != nil {
			return fmt.Errorf("%w: entry %d: %v", ErrFailed, cur.index, err)
		}
		entries = append(entries, Entry{Index: cur.index, Flags: cur.flags, Comment: cur.comment, Properties: props})
		cur = nil
		return nil
	}
	for n, line := range splitLines(out) {
		line = strings.ReplaceAll(line, "\t", " ")
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if strings.TrimSpace(trimmed) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if ds, de, ok := entryStart(line); ok && (cur == nil || (cur.propCol >= 0 && indent < cur.propCol) || (cur.propCol < 0 && indent <= cur.indexEnd())) {
			if opts.RequireLegend && !legend {
				return nil, fmt.Errorf("%w: %w: listing has no Flags: legend before its first entry", ErrUnavailable, ErrIncompleteReply)
			}
			if err := flush(); err != nil {
				return nil, err
			}
			idx, _ := strconv.Atoi(line[ds:de])
			cur = &rawEntry{index: idx, propCol: -1, lastSpace: -1}
			seen = true
			p := de
			var flags strings.Builder
			for p < len(line) && (line[p] == ' ' || line[p] == '*' || (line[p] >= 'A' && line[p] <= 'Z')) {
				if line[p] != ' ' {
					flags.WriteByte(line[p])
				}
				p++
			}
			cur.flags = flags.String()
			rest := line[p:]
			switch {
			case rest == "":
			case strings.HasPrefix(rest, ";;;"):
				cur.comment = strings.TrimSpace(strings.TrimPrefix(rest, ";;;"))
			default:
				cur.propCol = p
				cur.addLine(rest, len(line), width)
			}
			continue
		}
		if cur != nil && indent > 0 {
			strip := indent
			if cur.propCol < 0 {
				cur.propCol = indent
			} else if strip > cur.propCol {
				strip = cur.propCol
			}
			cur.addLine(line[strip:], len(line), width)
			continue
		}
		if !seen && (indent > 0 || strings.HasPrefix(trimmed, "Flags:") || strings.HasPrefix(trimmed, "Columns:")) {
			legend = legend || strings.HasPrefix(trimmed, "Flags:")
			continue // legend and its wrapped lines
		}
		return nil, fmt.Errorf("%w: unexpected output line %d: %q", ErrFailed, n+1, truncate(line, 120))
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if opts.RequireLegend && !legend {
		return nil, fmt.Errorf("%w: %w: empty reply where a listing (at least its Flags: legend) was due", ErrUnavailable, ErrIncompleteReply)
	}
	return entries, nil
}

func (r *rawEntry) indexEnd() int { return len(strconv.Itoa(r.index)) + 3 }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// tokenize splits one logical entry line into properties.
func tokenize(s string) ([]Property, error) {
	props := make([]Property, 0, 32)
	var seen map[string]bool // only for entries too long to check by scanning
	i := 0
	for {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			return props, nil
		}
		n := keyAt(s, i)
		if n < 0 {
			return nil, fmt.Errorf("expected key=value at %q", truncate(s[i:], 40))
		}
		key := s[i : i+n]
		i += n + 1
		var p Property
		p.Key = key
		if i < len(s) && s[i] == '"' {
			v, next, err := unquoteAt(s, i)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %v", key, err)
			}
			if next < len(s) && s[next] != ' ' {
				return nil, fmt.Errorf("value of %s: garbage after closing quote", key)
			}
			p.Value, p.Quoted = v, true
			i = next
		} else {
			end := unquotedEnd(s, i)
			p.Value = normalizeValue(key, strings.TrimRight(s[i:end], " "))
			i = end
		}
		if repeated(props, &seen, key) {
			// A repeated key means the text was not split where RouterOS
			// meant it to be; refuse rather than guess which one is real.
			return nil, fmt.Errorf("property %s appears twice", key)
		}
		props = append(props, p)
	}
}

// repeated reports whether key is among props (the keys so far). Entries
// have a few dozen properties, so a scan beats a map; past 64 a map takes
// over, so a hostile entry of a million properties stays linear.
func repeated(props []Property, seen *map[string]bool, key string) bool {
	const scan = 64
	if len(props) < scan {
		for i := range props {
			if props[i].Key == key {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*scan)
		for i := range props {
			(*seen)[props[i].Key] = true
		}
	}
	if (*seen)[key] {
		return true
	}
	(*seen)[key] = true
	return false
}

// unquotedEnd returns the end of an unquoted value starting at i: the
// position of the space run before the next "key=", or len(s).
func unquotedEnd(s string, i int) int {
	for j := i; j < len(s); j++ {
		if s[j] != ' ' {
			continue
		}
		k := j
		for k < len(s) && s[k] == ' ' {
			k++
		}
		if keyAt(s, k) > 0 {
			return j
		}
		j = k - 1
	}
	return len(s)
}

// unquoteAt decodes a RouterOS double-quoted string starting at s[i]=='"'.
// It returns the value and the index just past the closing quote.
func unquoteAt(s string, i int) (string, int, error) {
	// Most values hold no escape: they are the text between the quotes.
	for j := i + 1; j < len(s); j++ {
		if s[j] == '"' {
			return s[i+1 : j], j + 1, nil
		}
		if s[j] == '\\' {
			break
		}
	}
	var b strings.Builder
	j := i + 1
	for j < len(s) {
		c := s[j]
		switch c {
		case '"':
			return b.String(), j + 1, nil
		case '\\':
			if j+1 >= len(s) {
				return "", 0, fmt.Errorf("unterminated escape")
			}
			e := s[j+1]
			// Hex escapes are upper case: "\ab" is the named escape \a then 'b'.
			if isUpperHex(e) && j+2 < len(s) && isUpperHex(s[j+2]) {
				v, _ := strconv.ParseUint(s[j+1:j+3], 16, 8)
				b.WriteByte(byte(v))
				j += 3
				continue
			}
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'a':
				b.WriteByte('\a')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'v':
				b.WriteByte('\v')
			case '_':
				b.WriteByte(' ')
			default:
				b.WriteByte(e)
			}
			j += 2
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, fmt.Errorf("unterminated quoted value")
}

func isUpperHex(c byte) bool { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') }

// ParseKeyValue parses "key: value" output such as "/system identity print"
// or "/system resource print", where keys are right-aligned.
func ParseKeyValue(out string) (map[string]string, error) {
	res := map[string]string{}
	last := ""
	for n, line := range splitLines(out) {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if ok && isKeyShaped(k) {
			res[k] = strings.TrimSpace(v)
			last = k
			continue
		}
		if last != "" && line != t {
			res[last] += " " + t // wrapped value
			continue
		}
		return nil, fmt.Errorf("%w: unexpected output line %d: %q", ErrFailed, n+1, truncate(line, 120))
	}
	return res, nil
}

// ParseBytes parses a RouterOS byte count printed with spaces as thousands
// separators ("53 687 091 200").
func ParseBytes(s string) (int64, error) {
	t := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if t == "" {
		return 0, fmt.Errorf("%w: empty byte count", ErrFailed)
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return 0, fmt.Errorf("%w: bad byte count %q", ErrFailed, truncate(s, 40))
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad byte count %q: %v", ErrFailed, truncate(s, 40), err)
	}
	return v, nil
}

var humanUnits = map[string]float64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
	"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
}

var humanRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

// ParseHumanSize parses a lossy human-readable size such as "50.0GiB". The
// result is approximate; use it only where RouterOS prints nothing better
// (/file sizes), never for a disk's size.
func ParseHumanSize(s string) (int64, error) {
	m := humanRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%w: bad size %q", ErrFailed, truncate(s, 40))
	}
	mul, ok := humanUnits[m[2]]
	if !ok {
		return 0, fmt.Errorf("%w: bad size unit %q", ErrFailed, truncate(s, 40))
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil || f*mul > 9e18 {
		return 0, fmt.Errorf("%w: bad size %q", ErrFailed, truncate(s, 40))
	}
	return int64(f * mul), nil
}

var (
	newTimeRE = regexp.MustCompile(`^([0-9]{4}-[0-9]{2}-[0-9]{2}) ?([0-9]{2}:[0-9]{2}:[0-9]{2})$`)
	oldTimeRE = regexp.MustCompile(`^([a-zA-Z]{3})/([0-9]{2})/([0-9]{4}) ?([0-9]{2}:[0-9]{2}:[0-9]{2})$`)
)

// ParseTime parses both RouterOS timestamp formats: "2025-11-12 00:36:13"
// (7.16+) and "jan/02/2025 10:30:45" (older). RouterOS prints local time
// without a zone; the result is in UTC and only meaningful relative to other
// timestamps from the same device. The space may be missing when a hard
// wrap fell exactly on it.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if m := newTimeRE.FindStringSubmatch(s); m != nil {
		return time.ParseInLocation("2006-01-02 15:04:05", m[1]+" "+m[2], time.UTC)
	}
	if m := oldTimeRE.FindStringSubmatch(s); m != nil {
		mon := strings.ToUpper(m[1][:1]) + strings.ToLower(m[1][1:])
		return time.ParseInLocation("Jan/02/2006 15:04:05", mon+"/"+m[2]+"/"+m[3]+" "+m[4], time.UTC)
	}
	return time.Time{}, fmt.Errorf("%w: bad time %q", ErrFailed, truncate(s, 40))
}

// ParseCount reads the answer of a "print count-only": one decimal number.
// Nothing at all is an incomplete reply; anything else is not a count.
func ParseCount(out string) (int, error) {
	var nums []string
	for _, l := range splitLines(out) {
		if t := strings.TrimSpace(l); t != "" {
			nums = append(nums, t)
		}
	}
	switch {
	case len(nums) == 0:
		return 0, fmt.Errorf("%w: %w: empty reply where a count was due", ErrUnavailable, ErrIncompleteReply)
	case len(nums) > 1 || len(nums[0]) > 9:
		return 0, fmt.Errorf("%w: %q is not a count", ErrFailed, truncate(out, 40))
	}
	for i := 0; i < len(nums[0]); i++ {
		if nums[0][i] < '0' || nums[0][i] > '9' {
			return 0, fmt.Errorf("%w: %q is not a count", ErrFailed, truncate(out, 40))
		}
	}
	return strconv.Atoi(nums[0])
}
