package rds

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// fakeRDS is a small in-memory RDS that understands exactly the command
// shapes this package sends and answers in RouterOS style (wrapped at 80
// columns with hard cuts). It keeps the client tests honest about the text
// they parse; the real emulator is exercised in emulator_test.go.
type fakeRDS struct {
	mu       sync.Mutex
	disks    []*testDisk
	files    map[string]int64 // /file name (no leading slash) -> size
	poolSize int64
	log      []string
	rng      *rand.Rand
	// hook, if set, runs before the command; handled=true skips it.
	hook func(cmd string) (out string, err error, handled bool)
	// after, if set, runs after the command with its output.
	after func(cmd, out string) (string, error)
	// ignoreRemove makes removes print nothing and do nothing.
	ignoreRemove bool
}

func newFakeRDS() *fakeRDS {
	return &fakeRDS{files: map[string]int64{"storage-pool/k8s": 0}, poolSize: 100 << 30, rng: rand.New(rand.NewPCG(1, 2))}
}

const qre = `("(?:[^"\\]|\\.)*")`

var (
	reAdd    = regexp.MustCompile(`^/disk add type=file file-path=` + qre + ` file-size=([0-9]+) slot=` + qre + `(.*)$`)
	reCopy   = regexp.MustCompile(`^/disk add type=file copy-from=\[find slot=` + qre + `\] file-path=` + qre + ` slot=` + qre + `(.*)$`)
	reExport = regexp.MustCompile(`^ nvme-tcp-export=(?:no|yes nvme-tcp-server-port=([0-9]+) nvme-tcp-server-nqn=` + qre + `)$`)
	reWhere  = regexp.MustCompile(`^/(disk|file) print detail where ((?:(?:slot|file-path|mount-point|name)(?:=|~)` + qre + `(?: or |$))+)$`)
	reCount  = regexp.MustCompile(`^/(disk|file) print count-only where ((?:(?:slot|file-path|mount-point|name)(?:=|~)` + qre + `(?: or |$))+)$`)
	reCond   = regexp.MustCompile(`(slot|file-path|mount-point|name)(=|~)` + qre)
	reSet    = regexp.MustCompile(`^/disk set \[find slot=` + qre + `\] file-size=([0-9]+)$`)
	reRm     = regexp.MustCompile(`^/disk remove \[find slot=` + qre + `(?: and file-path=` + qre + `)?\]$`)
	reFileRm = regexp.MustCompile(`^/file remove \[find name=` + qre + `\]$`)
)

func (f *fakeRDS) Run(ctx context.Context, cmd string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	f.mu.Lock()
	f.log = append(f.log, cmd)
	hook, after := f.hook, f.after
	f.mu.Unlock()
	if hook != nil {
		if out, err, ok := hook(cmd); ok {
			return out, err
		}
	}
	f.mu.Lock()
	out := f.exec(cmd)
	f.mu.Unlock()
	if after != nil {
		return after(cmd, out)
	}
	return out, nil
}

func (f *fakeRDS) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

