package reconciler

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values. Every label has a fixed set, pre-created so that a series
// exists at zero before its first increment (rate() needs both ends).
const (
	statusSuccess  = "success"
	statusConflict = "conflict"

	actionRun            = "run"
	actionNodeGone       = "node_gone"
	actionNodeBack       = "node_back"
	actionStaleCleared   = "stale_cleared"
	actionClaimRestored  = "claim_restored"
	actionClaimDropped   = "claim_dropped"
	actionClaimConflict  = "claim_conflict"
	actionStuckFinalizer = "stuck_finalizer"

	resultCompleted = "completed"
	resultTimedOut  = "timed_out"
)

// metrics are counted from events and runs, never computed on scrape, so
// a scrape does no I/O and takes no attachment lock.
type metrics struct {
	attach          *prometheus.CounterVec
	detach          *prometheus.CounterVec
	conflicts       prometheus.Counter
	reconcile       *prometheus.CounterVec
	reconcileErrors *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	graceUsed       prometheus.Counter
	staleCleared    prometheus.Counter
	migrationActive prometheus.Gauge
	migrations      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		attach: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_attachment_attach_total", Help: "Publish decisions by status (success, conflict).",
		}, []string{"status"}),
		detach: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_attachment_detach_total", Help: "Unpublishes by status (they cannot fail, so only success).",
		}, []string{"status"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rds_csi_attachment_conflicts_total", Help: "Publishes refused because another node holds the volume.",
		}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_attachment_reconcile_total", Help: "Reconciler runs and what they did, by action.",
		}, []string{"action"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_attachment_reconcile_errors_total",
			Help: "Reconciler runs (reconcile, startup_rebuild) that met API errors; the decisions they touched were postponed.",
		}, []string{"operation"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rds_csi_attachment_operation_duration_seconds",
			Help:    "Duration of reconciler operations (reconcile, startup_rebuild), on the driver's clock.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"operation"}),
		graceUsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rds_csi_attachment_grace_period_used_total", Help: "Nodes that came back while their claims were kept by the grace period.",
		}),
		staleCleared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rds_csi_attachment_stale_cleared_total", Help: "Claims of gone nodes cleared after their grace period.",
		}),
		migrationActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rds_csi_migration_active", Help: "Volumes currently held by a migration source and target.",
		}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_migrations_total", Help: "Migrations by result (completed, timed_out).",
		}, []string{"result"}),
	}
	for _, s := range []string{statusSuccess, statusConflict} {
		m.attach.WithLabelValues(s)
	}
	m.detach.WithLabelValues(statusSuccess)
	for _, a := range []string{actionRun, actionNodeGone, actionNodeBack, actionStaleCleared, actionClaimRestored,
		actionClaimDropped, actionClaimConflict, actionStuckFinalizer} {
		m.reconcile.WithLabelValues(a)
	}
	for _, op := range []string{"reconcile", "startup_rebuild"} {
		m.duration.WithLabelValues(op)
		m.reconcileErrors.WithLabelValues(op)
	}
	m.migrations.WithLabelValues(resultCompleted)
	m.migrations.WithLabelValues(resultTimedOut)
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.attach, m.detach, m.conflicts, m.reconcile, m.reconcileErrors, m.duration,
		m.graceUsed, m.staleCleared, m.migrationActive, m.migrations} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("reconciler: register metrics: %w", err)
	}
	return m, nil
}
