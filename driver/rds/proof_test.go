package rds

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/faults"
)

// hostileTransport sits between a Client and a fakeRDS. For each command it
// takes the next byte of script to pick how the reply is mangled (the
// command itself runs: a mangled reply to a remove still removed), and it
// records every destructive command together with the true state it met:
// that is how a test proves that nothing was destroyed without a reason.
type hostileTransport struct {
	f      *fakeRDS
	script []byte
	mu     sync.Mutex
	n      int
	// violations are destructive commands the true state did not justify.
	violations []string
	// log is every command sent, in order.
	log []string
}

var (
	reFileRemoveName = regexp.MustCompile(`^/file remove \[find name=` + qre + `\]$`)
	hostileModes     = []faults.ReplyMode{"", faults.ReplyEmpty, faults.ReplyLegendOnly, faults.ReplyDropLegend,
		faults.ReplyTruncate, faults.ReplyDuplicate, faults.ReplyGarble, faults.ReplyNoExit, faults.ReplyCut, firstEntryOnly}
)

// firstEntryOnly cuts a listing cleanly after its first entry, with a clean
// exit: the one truncation no parser can see, since it reads like a shorter
// listing.
const firstEntryOnly faults.ReplyMode = "first-entry-only"

func cutAfterFirstEntry(out string) string {
	lines := strings.SplitAfter(out, "\n")
	entries := 0
	for i, l := range lines {
		if t := strings.TrimLeft(l, " "); t != "" && t[0] >= '0' && t[0] <= '9' && len(l)-len(t) < 4 {
			if entries++; entries == 2 {
				return strings.Join(lines[:i], "")
			}
		}
	}
	return out
}

func (h *hostileTransport) Run(ctx context.Context, cmd string) (string, error) {
	h.mu.Lock()
	var b byte
	if h.n < len(h.script) {
		b = h.script[h.n]
	}
	h.n++
	// Scripts are checked command by command. The state met is the state
	// before the script: a file removal in a script after a disk removal
	// would be judged before that disk went, which only errs towards a
	// violation.
	for _, part := range splitScript(cmd) {
		m := reFileRemoveName.FindStringSubmatch(part)
		if m == nil {
			continue
		}
		name := mustUnquote(m[1])
		h.f.mu.Lock()
		for _, d := range h.f.disks {
			if fileName(d.path) == name {
				h.violations = append(h.violations, fmt.Sprintf("%s while disk %s uses it (after %q)", cmd, d.slot, h.log))
			}
		}
		h.f.mu.Unlock()
	}
	h.log = append(h.log, cmd)
	h.mu.Unlock()
	out, err := h.f.Run(ctx, cmd)
	if err != nil {
		return out, err
	}
	mode := hostileModes[int(b)%len(hostileModes)]
	switch mode {
	case "":
		return out, nil
	case firstEntryOnly:
		return cutAfterFirstEntry(out), nil
	}
	mangled, noExit := faults.Mangle(faults.ReplyFault{Mode: mode, Seed: uint64(b)}, out)
	if noExit {
		// What the SSH transport reports for a session without exit status.
		return "", fmt.Errorf("%w: %w: no exit status", ErrUnavailable, ErrIncompleteReply)
	}
	return mangled, nil
}

// hostileWorld is a fake RDS holding a live volume, a volume to delete, a
// foreign disk pointing at one of our paths, and leftovers.
func hostileWorld() *fakeRDS {
	f := newFakeRDS()
	add := func(slot, path string) {
		f.disks = append(f.disks, &testDisk{slot: slot, path: path, size: 1 << 20, model: "m", export: true, port: 4420,
			nqn: "nqn.2000-02.com.mikrotik:" + slot})
		f.files[fileName(path)] = 1 << 20
	}
	add("live", testBase+"/live.img")
	add("doomed", testBase+"/doomed.img")
	add("squatter", testBase+"/taken.img") // someone else's disk on a path we would own
	f.files["storage-pool/k8s/leftover.img"] = 1 << 20
	return f
}