func (f *fakeRDS) count(prefix string) int {
	n := 0
	for _, c := range f.commands() {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func mustUnquote(q string) string {
	v, _, err := unquoteAt(q, 0)
	if err != nil {
		panic(err)
	}
	return v
}

func (f *fakeRDS) find(slot string) *testDisk {
	for _, d := range f.disks {
		if d.slot == slot {
			return d
		}
	}
	return nil
}

func (f *fakeRDS) used() int64 {
	var n int64
	for _, d := range f.disks {
		n += d.size
	}
	return n
}

func (f *fakeRDS) parseExport(d *testDisk, rest string) bool {
	m := reExport.FindStringSubmatch(rest)
	if m == nil {
		return false
	}
	if m[1] != "" {
		d.export = true
		d.port, _ = strconv.Atoi(m[1])
		d.nqn = mustUnquote(m[2])
	}
	return true
}

// exec runs a script: its commands in order, stopping after the first that
// prints an error, as RouterOS does.
func (f *fakeRDS) exec(script string) string {
	var b strings.Builder
	for _, cmd := range splitScript(script) {
		out := f.exec1(cmd)
		b.WriteString(out)
		if kind, _ := Classify(out); kind != nil {
			break
		}
	}
	return b.String()
}

// splitScript cuts a script at the semicolons outside quoted strings.
func splitScript(script string) []string {
	var cmds []string
	start, inQuote := 0, false
	for i := 0; i < len(script); i++ {
		switch c := script[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == ';':
			cmds = append(cmds, strings.TrimSpace(script[start:i]))
			start = i + 1
		}
	}
	return append(cmds, strings.TrimSpace(script[start:]))
}

func (f *fakeRDS) exec1(cmd string) string {
	switch {
	case cmd == "/system identity print":
		return "  name: rds-test\n"
	case cmd == "/system resource print":
		return "                   uptime: 1d2h3m\n                  version: 7.16 (stable)\n               build-time: 2024-10-22 11:13:41\n"
	}
	if m := reAdd.FindStringSubmatch(cmd); m != nil {
		d := &testDisk{path: mustUnquote(m[1]), slot: mustUnquote(m[3]), model: "RDS file disk"}
		d.size, _ = strconv.ParseInt(m[2], 10, 64)
		if !f.parseExport(d, m[4]) {
			return "expected end of command (line 1 column 40)\n"
		}
		return f.add(d)
	}
	if m := reCopy.FindStringSubmatch(cmd); m != nil {
		src := f.find(mustUnquote(m[1]))
		if src == nil {
			return "failure: no such item\n"
		}
		d := &testDisk{path: mustUnquote(m[2]), slot: mustUnquote(m[3]), size: src.size, model: src.model}
		if !f.parseExport(d, m[4]) {
			return "expected end of command (line 1 column 40)\n"
		}
		return f.add(d)
	}
	if m := reCount.FindStringSubmatch(cmd); m != nil {
		return strconv.Itoa(len(f.selectEntries(m[1], conditions(m[2])))) + "\n"
	}
	if m := reWhere.FindStringSubmatch(cmd); m != nil {
		return f.print(m[1], conditions(m[2]))
	}
	if m := reSet.FindStringSubmatch(cmd); m != nil {
		d := f.find(mustUnquote(m[1]))
		if d == nil {
			return "" // [find] matched nothing: set on an empty list is silent
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		if n-d.size > f.poolSize-f.used() {
			return "failure: not enough space\n"
		}
		d.size = n
		f.files[fileName(d.path)] = n
		return ""
	}
	if m := reRm.FindStringSubmatch(cmd); m != nil {
		if f.ignoreRemove {
			return ""
		}
		slot := mustUnquote(m[1])
		for i, d := range f.disks {
			if d.slot == slot && (m[2] == "" || d.path == mustUnquote(m[2])) {
				f.disks = append(f.disks[:i], f.disks[i+1:]...)
				break
			}
		}
		return ""
	}
	if m := reFileRm.FindStringSubmatch(cmd); m != nil {
		if !f.ignoreRemove {
			delete(f.files, mustUnquote(m[1]))
		}
		return ""
	}
	return fmt.Sprintf("bad command name %s (line 1 column 2)\n", strings.Fields(cmd + " x")[0])
}

func (f *fakeRDS) add(d *testDisk) string {
	if f.find(d.slot) != nil {
		return "failure: disk with such slot already exists\n"
	}
	if _, ok := f.files[fileName(d.path)]; ok {
		return "failure: file already exists\n"
	}
	if d.size > f.poolSize-f.used() {
		return "failure: not enough space\n"
	}
	f.disks = append(f.disks, d)
	f.files[fileName(d.path)] = d.size
	return ""
}

// cond is one "key=value" or "key~regex" of a where clause; the clauses are
// or'ed, which is all the client sends.
type cond struct{ key, op, val string }

func (c cond) match(key, s string) bool {
	if c.key != key {
		return false
	}
	if c.op == "=" {
		return s == c.val
	}
	ok, _ := regexp.MatchString(c.val, s)
	return ok
}

func anyMatch(conds []cond, key, s string) bool {
	for _, c := range conds {
		if c.match(key, s) {
			return true
		}
	}
	return false
}

func conditions(where string) []cond {
	var conds []cond
	for _, c := range reCond.FindAllStringSubmatch(where, -1) {
		conds = append(conds, cond{key: c[1], op: c[2], val: mustUnquote(c[3])})
	}
	return conds
}

// selectEntries is what a print of menu with conds lists (and its
// count-only counts).
func (f *fakeRDS) selectEntries(menu string, conds []cond) [][]rprop {
	var entries [][]rprop
	if menu == "file" {
		names := make([]string, 0, len(f.files))
		for n := range f.files {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if anyMatch(conds, "name", n) {
				entries = append(entries, fileProps(n, f.files[n], n == "storage-pool/k8s", false))
			}
		}
		return entries
	}
	if anyMatch(conds, "mount-point", "storage-pool") || anyMatch(conds, "slot", "storage-pool") {
		entries = append(entries, []rprop{
			{key: "type", val: "partition"}, {key: "slot", val: "storage-pool", quoted: true},
			{key: "mount-point", val: "storage-pool", quoted: true}, {key: "file-system", val: "btrfs"},
			{key: "size", val: spaced(f.poolSize)}, {key: "free", val: spaced(f.poolSize - f.used())},
			{key: "use", val: fmt.Sprintf("%d%%", f.used()*100/f.poolSize)},
		})
	}
	for _, d := range f.disks {
		if anyMatch(conds, "slot", d.slot) || anyMatch(conds, "file-path", d.path) {
			entries = append(entries, diskProps(*d))
		}
	}
	return entries
}

func (f *fakeRDS) print(menu string, conds []cond) string {
	r := &renderer{width: 80, rng: f.rng, blank: true}
	if menu == "file" {
		return r.render("", f.selectEntries(menu, conds), nil)
	}
	return r.render("Flags: X - disabled; B - blocked", f.selectEntries(menu, conds), nil)
}
