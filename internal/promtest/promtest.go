// Package promtest reads single series out of a Prometheus registry in tests,
// so assertions can name a metric and its labels instead of walking the
// gathered families by hand in every package.
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Lookup returns the value of the first series of the named metric whose labels
// include every given label: a counter's or gauge's value, or a histogram's
// sample count. ok is false when no series matches.
func Lookup(g prometheus.Gatherer, name string, labels map[string]string) (value float64, ok bool, err error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, false, err
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			return valueOf(m), true, nil
		}
	}
	return 0, false, nil
}

// Value is Lookup for tests: a series that does not exist counts as 0, which is
// what an untouched counter means.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	v, _, err := Lookup(g, name, labels)
	if err != nil {
		t.Fatalf("gather %s: %v", name, err)
	}
	return v
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}