// hostileOps are the read-then-act paths of the client.
var hostileOps = []struct {
	name string
	op   func(context.Context, *Client) error
}{
	{"delete a disk", func(ctx context.Context, c *Client) error { return c.DeleteDisk(ctx, "doomed", testBase+"/doomed.img") }},
	{"delete a gone disk whose file another disk uses", func(ctx context.Context, c *Client) error {
		return c.DeleteDisk(ctx, "taken", testBase+"/taken.img")
	}},
	{"delete a leftover file", func(ctx context.Context, c *Client) error {
		return c.DeleteDisk(ctx, "leftover", testBase+"/leftover.img")
	}},
	{"create over a file another disk uses", func(ctx context.Context, c *Client) error {
		_, err := c.CreateDisk(ctx, req("taken", 1<<20))
		return err
	}},
	{"create over a leftover", func(ctx context.Context, c *Client) error {
		_, err := c.CreateDisk(ctx, req("leftover", 1<<20))
		return err
	}},
	{"copy over a file another disk uses", func(ctx context.Context, c *Client) error {
		_, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: "live", Slot: "taken", FilePath: testBase + "/taken.img"})
		return err
	}},
	{"expand", func(ctx context.Context, c *Client) error {
		_, err := c.ResizeDisk(ctx, "live", 2<<20)
		return err
	}},
}

// checkHostileOutcome: whatever the replies were, the disks that must live
// do, nothing was removed under a live disk, and the errors are sentinels.
func checkHostileOutcome(t *testing.T, h *hostileTransport, name string, err error) {
	t.Helper()
	if len(h.violations) > 0 {
		t.Fatalf("%s: destructive command without proof: %v", name, h.violations)
	}
	for _, slot := range []string{"live", "squatter"} {
		if h.f.find(slot) == nil {
			t.Fatalf("%s: disk %s was removed", name, slot)
		}
	}
	for _, file := range []string{"storage-pool/k8s/live.img", "storage-pool/k8s/taken.img"} {
		if _, ok := h.f.files[file]; !ok {
			t.Fatalf("%s: file %s of a live disk was removed", name, file)
		}
	}
	if err != nil {
		kinds := []error{ErrNotFound, ErrCapacity, ErrUnavailable, ErrRejected, ErrExists, ErrInUse, ErrInvalidArgument, ErrFailed}
		ok := false
		for _, k := range kinds {
			ok = ok || errors.Is(err, k)
		}
		if !ok {
			t.Fatalf("%s: error wraps no sentinel: %v", name, err)
		}
	}
}

// TestNoDestructionWithoutProof drives each read-then-act path with every
// reply mangled by every mode in turn, then with the nth reply alone mangled,
// for every n: nothing that must live may be destroyed, whatever the replies.
func TestNoDestructionWithoutProof(t *testing.T) {
	for _, op := range hostileOps {
		for m := 1; m < len(hostileModes); m++ {
			all := make([]byte, 64)
			for i := range all {
				all[i] = byte(m)
			}
			scripts := [][]byte{all}
			for n := 0; n < 12; n++ {
				one := make([]byte, 64)
				one[n] = byte(m + len(hostileModes)*n) // the same mode, another seed
				scripts = append(scripts, one)
			}
			for _, script := range scripts {
				h := &hostileTransport{f: hostileWorld(), script: script}
				c, _ := newTestClient(t, h)
				err := op.op(context.Background(), c)
				checkHostileOutcome(t, h, fmt.Sprintf("%s / %s / %v", op.name, hostileModes[m], script[:12]), err)
			}
		}
	}
}

// TestTheSquatterIsRefusedCleanly: with honest replies, the paths that meet
// another disk on our path refuse with ErrInUse and change nothing.
func TestTheSquatterIsRefusedCleanly(t *testing.T) {
	for _, op := range []int{1, 3, 5} {
		op := hostileOps[op]
		h := &hostileTransport{f: hostileWorld()}
		c, _ := newTestClient(t, h)
		if err := op.op(context.Background(), c); !errors.Is(err, ErrInUse) {
			t.Errorf("%s: %v, want ErrInUse", op.name, err)
		}
		for _, cmd := range h.log {
			if strings.Contains(cmd, " remove ") || strings.HasPrefix(cmd, "/disk add") {
				t.Errorf("%s: sent %s", op.name, cmd)
			}
		}
	}
}

