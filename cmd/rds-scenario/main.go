// Command rds-scenario replays scenario files against the whole rds-csi
// system in one process on a virtual clock: the emulated RDS, the
// controller, node plugins and a simulated Kubernetes.
//
//	rds-scenario run FILE... [--seed N] [--report out.html] [--trace out.jsonl] [--summary out.json] [--check-determinism]
//	rds-scenario swarm --seeds A..B [--keep DIR] [--check-determinism]
//	rds-scenario list [DIR]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/bubble"
)

// main hosts the bubbles every World runs in (see internal/bubble).
func main() {
	oneProcessor()
	bubble.Main(func() int { return run(os.Args[1:], os.Stdout, os.Stderr) })
}

// errFailed: a scenario failed; its details were printed already.
var errFailed = errors.New("scenario failed")

func run(args []string, stdout, stderr io.Writer) int {
	quietLogs()
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "swarm":
		err = cmdSwarm(args[1:], stdout, stderr)
	case "list":
		err = cmdList(args[1:], stdout)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "rds-scenario: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errFailed):
		return 1
	case errors.Is(err, flag.ErrHelp):
		return 0
	}
	fmt.Fprintf(stderr, "rds-scenario: %v\n", err)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  rds-scenario run FILE... [--seed N] [--report out.html] [--trace out.jsonl] [--summary out.json] [--check-determinism]
  rds-scenario swarm --seeds A..B [--keep DIR] [--check-determinism]
  rds-scenario list [DIR]
`)
}

// quietLogs keeps the driver's own logs out of the timeline; --v on the
// command line is not offered because the trace holds everything.
func quietLogs() {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
}

// oneProcessor runs the Go scheduler on one processor unless GOMAXPROCS
// says otherwise. A World releases one goroutine at a time and waits for
// the standstill after it (engine/doc.go), so a second processor has
// nothing to run in parallel: it only turns every hand-off between
// goroutines into a wake-up of another thread. On one processor the
// incident replay takes about 40% less CPU; traces are the same (the
// order of releases is drawn from the seed, not from the scheduler).
func oneProcessor() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
