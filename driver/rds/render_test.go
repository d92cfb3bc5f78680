package rds

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// This file renders entries the way RouterOS prints them, for the fake RDS
// and the round-trip fuzz target. It models what the samples show: a
// right-aligned index, continuation lines indented to the first property's
// column, and wraps that are either at a property boundary or a hard cut at
// the width (which may fall inside a key or value, on the separating space,
// which is then dropped, or one column past the width as in the sample).

type rprop struct {
	key, val string
	quoted   bool
}

// quoteOut renders a value the way RouterOS prints quoted strings.
func quoteOut(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func spaced(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func humanSize(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}

type renderer struct {
	width int
	rng   *rand.Rand // nil: boundary wraps only, never hard cuts
	blank bool       // blank line between entries
}

func (r *renderer) render(legend string, entries [][]rprop, flags []string) string {
	var out strings.Builder
	if legend != "" {
		out.WriteString(legend + "\n")
	}
	for i, props := range entries {
		if i > 0 && r.blank {
			out.WriteString("\n")
		}
		f := ""
		if flags != nil {
			f = flags[i]
		}
		r.renderEntry(&out, i, f, props)
	}
	return out.String()
}

func (r *renderer) renderEntry(out *strings.Builder, idx int, flags string, props []rprop) {
	prefix := fmt.Sprintf("%2d", idx)
	if flags != "" {
		prefix += " " + flags
	}
	target := max(5, len(prefix)+2)
	prefix += strings.Repeat(" ", target-len(prefix))
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	empty := true
	emit := func(s string) { out.WriteString(s + "\n") }
	cutAt := func() int {
		if r.rng != nil {
			switch r.rng.IntN(8) {
			case 0:
				return r.width + 1 // the sample has one such line
			case 1:
				return r.width - 1 // and RouterOS cuts short of the width too
			}
		}
		return r.width
	}
	for _, p := range props {
		tok := p.key + "="
		if p.quoted {
			tok += quoteOut(p.val)
		} else {
			tok += p.val
		}
		var text string
		sepAt := -1
		switch {
		case empty:
			text = line + tok
		case len(line)+1+len(tok) <= r.width:
			line += " " + tok
			continue
		case r.rng == nil || r.rng.IntN(2) == 0:
			// Boundary wrap: RouterOS moves the whole property down.
			emit(line)
			text = indent + tok
		default:
			sepAt = len(line)
			text = line + " " + tok
		}
		empty = false
		for {
			w := cutAt()
			if len(text) <= w || (r.rng == nil && sepAt < 0) {
				break
			}
			emit(text[:w])
			rest := text[w:]
			if w == sepAt {
				rest = rest[1:] // the cut fell on the separator: dropped
			}
			sepAt = -1
			text = indent + rest
		}
		line = text
	}
	emit(line)
}

// diskProps renders a disk the way RDS prints "/disk print detail".
func diskProps(d testDisk) []rprop {
	exp := "no"
	if d.export {
		exp = "yes"
	}
	ps := []rprop{
		{key: "type", val: "file"},
		{key: "slot", val: d.slot, quoted: true},
		{key: "slot-default", val: "", quoted: true},
		{key: "parent", val: "", quoted: true},
		{key: "fs", val: "-"},
		{key: "model", val: d.model, quoted: true},
		{key: "size", val: spaced(d.size)},
		{key: "mount-filesystem", val: "yes"},
		{key: "mount-read-only", val: "no"},
		{key: "compress", val: "no"},
		{key: "sector-size", val: "512"},
		{key: "raid-master", val: "none"},
		{key: "nvme-tcp-export", val: exp},
	}
	if d.export {
		ps = append(ps,
			rprop{key: "nvme-tcp-server-port", val: strconv.Itoa(d.port)},
			rprop{key: "nvme-tcp-server-nqn", val: d.nqn, quoted: true},
			rprop{key: "nvme-tcp-server-allow-host-name", val: d.allowHost, quoted: true})
	}
	ps = append(ps,
		rprop{key: "iscsi-export", val: "no"},
		rprop{key: "nfs-sharing", val: "no"},
		rprop{key: "smb-sharing", val: "no"},
		rprop{key: "media-sharing", val: "no"},
		rprop{key: "media-interface", val: "none"},
		rprop{key: "swap", val: "no"},
		rprop{key: "file-path", val: d.path},
		rprop{key: "file-size", val: humanSize(d.size)},
		rprop{key: "file-offset", val: "0"},
	)
	return ps
}

type testDisk struct {
	slot, path, nqn, model string
	allowHost              string // a host NQN, or "" for any host
	size                   int64
	port                   int
	export                 bool
}

func fileProps(name string, size int64, dir bool, old bool) []rprop {
	ps := []rprop{{key: "name", val: name}}
	if dir {
		ps = append(ps, rprop{key: "type", val: "directory"})
	} else {
		ps = append(ps, rprop{key: "type", val: ".img file"}, rprop{key: "size", val: humanSize(size)})
	}
	if old {
		ps = append(ps, rprop{key: "creation-time", val: "jan/02/2025 10:30:45"})
	} else {
		ps = append(ps, rprop{key: "last-modified", val: "2025-11-12 00:36:13"})
	}
	return ps
}
