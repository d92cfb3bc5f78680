package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// MaxExpansion bounds how many names one brace pattern may stand for, so that
// a typo such as db-{1..1000000} is an error rather than a stalled run.
const MaxExpansion = 10000

// Expand returns the names a brace pattern stands for, in order, the way a
// shell expands them: "db-{1..3}" is db-1, db-2, db-3; "{a,b}-x" is a-x, b-x;
// several braces multiply, the leftmost varying slowest: "{db,vm}-{1..2}" is
// db-1, db-2, vm-1, vm-2. A range runs over whole numbers or single letters,
// counts down when its end is below its start ({3..1}) and zero-pads when an
// end is written with a leading zero ({08..10} is 08, 09, 10). A pattern
// without braces stands for itself.
//
// Nested braces, empty list items, a list of one ({a}), a range with a step
// ({1..9..2}) and unbalanced braces are errors, as is a pattern standing for
// more than MaxExpansion names.
func Expand(pattern string) ([]string, error) {
	type part struct{ alts []string }
	var parts []part
	total := 1
	rest := pattern
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			parts = append(parts, part{[]string{rest}})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("%q: '}' without '{'", pattern)
		}
		if open > 0 {
			parts = append(parts, part{[]string{rest[:open]}})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 {
			return nil, fmt.Errorf("%q: '{' without '}'", pattern)
		}
		end += open + 1
		if rest[end] == '{' {
			return nil, fmt.Errorf("%q: nested braces are not supported", pattern)
		}
		alts, err := braceBody(rest[open+1 : end])
		if err != nil {
			return nil, fmt.Errorf("%q: %v", pattern, err)
		}
		if total > MaxExpansion/len(alts) {
			return nil, fmt.Errorf("%q stands for more than %d names", pattern, MaxExpansion)
		}
		total *= len(alts)
		parts = append(parts, part{alts})
		rest = rest[end+1:]
	}
	out := []string{""}
	for _, p := range parts {
		next := make([]string, 0, len(out)*len(p.alts))
		for _, prefix := range out {
			for _, a := range p.alts {
				next = append(next, prefix+a)
			}
		}
		out = next
	}
	return out, nil
}

// braceBody expands what stands between one pair of braces.
func braceBody(body string) ([]string, error) {
	if strings.Contains(body, ",") {
		items := strings.Split(body, ",")
		for _, it := range items {
			if it == "" {
				return nil, errors.New("empty item in brace list")
			}
		}
		return items, nil
	}
	lo, hi, ok := strings.Cut(body, "..")
	if !ok {
		if body == "" {
			return nil, errors.New("empty braces")
		}
		return nil, fmt.Errorf("{%s} is neither a list {a,b} nor a range {1..3}", body)
	}
	if strings.Contains(hi, "..") {
		return nil, errors.New("ranges with a step ({1..9..2}) are not supported")
	}
	if isLetter(lo) && isLetter(hi) {
		a, b := lo[0], hi[0]
		if (a >= 'a') != (b >= 'a') {
			return nil, fmt.Errorf("range {%s} mixes upper and lower case", body)
		}
		var out []string
		for c := int(a); ; c += sign(int(b) - int(a)) {
			out = append(out, string(rune(c)))
			if c == int(b) {
				return out, nil
			}
		}
	}
	if !isDigits(lo) || !isDigits(hi) {
		return nil, fmt.Errorf("range {%s} needs whole numbers or single letters at both ends", body)
	}
	a, errA := strconv.Atoi(lo)
	b, errB := strconv.Atoi(hi)
	if errA != nil || errB != nil || abs(b-a) >= MaxExpansion {
		return nil, fmt.Errorf("range {%s} stands for more than %d names", body, MaxExpansion)
	}
	width := 0
	if (len(lo) > 1 && lo[0] == '0') || (len(hi) > 1 && hi[0] == '0') {
		width = max(len(lo), len(hi))
	}
	out := make([]string, 0, abs(b-a)+1)
	for n := a; ; n += sign(b - a) {
		out = append(out, fmt.Sprintf("%0*d", width, n))
		if n == b {
			return out, nil
		}
	}
}

func isLetter(s string) bool {
	return len(s) == 1 && (s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z')
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// dnsName is a DNS-1123 subdomain, what Kubernetes accepts as a Node or
// PersistentVolume name.
var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// checkName reports why s cannot name a node or a volume.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > 253:
		return fmt.Errorf("name %.20q... is longer than 253 characters", s)
	case !dnsName.MatchString(s):
		return fmt.Errorf("%q is not a valid name (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)", s)
	}
	return nil
}
