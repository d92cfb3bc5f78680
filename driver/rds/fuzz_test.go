package rds

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
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
	}
	return ds
}

// FuzzRoundTrip generates disks and files, renders them the way RouterOS
// prints (random widths, boundary wraps and hard cuts anywhere), parses them
// back and requires every field to land on the right disk unchanged.
func FuzzRoundTrip(f *testing.F) {
	for i := uint64(0); i < 16; i++ {
		f.Add(i, uint16(80))
	}
	f.Add(uint64(99), uint16(512))
	f.Add(uint64(7), uint16(12))
	f.Fuzz(func(t *testing.T, seed uint64, w uint16) {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		// At widths below ~40 a property moved to a fresh line can have its
		// key cut, which no rule can tell from a cut value; RouterOS uses 80
		// or 512 columns, where every key fits after the indentation.
		width := 40 + int(w)%600
		ds := genDisks(r)
		flags := make([]string, len(ds))
		entries := make([][]rprop, len(ds))
		for i, d := range ds {
			flags[i] = []string{"", "", "X", "B", "XB"}[r.IntN(5)]
			entries[i] = diskProps(d)
		}
		rng := r
		if r.IntN(4) == 0 {
			rng = nil // boundary wraps only, like a 512-column terminal
		}
		rend := &renderer{width: width, rng: rng, blank: r.IntN(3) != 0}
		out := rend.render("Flags: X - disabled; B - blocked", entries, flags)

		widths := []int{width}
		if width > DefaultWrapWidth {
			widths = append(widths, DefaultWrapWidth) // what the client uses
		}
		for _, pw := range widths {
			got, err := ParseDetail(out, ParseOptions{Width: pw})
			if err != nil {
				t.Fatalf("parse at %d (rendered at %d): %v\n%s", pw, width, err, out)
			}
			if len(got) != len(ds) {
				t.Fatalf("parse at %d: %d entries, want %d\n%s", pw, len(got), len(ds), out)
			}
			for i, e := range got {
				d, err := diskFromEntry(e)
				if err != nil {
					t.Fatalf("entry %d: %v\n%s", i, err, out)
				}
				want := ds[i]
				model, _ := e.Get("model")
				if e.Index != i || e.Flags != flags[i] || d.Slot != want.slot || d.FilePath != want.path || d.Size != want.size ||
					d.Export != want.export || model != want.model || (want.export && (d.Port != want.port || d.NQN != want.nqn)) {
					t.Fatalf("parse at %d (rendered at %d) entry %d:\n got %+v model=%q flags=%q\nwant %+v flags=%q\n%s", pw, width, i, d, model, e.Flags, want, flags[i], out)
				}
				if d.FileSize != humanSize(want.size) {
					t.Fatalf("entry %d file-size %q want %q", i, d.FileSize, humanSize(want.size))
				}
			}
		}

		// /file output: unquoted values with spaces and both time formats.
		var files [][]rprop
		var names []string
		for i, d := range ds {
			name := fileName(d.path)
			names = append(names, name)
			files = append(files, fileProps(name, d.size, false, i%2 == 1))
		}
		out = rend.render("", files, nil)
		got, err := ParseDetail(out, ParseOptions{Width: width})
		if err != nil || len(got) != len(files) {
			t.Fatalf("files: %v (%d entries)\n%s", err, len(got), out)
		}
		for i, e := range got {
			fl, err := fileFromEntry(e)
			wantTime := time.Date(2025, 11, 12, 0, 36, 13, 0, time.UTC)
			if i%2 == 1 {
				wantTime = time.Date(2025, 1, 2, 10, 30, 45, 0, time.UTC)
			}
			if err != nil || fl.Name != names[i] || fl.Type != ".img file" || fl.SizeText != humanSize(ds[i].size) || !fl.Modified.Equal(wantTime) {
				t.Fatalf("file %d: %+v %v\n%s", i, fl, err, out)
			}
		}
	})
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
