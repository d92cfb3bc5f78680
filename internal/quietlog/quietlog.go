package quietlog

import (
	"flag"
	"io"
	"os"
	"testing"

	"k8s.io/klog/v2"
)

// Main parses the test flags, silences klog unless -test.v is set, runs the
// tests and exits with their status. Use it as a package's whole TestMain:
//
//	func TestMain(m *testing.M) { quietlog.Main(m) }
func Main(m *testing.M) {
	Quiet()
	os.Exit(m.Run())
}

// Quiet silences klog unless the run is verbose; for a TestMain that has more
// to do than Main does. It parses the test flags if nobody has yet.
func Quiet() {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Verbose() {
		return
	}
	// klog's own flags, on a private set so that the test binary's flag set
	// is left alone: nothing reaches stderr below FATAL.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}