// FuzzDestructiveNeedsProof: arbitrary manglings of arbitrary replies of the
// client's read-then-act paths never destroy what must live.
func FuzzDestructiveNeedsProof(f *testing.F) {
	for i := range hostileOps {
		f.Add(uint8(i), []byte{})
		f.Add(uint8(i), []byte{2, 2, 2, 2, 2, 2, 2, 2})
		f.Add(uint8(i), []byte{0, 1, 0, 4, 0, 5, 0, 6, 0, 7})
	}
	f.Fuzz(func(t *testing.T, which uint8, script []byte) {
		op := hostileOps[int(which)%len(hostileOps)]
		h := &hostileTransport{f: hostileWorld(), script: script}
		c, err := NewClient(h, ClientOptions{BasePath: testBase})
		if err != nil {
			t.Fatal(err)
		}
		err = op.op(context.Background(), c)
		checkHostileOutcome(t, h, op.name, err)
	})
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int{"0\n": 0, "12\r\n": 12, "  3 \n\n": 3} {
		if got, err := ParseCount(in); err != nil || got != want {
			t.Errorf("ParseCount(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseCount(""); !errors.Is(err, ErrIncompleteReply) {
		t.Errorf("empty count: %v", err)
	}
	for _, bad := range []string{"0\n0\n", "Flags: X - disabled\n", "-1", "1e3", "12345678901"} {
		if _, err := ParseCount(bad); !errors.Is(err, ErrFailed) {
			t.Errorf("ParseCount(%q) = %v, want ErrFailed", bad, err)
		}
	}
}

// TestMissingPropertiesAreErrors: a disk entry without file-path (a cut reply,
// or a partition answering a slot query) is a parse error naming the
// property, never a disk with an empty path, and a delete meeting it removes
// nothing.
func TestMissingPropertiesAreErrors(t *testing.T) {
	f := hostileWorld()
	strip := regexp.MustCompile(`(?m)file-path=\S+`)
	var sent []string
	tr := transportFunc(func(ctx context.Context, cmd string) (string, error) {
		sent = append(sent, cmd)
		out, err := f.Run(ctx, cmd)
		return strip.ReplaceAllString(strings.ReplaceAll(out, "\n     ", " "), ""), err
	})
	c, _ := newTestClient(t, tr)
	ctx := context.Background()
	if _, err := c.GetDisk(ctx, "doomed"); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "file-path") {
		t.Fatalf("GetDisk = %v, want ErrFailed naming file-path", err)
	}
	if err := c.DeleteDisk(ctx, "doomed", testBase+"/doomed.img"); !errors.Is(err, ErrFailed) {
		t.Fatalf("DeleteDisk = %v, want ErrFailed", err)
	}
	for _, cmd := range sent {
		if strings.Contains(cmd, " remove ") {
			t.Fatalf("sent %s after an unreadable reply", cmd)
		}
	}
}

// TestProvenReplyCutAnywhereProvesNothing: a proven reply (listings, each
// followed by its count) cut at any byte, with a clean exit, is refused, or
// reads exactly as the whole reply (a cut that took only the final newline).
// Putting a count before its listing fails this: a cut inside the last
// entry would leave an entry with a shortened path that matches its count.
func TestProvenReplyCutAnywhereProvesNothing(t *testing.T) {
	f := hostileWorld()
	ls := []listing{diskListing(whereView("doomed", testBase+"/taken.img", "storage-pool")), fileListing(whereFile(testBase + "/doomed.img"))}
	out, err := f.Run(context.Background(), provenScript("", ls...))
	if err != nil {
		t.Fatal(err)
	}
	whole, err := parseProven(out, ParseOptions{}, ls)
	if err != nil || len(whole[0]) != 3 || len(whole[1]) != 1 {
		t.Fatalf("whole reply: %v, %v\n%s", whole, err, out)
	}
	for n := 0; n < len(out); n++ {
		got, err := parseProven(out[:n], ParseOptions{}, ls)
		if err == nil && fmt.Sprint(got) != fmt.Sprint(whole) {
			t.Fatalf("cut at %d of %d accepted as a different answer:\n%q\n%v", n, len(out), out[:n], got)
		}
		if err != nil && !errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrFailed) {
			t.Fatalf("cut at %d: error wraps no sentinel: %v", n, err)
		}
	}
	// Entries left out between entries, or a listing emptied, fail the count.
	second := regexp.MustCompile(`(?s)\n 1 .*?\n\n`)
	for _, mangled := range []string{cutAfterFirstEntry(out), second.ReplaceAllString(out, "\n\n")} {
		if mangled == out {
			t.Fatal("the mangling changed nothing")
		}
		if _, err := parseProven(mangled, ParseOptions{}, ls); err == nil {
			t.Fatalf("mangled reply accepted:\n%s", mangled)
		}
	}
}
