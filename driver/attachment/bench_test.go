package attachment

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// BenchmarkPublish measures one decision with 1,000 volumes already
// attached, which is what a busy controller sees.
func BenchmarkPublish(b *testing.B) {
	setup := func() (*Manager, []string, []string) {
		m := New(Options{Clock: clock.FromLibrary(libclock.NewMock())})
		vols, nodes := make([]string, 1000), make([]string, 1000)
		for i := range vols {
			vols[i], nodes[i] = fmt.Sprintf("pvc-%08d", i), fmt.Sprintf("node-%03d", i%50)
			if err := m.Publish(vols[i], nodes[i], SingleNode, 0); err != nil {
				b.Fatal(err)
			}
		}
		return m, vols, nodes
	}
	b.Run("idempotent", func(b *testing.B) {
		m, vols, nodes := setup()
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Publish(vols[i], nodes[i], SingleNode, 0); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % len(vols)
		}
	})
	b.Run("attach+detach", func(b *testing.B) {
		m, _, _ := setup()
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Publish("pvc-new", "node-new", SingleNode, 0); err != nil {
				b.Fatal(err)
			}
			m.Unpublish("pvc-new", "node-new")
		}
	})
	b.Run("conflict", func(b *testing.B) {
		m, vols, _ := setup()
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Publish(vols[i], "node-other", SingleNode, 0); err == nil {
				b.Fatal("expected a conflict")
			}
			i = (i + 1) % len(vols)
		}
	})
	b.Run("parallel-attach+detach", func(b *testing.B) {
		m, _, _ := setup()
		var id atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := id.Add(1)
			vol, node := fmt.Sprintf("pvc-par-%d", n), fmt.Sprintf("node-par-%d", n)
			for pb.Next() {
				if err := m.Publish(vol, node, SingleNode, 0); err != nil {
					b.Fatal(err)
				}
				m.Unpublish(vol, node)
			}
		})
	})
}

// BenchmarkSweep measures the reconciler's periodic pass over 10,000 claims
// on 500 nodes: 9,000 single-node claims and 500 live migrations.
func BenchmarkSweep(b *testing.B) {
	setup := func(window time.Duration) (*Manager, *libclock.Mock) {
		clk := libclock.NewMock()
		m := New(Options{Clock: clock.FromLibrary(clk), MigrationWindow: window})
		claims := 0
		for i := range 9000 {
			if err := m.Publish(fmt.Sprintf("pvc-%08d", i), fmt.Sprintf("node-%03d", i%500), SingleNode, 0); err != nil {
				b.Fatal(err)
			}
			claims++
		}
		for i := range 500 {
			v := fmt.Sprintf("vm-%08d", i)
			for _, n := range []int{i % 500, (i + 1) % 500} {
				if err := m.Publish(v, fmt.Sprintf("node-%03d", n), MultiNodeBlock, 0); err != nil {
					b.Fatal(err)
				}
				claims++
			}
		}
		if claims != 10000 || len(m.Snapshot()) != 10000 {
			b.Fatalf("set up %d claims", len(m.Snapshot()))
		}
		clk.Add(time.Minute)
		return m, clk
	}
	b.Run("steady", func(b *testing.B) {
		m, _ := setup(time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			if r := m.Sweep(); len(r.Cleared)+len(r.Overdue) != 0 {
				b.Fatal(r)
			}
		}
	})
	b.Run("500-overdue", func(b *testing.B) {
		m, _ := setup(time.Second)
		b.ReportAllocs()
		for b.Loop() {
			if r := m.Sweep(); len(r.Overdue) != 500 {
				b.Fatal(len(r.Overdue))
			}
		}
	})
	b.Run("gone-node-within-grace", func(b *testing.B) {
		m, _ := setup(time.Hour)
		m.NodeGone("node-007")
		b.ReportAllocs()
		for b.Loop() {
			if r := m.Sweep(); len(r.Cleared) != 0 {
				b.Fatal(r)
			}
		}
	})
}
