package report

import (
	"flag"
	"os"
	"testing"
)

var sampleOut = flag.String("sample", "", "write the HTML report of the synthetic outage to this file")

// TestSample renders the synthetic outage for a person to look at:
//
//	go test ./scenarios/report -run TestSample -sample /tmp/report-sample.html
func TestSample(t *testing.T) {
	if *sampleOut == "" {
		t.Skip("no -sample file")
	}
	s, ev := outage()
	f, err := os.Create(*sampleOut)
	if err != nil {
		t.Fatal(err)
	}
	if err := HTML(f, s, ev); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := Timeline(os.Stdout, ev, false); err != nil {
		t.Fatal(err)
	}
}
