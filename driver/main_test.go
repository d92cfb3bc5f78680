package driver

import (
	"flag"
	"io"
	"os"
	"testing"

	"k8s.io/klog/v2"
)

// TestMain keeps klog quiet unless -v is given: go test folds a test binary's
// stderr into its output, and the driver logs every failed call, which buries
// benchmark figures. With -v the logs are there for debugging.
func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Verbose() {
		klog.LogToStderr(false)
		klog.SetOutput(io.Discard)
	}
	os.Exit(m.Run())
}
