package emulator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the emulator's own Prometheus series. Gauges that describe state are
// read from memory at scrape time (no I/O); counters are bumped per command.
type metrics struct {
	commands *prometheus.CounterVec
	duration *prometheus.HistogramVec
	sessions prometheus.Gauge
}

// knownVerbs bounds the verb label; anything else is "other".
var knownVerbs = map[string]bool{
	"add": true, "set": true, "remove": true, "print": true, "none": true, "invalid": true,
}

func newMetrics(reg prometheus.Registerer, e *Emulator) *metrics {
	m := &metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_emulator_commands_total",
			Help: "Console command scripts run, by verb of the first command and result (ok, error, abandoned).",
		}, []string{"verb", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rds_emulator_command_duration_seconds",
			Help:    "Time from receiving a command script to its answer, including injected latency.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"verb"}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rds_emulator_sessions",
			Help: "Open SSH sessions (exec and shell).",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.commands, m.duration, m.sessions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rds_emulator_disks",
			Help: "File disks present.",
		}, func() float64 { return float64(e.store.DiskCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rds_emulator_pool_size_bytes",
			Help: "Size of the storage pool.",
		}, func() float64 { return float64(e.store.Pool().Size) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rds_emulator_pool_used_bytes",
			Help: "Bytes of the pool taken by files (logical size, as RDS accounts them).",
		}, func() float64 { return float64(e.store.Pool().Used) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rds_emulator_serving",
			Help: "1 while the SSH server accepts connections, 0 while crashed.",
		}, func() float64 {
			if e.Serving() {
				return 1
			}
			return 0
		}),
	)
	return m
}

func (m *metrics) observe(verb, result string, d time.Duration) {
	if !knownVerbs[verb] {
		verb = "other"
	}
	m.commands.WithLabelValues(verb, result).Inc()
	m.duration.WithLabelValues(verb).Observe(d.Seconds())
}
