package driver

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// TestFencerGauges: the pending-revocation gauges follow the bookkeeping
// through marks and applies, including the start-up sweep and a mark that
// arrives while an apply of the same volume runs.
func TestFencerGauges(t *testing.T) {
	var f fencer
	reg := prometheus.NewPedanticRegistry()
	if err := f.register(reg); err != nil {
		t.Fatal(err)
	}
	want := func(step string, pending, sweep float64) {
		t.Helper()
		if got := testutil.ToFloat64(f.pendingGauge); got != pending {
			t.Errorf("%s: %s = %v, want %v", step, metricPendingRevocations, got, pending)
		}
		if got := testutil.ToFloat64(f.sweepGauge); got != sweep {
			t.Errorf("%s: %s = %v, want %v", step, metricRevocationSweep, got, sweep)
		}
	}
	want("registered", 0, 0)
	f.markAll()
	want("start-up", 0, 1)
	f.mark("pvc-1")
	f.mark("pvc-2")
	f.mark("pvc-1")
	want("two volumes marked", 2, 1)
	gen, _, _ := f.snapshot()
	f.mark("pvc-2") // after the apply computed its list
	f.done("pvc-1", gen)
	f.done("pvc-2", gen)
	want("one applied, one marked again", 1, 1)
	f.doneAll(gen)
	want("sweep done", 1, 0)
	gen, _, _ = f.snapshot()
	f.done("pvc-2", gen)
	want("all applied", 0, 0)
	if n, err := testutil.GatherAndCount(reg, metricPendingRevocations, metricRevocationSweep); err != nil || n != 2 {
		t.Fatalf("gathered %d series, %v; want both gauges", n, err)
	}
	if err := (&fencer{}).register(reg); err == nil {
		t.Fatal("a second registration on one registry was accepted")
	}
}

// TestDataPlaneStatusForAccessControl: NodeStage's codes when the loop data
// plane applies the export's allow-list. A refused host is
// FAILED_PRECONDITION (the CSI spec's code for a volume published
// elsewhere: the storage follows another node's claim, and the kubelet
// retries); the allow-list unreadable because RDS is down is UNAVAILABLE,
// never INTERNAL.
func TestDataPlaneStatusForAccessControl(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("loop: attach: %w", dataplane.ErrHostNotAllowed), codes.FailedPrecondition},
		{fmt.Errorf("loop: attach: read the export's allowed hosts: %w", &rds.CommandError{Verb: "print", Kind: rds.ErrUnavailable}), codes.Unavailable},
		{fmt.Errorf("loop: attach: read the export's allowed hosts: %w", rds.ErrNotFound), codes.NotFound},
	} {
		if got := status.Code(dataPlaneStatus("stage", tc.err)); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
}
