package console

import (
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/store"
)

func TestSpacedInt(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 999: "999", 1000: "1 000", 53687091200: "53 687 091 200",
		1649267441664: "1 649 267 441 664", 7681574174720: "7 681 574 174 720", -1234: "-1 234",
	} {
		if got := spacedInt(n); got != want {
			t.Errorf("spacedInt(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{
		512: "512", 1024: "1.0KiB", 53687091200: "50.0GiB", 10737418240: "10.0GiB",
		1649267441664: "1.5TiB", 10000000000: "9.3GiB", 1 << 20: "1.0MiB",
	} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"0": 0, "1073741824": 1 << 30, "1G": 1 << 30, "512M": 512 << 20, "50G": 50 << 30,
		"8T": 8 << 40, "4k": 4096, "1GiB": 1 << 30, "2MB": 2 << 20,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "1.5G", "1X", "iB", "1 G", "99999999999999999999", "8589934592T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}

func TestWrapNeverExceedsWidthAndLosesNothing(t *testing.T) {
	tokens := []string{"a=1", "slot=\"" + strings.Repeat("x", 200) + "\"", "b=2", strings.Repeat("y", 79), "c=3"}
	for _, width := range []int{20, 40, 80, 81, 512} {
		var b strings.Builder
		wrapTokens(&b, " 0   ", "     ", tokens, width)
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		var joined strings.Builder
		for i, l := range lines {
			if len(l) > width {
				t.Fatalf("width %d: line %d has %d chars: %q", width, i, len(l), l)
			}
			if !strings.HasPrefix(l, "     ") && !strings.HasPrefix(l, " 0   ") {
				t.Fatalf("width %d: line %d lost its indent: %q", width, i, l)
			}
			// A line filled to the width was cut inside a token; otherwise it
			// ended at a token boundary. This is the rule a client must use.
			if i > 0 && len(lines[i-1]) < width {
				joined.WriteByte(' ')
			}
			joined.WriteString(l[5:])
		}
		if got, want := joined.String(), strings.Join(tokens, " "); got != want {
			t.Fatalf("width %d: unwrapped text differs:\n got %q\nwant %q", width, got, want)
		}
	}
}

func TestUsePercentRounds(t *testing.T) {
	for _, tc := range []struct {
		used, size int64
		want       string
	}{
		{2049134174720, 7681574174720, "27"}, // 26.68%: the real sample
		{494, 10000, "5"},                    // 4.94%
		{449, 10000, "4"},
		{450, 10000, "5"}, // half rounds up
		{0, 10000, "0"},
		{1, 10000, "0"},
		{9950, 10000, "100"},
		{10000, 10000, "100"},
		{1 << 62, 3, "100"}, // more used than the pool holds: no overflow, no panic
		{5, 0, "0"},
		{1<<63 - 1, 1<<63 - 1, "100"},
	} {
		if got := usePercent(store.Pool{Used: tc.used, Size: tc.size}); got != tc.want {
			t.Errorf("usePercent(%d of %d) = %s%%, want %s%%", tc.used, tc.size, got, tc.want)
		}
	}
}
