package rds

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Result labels of rds_csi_rds_commands_total; fixed so cardinality stays
// bounded.
const (
	ResultSuccess     = "success"
	ResultNotFound    = "not_found"
	ResultCapacity    = "capacity"
	ResultExists      = "exists"
	ResultRejected    = "rejected"
	ResultFailed      = "failed"
	ResultUnavailable = "unavailable"
)

func resultOf(err error) string {
	switch {
	case err == nil:
		return ResultSuccess
	case errors.Is(err, ErrNotFound):
		return ResultNotFound
	case errors.Is(err, ErrCapacity):
		return ResultCapacity
	case errors.Is(err, ErrExists):
		return ResultExists
	case errors.Is(err, ErrRejected):
		return ResultRejected
	case errors.Is(err, ErrUnavailable):
		return ResultUnavailable
	default:
		return ResultFailed
	}
}

// register registers c, or returns the collector already registered under
// the same description, so several clients can share one registry.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
		klog.ErrorS(err, "Registering RDS metric failed")
	}
	return c
}

type clientMetrics struct {
	duration *prometheus.HistogramVec
	total    *prometheus.CounterVec
}

func newClientMetrics(reg prometheus.Registerer) *clientMetrics {
	return &clientMetrics{
		duration: register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rds_csi_rds_command_duration_seconds",
			Help:    "Duration of RouterOS commands sent to RDS, by verb (add, set, remove, print, other).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verb"})),
		total: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_rds_commands_total",
			Help: "RouterOS commands sent to RDS, by verb and result (success, not_found, capacity, exists, rejected, failed, unavailable).",
		}, []string{"verb", "result"})),
	}
}

type managerMetrics struct {
	state             prometheus.Gauge
	reconnects        *prometheus.CounterVec
	reconnectDuration prometheus.Histogram
	probes            *prometheus.CounterVec
}

func newManagerMetrics(reg prometheus.Registerer) *managerMetrics {
	return &managerMetrics{
		state: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rds_csi_rds_connection_state",
			Help: "State of the SSH connection to RDS: 0 disconnected, 1 connecting, 2 connected.",
		})),
		reconnects: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_rds_reconnect_total",
			Help: "Connection attempts to RDS by status (success, failure).",
		}, []string{"status"})),
		reconnectDuration: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "rds_csi_rds_reconnect_duration_seconds",
			Help:    "Time from losing the RDS connection (or starting) until connected again.",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600},
		})),
		probes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_rds_reachability_probes_total",
			Help: "TCP reachability probes of RDS's SSH port while it was unreachable, by status (success, failure). SSH handshakes are counted by rds_csi_rds_reconnect_total.",
		}, []string{"status"})),
	}
}
