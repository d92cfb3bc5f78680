package main

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/rds-csi/rds-csi/scenarios/spec"
)

// cmdList prints every scenario file under DIR (default: scenarios) with its
// name, virtual duration and description.
func cmdList(args []string, stdout io.Writer) error {
	dir := "scenarios"
	if len(args) > 0 {
		dir = args[0]
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" && path != dir {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return nil
		}
		sc, err := spec.Load(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%-52s %-32s %9s  %s\n", path, sc.Name, sc.Duration(), strings.TrimSpace(sc.Description))
		return nil
	})
}
