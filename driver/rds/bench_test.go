package rds

import (
	"context"
	"fmt"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/store"
)

// BenchmarkParseList10k: the client's side of a 10,000-disk ListDisks, the
// proven listing the reconciler reads: parsing the emulator's reply (at the
// 512 columns the client logs in with) into disks.
func BenchmarkParseList10k(b *testing.B) {
	emu := emulatortest.Start(b, emulatortest.Options{InMemory: true, PoolSize: 1 << 50})
	for i := 0; i < 10000; i++ {
		slot := fmt.Sprintf("pvc-%08d", i)
		if _, err := emu.Store().AddDisk(store.Disk{Slot: slot, FilePath: testBase + "/" + slot + ".img", FileSize: 1 << 30,
			NVMeTCPExport: true, NVMeTCPServerPort: 4420, NVMeTCPServerNQN: "nqn.2000-02.com.mikrotik:" + slot}); err != nil {
			b.Fatal(err)
		}
	}
	ls := []listing{diskListing(whereSlotLike("^pvc-"))}
	out, failed := emu.Exec(context.Background(), "admin", provenScript("", ls...))
	if failed {
		b.Fatal(out)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		es, err := parseProven(out, ParseOptions{}, ls)
		if err != nil || len(es[0]) != 10000 {
			b.Fatalf("%d entries, %v", len(es[0]), err)
		}
		for _, e := range es[0] {
			if _, err := diskFromEntry(e); err != nil {
				b.Fatal(err)
			}
		}
	}
}
