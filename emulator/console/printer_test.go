package console

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/store"
)

// randomDisk draws a disk with values that exercise every printing rule:
// quotes, escapes, non-ASCII, paths that need quoting, long values that must be
// cut inside a token, and comments.
func randomDisk(rng *rand.Rand, id uint64) store.Disk {
	pick := func(opts ...string) string { return opts[rng.IntN(len(opts))] }
	long := strings.Repeat("x", rng.IntN(300))
	return store.Disk{
		ID:       id,
		Slot:     pick("pvc-a1", `we"ird`, "ü-slot", "x?$y", "pvc-"+long, ""),
		FilePath: pick("/storage-pool/k8s/pvc-a1.img", "/storage-pool/with space.img", "/storage-pool/"+long+".img", "/storage-pool/a\nb.img"),
		FileSize: []int64{0, 1, 1023, 1024, 1 << 20, 10 << 30, 1649267441664, 1<<62 + 12345}[rng.IntN(8)],
		Comment:  pick("", "", "hand made", "two\nlines\t\x01"),
		// Ports and NQNs as the store holds them.
		NVMeTCPExport:              rng.IntN(2) == 0,
		NVMeTCPServerPort:          []int{4420, 1, 65535}[rng.IntN(3)],
		NVMeTCPServerNQN:           pick("", "nqn.2000-02.com.mikrotik:pvc-a1", "nqn:"+long),
		NVMeTCPServerAllowHostName: pick("", "host-a", `a"b`),
	}
}

// TestStreamingPrinterMatchesProps: the streaming printer (writeDiskDetail on a
// detailWriter) prints byte for byte what the reference printer prints from
// diskProps and partitionProps, at every width, for hostile values too. A
// property added to one and not the other, or a wrap rule changed in one
// place, fails here.
func TestStreamingPrinterMatchesProps(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 1))
	pool := store.Pool{Name: "storage-pool", Size: 8 << 40, Used: 3 << 40}
	for round := 0; round < 300; round++ {
		n := rng.IntN(14)
		disks := make([]store.Disk, n)
		for i := range disks {
			disks[i] = randomDisk(rng, uint64(i+1))
		}
		withPartition := rng.IntN(2) == 0
		width := []int{0, 1, 20, 40, 79, 80, 81, 120, 512}[rng.IntN(9)]

		var entries []entry
		if withPartition {
			entries = append(entries, entry{props: partitionProps(pool)})
		}
		for _, d := range disks {
			entries = append(entries, entry{comment: d.Comment, props: diskProps(d)})
		}
		var want strings.Builder
		refRenderDetail(&want, flagsLegend, entries, width)

		var got strings.Builder
		w := newDetailWriter(&got, flagsLegend, len(entries), width)
		if withPartition {
			w.begin("", "")
			writePartitionDetail(w, pool)
			w.end()
		}
		for i := range disks {
			w.begin("", disks[i].Comment)
			writeDiskDetail(w, &disks[i])
			w.end()
		}
		if got.String() != want.String() {
			t.Fatalf("round %d, width %d: streaming printer differs\n--- got\n%s\n--- want\n%s", round, width, got.String(), want.String())
		}

		// Generic entries (the /file printer's path) with flags too.
		for i := range entries {
			entries[i].flags = []string{"", "X", "XB"}[rng.IntN(3)]
		}
		want.Reset()
		got.Reset()
		refRenderDetail(&want, "", entries, width)
		renderDetail(&got, "", entries, width)
		if got.String() != want.String() {
			t.Fatalf("round %d, width %d: renderDetail differs\n--- got\n%s\n--- want\n%s", round, width, got.String(), want.String())
		}
	}
}

// TestWrapTokensMatchesReference: wrapTokens (now on detailWriter's layout)
// cuts where it always did, for tokens of every length around the width.
func TestWrapTokensMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 2))
	for round := 0; round < 2000; round++ {
		tokens := make([]string, rng.IntN(8))
		for i := range tokens {
			tokens[i] = "k=" + strings.Repeat("v", rng.IntN(200))
		}
		width := 20 + rng.IntN(120)
		var want, got strings.Builder
		refWrapTokens(&want, " 0   ", "     ", tokens, width)
		wrapTokens(&got, " 0   ", "     ", tokens, width)
		if got.String() != want.String() {
			t.Fatalf("width %d, tokens %q:\n--- got\n%s\n--- want\n%s", width, tokens, got.String(), want.String())
		}
	}
}
