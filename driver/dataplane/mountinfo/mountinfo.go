package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Mount is one line of mountinfo (proc(5)).
type Mount struct {
	// MajorMinor is the device number of the mounted filesystem ("7:3").
	MajorMinor string
	// Root is the path inside that filesystem which is mounted: "/" for a
	// whole filesystem, "/loop4" for a device node bind-mounted from devtmpfs.
	Root       string
	MountPoint string
	FSType     string
	Source     string
}

// Parse reads mountinfo text. A malformed line is an error: a caller that
// must know whether something is mounted cannot skip what it fails to read.
func Parse(r io.Reader) ([]Mount, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	var out []Mount
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("malformed mountinfo line %q", line)
		}
		out = append(out, Mount{
			MajorMinor: f[2],
			Root:       Unescape(f[3]),
			MountPoint: Unescape(f[4]),
			FSType:     g[0],
			Source:     Unescape(g[1]),
		})
	}
	return out, sc.Err()
}

// Read parses the mountinfo file at path.
func Read(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("read mounts from %s: %w", path, err)
	}
	return ms, nil
}

// Unescape undoes the kernel's \ooo escaping of space, tab, newline and
// backslash in mountinfo and /proc/mounts fields.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
