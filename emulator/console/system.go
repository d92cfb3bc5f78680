package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/rds-csi/rds-csi/emulator/routeros"
)

func (s *Session) identity(b *strings.Builder, cmd routeros.Command) error {
	switch cmd.Verb {
	case "print":
		renderKeyValues(b, []prop{{"name", s.c.cfg.Identity}})
		return nil
	}
	// Renaming the box is not something the driver does; refuse it rather than
	// keep identity state that is not persisted.
	return failure("not permitted")
}

func (s *Session) resource(b *strings.Builder, _ routeros.Command) error {
	st := s.c.store
	p := st.Pool()
	up := time.Duration(s.c.cfg.Clock.Now().Unix()-s.c.boot) * time.Second
	renderKeyValues(b, []prop{
		{"uptime", formatUptime(up)},
		{"version", s.c.cfg.Version},
		{"build-time", "2024-10-21 09:01:12"},
		{"factory-software", "7.14"},
		{"free-memory", "29.1GiB"},
		{"total-memory", "31.2GiB"},
		{"cpu", "ARM64"},
		{"cpu-count", "16"},
		{"cpu-load", "1%"},
		{"free-hdd-space", humanSize(p.Free())},
		{"total-hdd-space", humanSize(p.Size)},
		{"architecture-name", "arm64"},
		{"board-name", "RDS2216"},
		{"platform", "MikroTik"},
	})
	return nil
}

// formatUptime prints a duration RouterOS-style: 1w2d3h4m5s, dropping zero units.
func formatUptime(d time.Duration) string {
	secs := int64(d / time.Second)
	if secs <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		n    int64
		name string
	}{{604800, "w"}, {86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if secs >= u.n {
			b.WriteString(strconv.FormatInt(secs/u.n, 10) + u.name)
			secs %= u.n
		}
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
