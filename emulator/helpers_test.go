package emulator_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	gossh "golang.org/x/crypto/ssh"
)

func mustKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func mustSigner(t testing.TB) gossh.Signer {
	t.Helper()
	s, err := gossh.NewSignerFromKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mustCounter finds one counter series in a registry by name and labels.
func mustCounter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return constCounter(m)
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func constCounter(m *dto.Metric) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
}
