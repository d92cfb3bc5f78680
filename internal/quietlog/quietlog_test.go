package quietlog

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"k8s.io/klog/v2"
)

// TestQuietDiscardsKlog: after Quiet, an error logged through klog reaches
// neither stderr nor a file; the test binary runs non-verbose in CI.
func TestQuietDiscardsKlog(t *testing.T) {
	if testing.Verbose() {
		// Quiet is a no-op under -v by design; its effect cannot be observed.
		t.Skip("quietlog keeps klog's output on under -v")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	Quiet()
	klog.ErrorS(nil, "must not be seen")
	klog.Flush()
	os.Stderr = stderr
	w.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got.Bytes(), []byte("must not be seen")) {
		t.Fatalf("klog wrote to stderr after Quiet: %q", got.String())
	}
	if !flag.Parsed() {
		t.Fatal("Quiet left the test flags unparsed")
	}
}
