package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a virtual duration as a scenario file writes it: Go
// syntax ("10m", "10m5s", "3h10m", "250ms", "0s"; a bare "0" is zero).
// Negative durations are rejected: scenario time only moves forward.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration (write e.g. 30s, 5m or 3h10m)")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Errorf("duration %q has no unit (write e.g. %ss or %sm)", s, s, s)
		}
		return 0, fmt.Errorf("bad duration %q (write e.g. 30s, 5m or 3h10m)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// FormatDuration is the canonical spelling of a duration, as String writes it
// and ParseDuration reads it back.
func FormatDuration(d time.Duration) string { return d.String() }

var sizeUnits = []struct {
	suffix string
	shift  uint
}{
	{"P", 50}, {"T", 40}, {"G", 30}, {"M", 20}, {"K", 10},
}

// ParseSize reads a size: plain bytes ("1048576", "512B") or a whole number
// with a binary unit, written the RouterOS way ("50G", "8T") or the
// Kubernetes way ("20Gi", "8Ti", also "20GiB"). Every unit is a power of
// 1024, so 8T and 8TiB are the same size, as on the RDS console. Decimal-byte
// spellings such as "50GB" are rejected because RouterOS and Kubernetes read
// them differently.
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size (write e.g. 20GiB or 8T)")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	num, unit := s[:i], s[i:]
	if num == "" {
		return 0, fmt.Errorf("bad size %q (write a whole number with a unit, e.g. 20GiB or 8T)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	var shift uint
	switch unit {
	case "", "B":
	default:
		u := strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "i")
		if u == "k" {
			u = "K"
		}
		found := false
		for _, su := range sizeUnits {
			if u == su.suffix {
				shift, found = su.shift, true
			}
		}
		switch {
		case !found:
			return 0, fmt.Errorf("bad size unit in %q (units: K, M, G, T, P, optionally with i or iB)", s)
		case strings.HasSuffix(unit, "B") && !strings.HasSuffix(unit, "iB"):
			return 0, fmt.Errorf("size %q is ambiguous (RouterOS reads %s as a power of 1024, Kubernetes as a power of 1000): write %s%siB", s, unit, num, u)
		}
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

// FormatSize is the canonical spelling of a size: the largest binary unit
// that divides it exactly ("20GiB", "8TiB"), or plain bytes.
func FormatSize(n int64) string {
	if n > 0 {
		for _, u := range sizeUnits {
			if n%(1<<u.shift) == 0 {
				return strconv.FormatInt(n>>u.shift, 10) + u.suffix + "iB"
			}
		}
	}
	return strconv.FormatInt(n, 10)
}
