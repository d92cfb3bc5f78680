package console

import (
	"strings"

	"github.com/rds-csi/rds-csi/emulator/routeros"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// legacyTimes reports whether this RouterOS version prints /file times the old way
// (creation-time=jan/02/2025 10:30:45); 7.16 switched to last-modified=.
func (c *Console) legacyTimes() bool {
	v := c.cfg.Version
	var major, minor int
	for i, part := range strings.SplitN(strings.Fields(v + " ")[0], ".", 3) {
		n := 0
		for _, r := range part {
			if r < '0' || r > '9' {
				break
			}
			n = n*10 + int(r-'0')
		}
		if i == 0 {
			major = n
		} else if i == 1 {
			minor = n
		}
	}
	return major < 7 || major == 7 && minor < 16
}

func (c *Console) fileProps(f store.File) []prop {
	ps := []prop{{"name", bare(f.Name)}, {"type", f.Type}}
	if !f.Dir {
		ps = append(ps, prop{"size", humanSize(f.Size)})
	}
	if c.legacyTimes() {
		ps = append(ps, prop{"creation-time", strings.ToLower(f.LastModified.UTC().Format("Jan/02/2006 15:04:05"))})
	} else {
		ps = append(ps, prop{"last-modified", f.LastModified.UTC().Format("2006-01-02 15:04:05")})
	}
	return ps
}

// fileColumns are the columns of the table form of /file print. What is
// verified: MikroTik's manual shows /file with no flags legend (7.16's
// print detail) and the columns NAME, TYPE, SIZE, CREATION-TIME in the table
// form (the v3-v5 manual); 7.16 renamed the time to last-modified. What is
// not: the table form on RouterOS 7 itself, whose "Columns:" line and
// two-space column gaps are taken from the other v7 menus, not from a /file
// sample. The driver reads only the detail form.
func (c *Console) fileColumns() []string {
	if c.legacyTimes() {
		return []string{"name", "type", "size", "creation-time"}
	}
	return []string{"name", "type", "size", "last-modified"}
}

func fileMatchProps(f store.File) routeros.Props {
	return func(name string) (string, bool) {
		switch name {
		case "name":
			return f.Name, true
		case "type":
			return f.Type, true
		case "size":
			if f.Dir {
				return "", false
			}
			return humanSize(f.Size), true
		}
		return "", false
	}
}

func (s *Session) file(b *strings.Builder, cmd routeros.Command) error {
	switch cmd.Verb {
	case "print":
		names := s.selectFiles(cmd.Where)
		s.lastFiles = names
		if hasWord(cmd, "count-only") {
			b.WriteString(itoa(len(names)) + "\n")
			return nil
		}
		entries := make([]entry, 0, len(names))
		for _, n := range names {
			if f, ok := s.c.store.FileByName(n); ok {
				entries = append(entries, entry{props: s.c.fileProps(f)})
			}
		}
		if hasWord(cmd, "detail") {
			renderDetail(b, "", entries, s.Width)
		} else {
			renderTable(b, "", entries, s.c.fileColumns())
		}
		return nil
	case "remove":
		var names []string
		if cmd.Items == nil {
			return failure("no such item")
		}
		if cmd.Items.Find != nil {
			names = s.selectFiles(cmd.Items.Find.Where)
		} else {
			for _, n := range cmd.Items.Indices {
				if n < 0 || n >= len(s.lastFiles) {
					return failure("no such item")
				}
				names = append(names, s.lastFiles[n])
			}
		}
		if len(names) == 0 {
			return failure("no such item")
		}
		for _, n := range names {
			if err := s.c.store.RemoveFile(n); err != nil {
				return err
			}
		}
		return nil
	}
	return failure("bad command name " + cmd.Verb)
}

// selectFiles returns matching file names in name order; `name=X` uses the index.
func (s *Session) selectFiles(where routeros.Expr) []string {
	if cmp, ok := where.(*routeros.Compare); ok && cmp.Op == "=" && cmp.Prop == "name" {
		if f, ok := s.c.store.FileByName(cmp.Value); ok {
			return []string{f.Name}
		}
		return nil
	}
	var names []string
	for _, f := range s.c.store.Files() {
		if where == nil || where.Match(fileMatchProps(f)) {
			names = append(names, f.Name)
		}
	}
	return names
}
