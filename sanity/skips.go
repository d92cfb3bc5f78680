package sanity

import (
	"fmt"
	"os"
	"strings"
)

// Skips is the list of csi-sanity specs that may be skipped, each with why.
type Skips []struct{ Match, Why string }

// Reason is why the spec with this full text may be skipped, or "" if it
// may not.
func (l Skips) Reason(spec string) string {
	for _, s := range l {
		if strings.Contains(spec, s.Match) {
			return s.Why
		}
	}
	return ""
}

// ReadSkips reads a skip list: one "<substring of the spec text> | <reason>"
// per line; blank lines and # comments are ignored, a line without a reason
// is an error.
func ReadSkips(path string) (Skips, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Skips
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		match, why, ok := strings.Cut(line, " | ")
		if !ok || strings.TrimSpace(match) == "" || strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s:%d: want \"<spec text> | <reason>\", got %q", path, n+1, line)
		}
		l = append(l, struct{ Match, Why string }{match, why})
	}
	return l, nil
}
