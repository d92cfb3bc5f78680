package reconciler

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
)

// benchObjects is a large cluster: vols attached volumes spread over nodes,
// every tenth one a live migration (RWX block on two nodes).
func benchObjects(nodes, vols int) []runtime.Object {
	o := make([]runtime.Object, 0, nodes+2*vols+vols/10)
	for i := range nodes {
		o = append(o, node(fmt.Sprintf("node-%03d", i)))
	}
	for i := range vols {
		vol := fmt.Sprintf("vol-%05d", i)
		n := fmt.Sprintf("node-%03d", i%nodes)
		mig := i%10 == 0
		o = append(o, pv(vol, mig), va(vol, n, true, t0.Add(-time.Hour)))
		if mig {
			o = append(o, va(vol, fmt.Sprintf("node-%03d", (i+1)%nodes), true, t0.Add(-time.Minute)))
		}
	}
	return o
}

// BenchmarkReconcile10k is one periodic run over 10,000 volumes on 500
// nodes with nothing to do: the steady-state cost every Interval.
func BenchmarkReconcile10k(b *testing.B) {
	e := newEnv(b, nil, benchObjects(500, 10000)...)
	e.start()
	if n := len(e.att.Snapshot()); n != 11000 {
		b.Fatalf("%d claims, want 11000", n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if res := e.r.ReconcileOnce(e.ctx); res.Skipped != "" || res.changed() {
			b.Fatalf("unexpected run: %+v", res)
		}
	}
}

// BenchmarkStartupRebuild10k is Start against a cluster with 11,000
// VolumeAttachments: informer list and sync, rebuild, start-up
// reconciliation. It is what stands between a controller restart and the
// first publish it can serve.
func BenchmarkStartupRebuild10k(b *testing.B) {
	objs := benchObjects(500, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e := newEnv(b, nil, objs...)
		b.StartTimer()
		if err := e.r.Start(e.ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n := len(e.att.Snapshot()); n != 11000 {
			b.Fatalf("%d claims, want 11000", n)
		}
		e.stop()
		b.StartTimer()
	}
}
