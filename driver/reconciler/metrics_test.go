package reconciler

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rds-csi/rds-csi/driver/attachment"
)

func testutilGauge(g prometheus.Gauge) float64     { return testutil.ToFloat64(g) }
func testutilCounter(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil, objs(list(node("n1"), node("n2")), attachedVolume("vol-1", "n1"), list(pv("vol-2", false)))...)
	e.start()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(e.att.Publish("vol-2", "n2", attachment.SingleNode, 0))
	if err := e.att.Publish("vol-1", "n2", attachment.SingleNode, 0); err == nil {
		t.Fatal("conflicting publish accepted")
	}
	e.att.Unpublish("vol-2", "n2")
	e.updateNode("n1", outOfServiceTaint(e.clk.Now()))
	e.reconcile()
	e.clk.Add(10 * time.Second)
	e.updateNode("n1", untaint)
	e.reconcile()

	want := `
# HELP rds_csi_attachment_attach_total Publish decisions by status (success, conflict).
# TYPE rds_csi_attachment_attach_total counter
rds_csi_attachment_attach_total{status="conflict"} 1
rds_csi_attachment_attach_total{status="success"} 1
# HELP rds_csi_attachment_conflicts_total Publishes refused because another node holds the volume.
# TYPE rds_csi_attachment_conflicts_total counter
rds_csi_attachment_conflicts_total 1
# HELP rds_csi_attachment_detach_total Unpublishes by status (they cannot fail, so only success).
# TYPE rds_csi_attachment_detach_total counter
rds_csi_attachment_detach_total{status="success"} 1
# HELP rds_csi_attachment_grace_period_used_total Nodes that came back while their claims were kept by the grace period.
# TYPE rds_csi_attachment_grace_period_used_total counter
rds_csi_attachment_grace_period_used_total 1
# HELP rds_csi_attachment_reconcile_total Reconciler runs and what they did, by action.
# TYPE rds_csi_attachment_reconcile_total counter
rds_csi_attachment_reconcile_total{action="claim_conflict"} 0
rds_csi_attachment_reconcile_total{action="claim_dropped"} 0
rds_csi_attachment_reconcile_total{action="claim_restored"} 0
rds_csi_attachment_reconcile_total{action="node_back"} 1
rds_csi_attachment_reconcile_total{action="node_gone"} 1
rds_csi_attachment_reconcile_total{action="run"} 3
rds_csi_attachment_reconcile_total{action="stale_cleared"} 0
rds_csi_attachment_reconcile_total{action="stuck_finalizer"} 0
# HELP rds_csi_attachment_reconcile_errors_total Reconciler runs (reconcile, startup_rebuild) that met API errors; the decisions they touched were postponed.
# TYPE rds_csi_attachment_reconcile_errors_total counter
rds_csi_attachment_reconcile_errors_total{operation="reconcile"} 0
rds_csi_attachment_reconcile_errors_total{operation="startup_rebuild"} 0
# HELP rds_csi_attachment_stale_cleared_total Claims of gone nodes cleared after their grace period.
# TYPE rds_csi_attachment_stale_cleared_total counter
rds_csi_attachment_stale_cleared_total 0
# HELP rds_csi_migration_active Volumes currently held by a migration source and target.
# TYPE rds_csi_migration_active gauge
rds_csi_migration_active 0
# HELP rds_csi_migrations_total Migrations by result (completed, timed_out).
# TYPE rds_csi_migrations_total counter
rds_csi_migrations_total{result="completed"} 0
rds_csi_migrations_total{result="timed_out"} 0
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want),
		"rds_csi_attachment_attach_total", "rds_csi_attachment_conflicts_total", "rds_csi_attachment_detach_total",
		"rds_csi_attachment_grace_period_used_total", "rds_csi_attachment_reconcile_total", "rds_csi_attachment_reconcile_errors_total",
		"rds_csi_attachment_stale_cleared_total", "rds_csi_migration_active", "rds_csi_migrations_total"); err != nil {
		t.Fatal(err)
	}
	// One start-up rebuild and two reconciles, timed on the mock clock.
	if n := testutil.CollectAndCount(e.r.metrics.duration); n != 2 {
		t.Fatalf("%d duration series, want 2 (reconcile, startup_rebuild)", n)
	}
	if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) != 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
