package spec

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"10m", 10 * time.Minute, ""},
		{"10m5s", 10*time.Minute + 5*time.Second, ""},
		{"3h10m", 3*time.Hour + 10*time.Minute, ""},
		{"0s", 0, ""},
		{"0", 0, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"1.5h", 90 * time.Minute, ""},
		{" 2s ", 2 * time.Second, ""},
		{"", 0, "empty duration"},
		{"10", 0, "has no unit"},
		{"-1s", 0, "negative"},
		{"10 minutes", 0, "bad duration"},
		{"1d", 0, "bad duration"},
		{"9999999999h", 0, "bad duration"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if got := FormatDuration(3*time.Hour + 10*time.Minute); got != "3h10m0s" {
		t.Errorf("FormatDuration = %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{"20GiB", 20 << 30, ""},
		{"20Gi", 20 << 30, ""},
		{"20G", 20 << 30, ""},
		{"50G", 50 << 30, ""},
		{"8TiB", 8 << 40, ""},
		{"8T", 8 << 40, ""},
		{"1P", 1 << 50, ""},
		{"512M", 512 << 20, ""},
		{"4k", 4 << 10, ""},
		{"4K", 4 << 10, ""},
		{"4KiB", 4 << 10, ""},
		{"1048576", 1 << 20, ""},
		{"512B", 512, ""},
		{"0", 0, ""},
		{"8191P", 8191 << 50, ""},
		{"8192P", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"", 0, "empty size"},
		{"GiB", 0, "bad size"},
		{"-1G", 0, "bad size"},
		{"1.5G", 0, "bad size unit"},
		{"20 GiB", 0, "bad size unit"},
		{"20GB", 0, "ambiguous"},
		{"20KB", 0, "ambiguous"},
		{"20X", 0, "bad size unit"},
		{"20g", 0, "bad size unit"},
		{"20iB", 0, "bad size unit"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1KiB"}, {1536, "1536"}, {3 << 19, "1536KiB"},
		{20 << 30, "20GiB"}, {8 << 40, "8TiB"}, {1 << 50, "1PiB"}, {1 << 60, "1024PiB"},
	} {
		got := FormatSize(tc.in)
		if got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.in, got, tc.want)
		}
		if back, err := ParseSize(got); err != nil || back != tc.in {
			t.Errorf("ParseSize(FormatSize(%d)) = %d, %v", tc.in, back, err)
		}
	}
}
