package rds

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseDetail feeds arbitrary and mutated RouterOS output to every
// parser. It must never panic, and whatever it accepts must be well formed.
func FuzzParseDetail(f *testing.F) {
	for _, name := range []string{"disk-print-detail-one.txt", "disk-print-detail-two.txt", "disk-print-empty.txt", "pool-capacity.txt", "file-print-detail.txt"} {
		s := readSample(f, name)
		f.Add(s, uint8(80))
		f.Add(s, uint8(0))
		f.Add(strings.ReplaceAll(s, "\n     ", "\n"), uint8(80))
		f.Add(s[:len(s)/2], uint8(40))
	}
	f.Add(" 0   a=\"\\\n     x\" b=1\n", uint8(10))
	f.Add("failure: not enough space\n", uint8(80))
	f.Add(" 0 X ;;; c\n     a=1\n\n\n 1   \n", uint8(3))
	f.Fuzz(func(t *testing.T, out string, width uint8) {
		entries, err := ParseDetail(out, ParseOptions{Width: int(width)})
		if err == nil {
			for _, e := range entries {
				seen := map[string]bool{}
				for _, p := range e.Properties {
					if !isKeyShaped(p.Key) || seen[p.Key] {
						t.Fatalf("bad or repeated key %q in %#v", p.Key, e)
					}
					seen[p.Key] = true
				}
				_, _ = diskFromEntry(e)
				_, _ = fileFromEntry(e)
				_, _ = capacityFromEntry(e)
			}
		}
		_, _ = Classify(out)
		_, _ = ParseKeyValue(out)
		_, _ = ParseBytes(out)
		_, _ = ParseHumanSize(out)
		_, _ = ParseTime(out)
	})
}

const slotAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789._-"

func randSlot(r *rand.Rand, i int) string {
	n := 1 + r.IntN(50)
	b := []byte{slotAlphabet[r.IntN(36)]}
	for len(b) < n {
		b = append(b, slotAlphabet[r.IntN(len(slotAlphabet))])
	}
	return string(b) + "-" + strconv.Itoa(i) // unique
}

func randModel(r *rand.Rand) string {
	n := r.IntN(90)
	b := make([]byte, n)
	for i := range b {
		switch r.IntN(20) {
		case 0:
			b[i] = byte(r.IntN(0x20)) // control
		case 1:
			b[i] = byte(0x80 + r.IntN(0x80))
		case 2:
			b[i] = "\"\\= "[r.IntN(4)]
		default:
			b[i] = byte(0x20 + r.IntN(0x5f))
		}
	}
	return string(b)
}

func genDisks(r *rand.Rand) []testDisk {
	n := 1 + r.IntN(6)
	ds := make([]testDisk, n)
	for i := range ds {
		slot := randSlot(r, i)
		dir := "/storage-pool/k8s"
		if r.IntN(3) == 0 {
			dir += "/" + randSlot(r, i)
		}
		ds[i] = testDisk{
			slot:   slot,
			path:   dir + "/" + slot + ".img",
			model:  randModel(r),
			size:   r.Int64N(1 << 52),
			export: r.IntN(4) != 0,
			port:   1 + r.IntN(65535),
			nqn:    "nqn.2000-02.com.mikrotik:" + slot,
		}
		if r.IntN(3) == 0 {
			ds[i].allowHost = fmt.Sprintf("nqn.2014-08.org.nvmexpress:uuid:%08x-%04x-%04x-%04x-%012x",
				r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), r.IntN(1<<16), r.Int64N(1<<48))
		}
	}
	return ds
}

