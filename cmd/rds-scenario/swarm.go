package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rds-csi/rds-csi/scenarios/trace"

	"github.com/rds-csi/rds-csi/scenarios/runner"
	"github.com/rds-csi/rds-csi/scenarios/spec"
	"github.com/rds-csi/rds-csi/scenarios/swarm"
)

func cmdSwarm(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("swarm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.String("seeds", "1..20", "inclusive range of seeds, A..B")
	keep := fs.String("keep", "", "write each failing seed's scenario file into this directory")
	twice := fs.Bool("check-determinism", false, "run every seed twice and fail a seed whose two traces differ, naming the first differing event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	from, to, err := parseRange(*seeds)
	if err != nil {
		return err
	}
	var failed []int64
	for seed := from; seed <= to; seed++ {
		sc, err := spec.Parse([]byte(swarm.Generate(seed)))
		if err != nil {
			return fmt.Errorf("seed %d: generated scenario does not parse: %w", seed, err)
		}
		res, err := runner.Run(sc, runner.Options{TolerateActionErrors: true})
		if err != nil {
			return fmt.Errorf("seed %d: %w", seed, err)
		}
		if *twice {
			again, err := runner.Run(sc, runner.Options{TolerateActionErrors: true})
			if err != nil {
				return fmt.Errorf("seed %d, second run: %w", seed, err)
			}
			if d := trace.FirstDivergence(res.Trace, again.Trace); d != "" {
				res.Summary.Pass = false
				res.Summary.Failures = append(res.Summary.Failures, "determinism: two runs differ; "+d)
			}
		}
		if res.Summary.Pass {
			fmt.Fprintln(stdout, res.Summary.Line())
			continue
		}
		failed = append(failed, seed)
		for _, msg := range res.Summary.Failures {
			fmt.Fprintf(stdout, "FAIL seed %d: %s\n", seed, msg)
		}
		fmt.Fprintf(stdout, "reproduce: rds-scenario swarm --seeds %d..%d\n", seed, seed)
		if *keep != "" {
			path := filepath.Join(*keep, fmt.Sprintf("swarm-%d.yaml", seed))
			if err := os.WriteFile(path, []byte(swarm.Generate(seed)), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "scenario written to %s (rds-scenario run %s)\n", path, path)
		}
		fmt.Fprintln(stdout, res.Summary.Line())
	}
	fmt.Fprintf(stdout, "swarm %d..%d: %d seeds, %d failed %v\n", from, to, to-from+1, len(failed), failed)
	if len(failed) > 0 {
		return errFailed
	}
	return nil
}

func parseRange(s string) (int64, int64, error) {
	a, b, ok := strings.Cut(s, "..")
	if !ok {
		b = a
	}
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || to < from {
		return 0, 0, fmt.Errorf("--seeds %q: want A..B with A <= B", s)
	}
	return from, to, nil
}
