package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rds-csi/rds-csi/scenarios/trace"

	"github.com/rds-csi/rds-csi/scenarios/report"
	"github.com/rds-csi/rds-csi/scenarios/runner"
	"github.com/rds-csi/rds-csi/scenarios/spec"
)

type runFlags struct {
	seed                        int64
	seedSet                     bool
	reportOut, traceOut, sumOut string
	checkDeterminism            bool
	quiet                       bool
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f runFlags
	fs.Func("seed", "override the scenario's seed", func(s string) error {
		_, err := fmt.Sscan(s, &f.seed)
		f.seedSet = true
		return err
	})
	fs.StringVar(&f.reportOut, "report", "", "write the HTML report here (with several files: the scenario name is added)")
	fs.StringVar(&f.traceOut, "trace", "", "write the JSONL trace here (with several files: the scenario name is added)")
	fs.StringVar(&f.sumOut, "summary", "", "write the JSON summary here (with several files: the scenario name is added)")
	fs.BoolVar(&f.checkDeterminism, "check-determinism", false, "run each scenario twice and compare trace hashes")
	fs.BoolVar(&f.quiet, "quiet", false, "print only failures and the summary line")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("run: no scenario file given")
	}
	failed := false
	for _, file := range files {
		ok, err := runOne(file, f, len(files) > 1, stdout)
		if err != nil {
			return err
		}
		failed = failed || !ok
	}
	if failed {
		return errFailed
	}
	return nil
}

// parseInterleaved accepts flags before and after the file names.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return files, nil
		}
		files = append(files, args[0])
		args = args[1:]
	}
}

func runOne(file string, f runFlags, many bool, stdout io.Writer) (bool, error) {
	sc, err := spec.Load(file)
	if err != nil {
		return false, err
	}
	o := runner.Options{File: file}
	if f.seedSet {
		o.Seed = &f.seed
	}
	res, err := runner.Run(sc, o)
	if err != nil {
		return false, fmt.Errorf("%s: %w", file, err)
	}
	events, err := res.Events()
	if err != nil {
		return false, err
	}
	if !f.quiet {
		if err := report.Timeline(stdout, events, isTerminal(stdout)); err != nil {
			return false, err
		}
	}
	sum := res.Summary
	if f.checkDeterminism {
		again, err := runner.Run(sc, o)
		if err != nil {
			return false, err
		}
		if again.Summary.TraceHash != sum.TraceHash {
			sum.Pass = false
			sum.Failures = append(sum.Failures, fmt.Sprintf("determinism: two runs with seed %d gave traces %.16s and %.16s; %s",
				sum.Seed, sum.TraceHash, again.Summary.TraceHash, trace.FirstDivergence(res.Trace, again.Trace)))
		} else {
			fmt.Fprintf(stdout, "determinism: two runs, one trace hash %.16s\n", sum.TraceHash)
		}
	}
	if err := writeOutputs(f, many, sum, res.Trace, events); err != nil {
		return false, err
	}
	for _, msg := range sum.Failures {
		fmt.Fprintln(stdout, "FAIL:", msg)
	}
	if !sum.Pass {
		fmt.Fprintln(stdout, "reproduce:", sum.Reproduce)
	}
	fmt.Fprintln(stdout, sum.Line())
	return sum.Pass, nil
}

func writeOutputs(f runFlags, many bool, sum report.Summary, trace []byte, events []report.Event) error {
	name := func(path string) string {
		if !many {
			return path
		}
		ext := filepath.Ext(path)
		return strings.TrimSuffix(path, ext) + "-" + sum.Scenario + ext
	}
	if f.traceOut != "" {
		if err := os.WriteFile(name(f.traceOut), trace, 0o644); err != nil {
			return err
		}
	}
	if f.sumOut != "" {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(name(f.sumOut), append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if f.reportOut != "" {
		out, err := os.Create(name(f.reportOut))
		if err != nil {
			return err
		}
		if err := report.HTML(out, sum, events); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