// FuzzRoundTrip generates disks and files and renders them as RouterOS
// prints them at every wrap column from 40 to 200 and at one wider column,
// with boundary wraps and hard cuts anywhere (inside keys and values, on the
// separating space, one column short of the width, at it or one past it). Each
// rendering is parsed back at its own column and at DefaultWrapWidth, which
// is what the client uses whatever the terminal did, and every property of
// every entry must come back in order, unchanged, on the right entry.
//
// Below 40 columns a property moved to a fresh line can have its key cut,
// which no rule can tell from a cut value; RouterOS uses 80 or 512 columns.
func FuzzRoundTrip(f *testing.F) {
	for i := uint64(0); i < 8; i++ {
		f.Add(i, uint16(312))
	}
	f.Fuzz(func(t *testing.T, seed uint64, wide uint16) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		ds := genDisks(r)
		flags := make([]string, len(ds))
		disks := make([][]rprop, len(ds))
		files := make([][]rprop, len(ds))
		for i, d := range ds {
			flags[i] = []string{"", "", "X", "B", "XB"}[r.IntN(5)]
			disks[i] = diskProps(d)
			files[i] = fileProps(fileName(d.path), d.size, r.IntN(8) == 0, i%2 == 1)
		}
		columns := make([]int, 0, 162)
		for c := 40; c <= 200; c++ {
			columns = append(columns, c)
		}
		columns = append(columns, 201+int(wide)%440)
		for _, col := range columns {
			cr := rand.New(rand.NewPCG(seed, uint64(col)))
			rend := &renderer{width: col, rng: cr, blank: cr.IntN(3) != 0}
			if cr.IntN(4) == 0 {
				rend.rng = nil // boundary wraps only, like a 512-column terminal
			}
			out := rend.render("Flags: X - disabled; B - blocked", disks, flags)
			for _, e := range roundTrip(t, out, col, disks, flags) {
				d, err := diskFromEntry(e)
				want := ds[e.Index]
				if err != nil || d.Slot != want.slot || d.FilePath != want.path || d.Size != want.size || d.Export != want.export ||
					(want.export && (d.Port != want.port || d.NQN != want.nqn)) {
					t.Fatalf("column %d entry %d: %+v, %v; want %+v\n%s", col, e.Index, d, err, want, out)
				}
			}
			out = rend.render("", files, nil)
			for _, e := range roundTrip(t, out, col, files, nil) {
				if _, err := fileFromEntry(e); err != nil {
					t.Fatalf("column %d file %d: %v\n%s", col, e.Index, err, out)
				}
			}
		}
	})
}

// roundTrip parses out, rendered at column col, at col and at
// DefaultWrapWidth, and requires exactly the entries and properties it was
// rendered from. It returns the entries of the DefaultWrapWidth parse.
func roundTrip(t *testing.T, out string, col int, want [][]rprop, flags []string) []Entry {
	t.Helper()
	var got []Entry
	for _, pw := range []int{col, DefaultWrapWidth} {
		es, err := ParseDetail(out, ParseOptions{Width: pw})
		if err != nil {
			t.Fatalf("rendered at %d, parsed at %d: %v\n%s", col, pw, err, out)
		}
		if len(es) != len(want) {
			t.Fatalf("rendered at %d, parsed at %d: %d entries, want %d\n%s", col, pw, len(es), len(want), out)
		}
		for i, e := range es {
			f := ""
			if flags != nil {
				f = flags[i]
			}
			if e.Index != i || e.Flags != f || len(e.Properties) != len(want[i]) {
				t.Fatalf("rendered at %d, parsed at %d: entry %d is #%d flags %q with %d properties, want flags %q and %d\n%s",
					col, pw, i, e.Index, e.Flags, len(e.Properties), f, len(want[i]), out)
			}
			for j, p := range e.Properties {
				w := want[i][j]
				if p.Key != w.key || p.Value != w.val || p.Quoted != w.quoted {
					t.Fatalf("rendered at %d, parsed at %d: entry %d property %d is %s=%q (quoted %v), want %s=%q (quoted %v)\n%s",
						col, pw, i, j, p.Key, p.Value, p.Quoted, w.key, w.val, w.quoted, out)
				}
			}
		}
		got = es
	}
	return got
}

// FuzzQuote checks that any string, quoted, is one RouterOS string literal
// that decodes back to itself and cannot break out of the command.
func FuzzQuote(f *testing.F) {
	for _, s := range injectionStrings() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkQuoted(t, s)
	})
}

func checkQuoted(t *testing.T, s string) {
	t.Helper()
	q := Quote(s)
	for i := 0; i < len(q); i++ {
		if q[i] < 0x20 || q[i] > 0x7e {
			t.Fatalf("Quote(%q) contains byte 0x%02x", s, q[i])
		}
	}
	toks, err := lexRouterOS("x=" + q + " y=1")
	if err != nil {
		t.Fatalf("lex %s: %v", q, err)
	}
	want := []lexTok{{kind: tokWord, text: "x=" + s}, {kind: tokWord, text: "y=1"}}
	if fmt.Sprint(toks) != fmt.Sprint(want) {
		t.Fatalf("Quote(%q) = %s lexes as %v", s, q, toks)
	}
}
