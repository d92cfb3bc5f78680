package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestLookup(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"verb", "result"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	reg.MustRegister(c, h)
	c.WithLabelValues("add", "ok").Add(3)
	c.WithLabelValues("add", "error").Inc()
	h.Observe(1)
	h.Observe(2)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
		found  bool
	}{
		{"c_total", map[string]string{"verb": "add", "result": "ok"}, 3, true},
		{"c_total", map[string]string{"result": "error"}, 1, true},
		{"c_total", map[string]string{"verb": "remove"}, 0, false},
		{"h_seconds", nil, 2, true},
		{"missing", nil, 0, false},
	} {
		got, ok, err := Lookup(reg, tc.name, tc.labels)
		if err != nil || got != tc.want || ok != tc.found {
			t.Errorf("Lookup(%s, %v) = %v, %v, %v; want %v, %v", tc.name, tc.labels, got, ok, err, tc.want, tc.found)
		}
	}
}
