//go:build sanitybin

package sanity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// maxVolumes is the node limit the lane runs with, so csi-sanity's attach
// limit spec runs too.
const maxVolumes = "3"

func TestCSISanityBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		const why = "the csi-sanity lane mounts filesystems and attaches loop devices, which needs root"
		if os.Getenv("CI") != "" {
			t.Fatal(why + "; CI runs as root")
		}
		t.Skip(why + " (CI runs it as root)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	build(t, bin, "../cmd/rds-csi", "../cmd/rds-emulator", "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity")
	skips, err := ReadSkips("skips.txt")
	if err != nil {
		t.Fatal(err)
	}

	key := filepath.Join(dir, "id_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	emuState := filepath.Join(dir, "emulator")
	kubelet := filepath.Join(dir, "kubelet")
	for _, d := range []string{emuState, kubelet, filepath.Join(dir, "node-state")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	emu, emuOut := start(t, dir, filepath.Join(bin, "rds-emulator"), "--listen=127.0.0.1:0", "--state-dir="+emuState,
		"--authorized-keys="+key+".pub", "--pool-size=8T")
	addr := waitLine(t, emuOut, regexp.MustCompile(`^listening on (\S+)$`))
	fp := regexp.MustCompile(`(?m)^host key fingerprint: (\S+)$`).FindStringSubmatch(emuOut.String())
	if fp == nil {
		t.Fatalf("the emulator printed no host key fingerprint:\n%s", emuOut)
	}
	sock := filepath.Join(dir, "csi.sock")
	drv, _ := start(t, dir, filepath.Join(bin, "rds-csi"), "--mode=all", "--endpoint=unix://"+sock, "--node-id=sanity-node",
		"--rds-address="+addr, "--rds-key-file="+key, "--rds-host-key-fingerprint="+fp[1],
		"--data-plane=loop", "--loop-backing-dir="+emuState, "--kubelet-dir="+kubelet,
		"--node-state-dir="+filepath.Join(dir, "node-state"), "--leader-election=false",
		"--max-volumes-per-node="+maxVolumes, "--v=2")
	waitFor(t, "the CSI socket", func() bool { _, err := os.Stat(sock); return err == nil })

	report := filepath.Join(dir, "report.json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "csi-sanity"), "--csi.endpoint="+sock,
		"--csi.mountdir="+filepath.Join(kubelet, "sanity-target"), "--csi.stagingdir="+filepath.Join(kubelet, "sanity-staging"),
		"--csi.testnodevolumeattachlimit", "--ginkgo.json-report="+report, "--ginkgo.no-color")
	out, runErr := cmd.CombinedOutput()
	summary := regexp.MustCompile(`(?m)^(Ran \d+ of \d+ Specs.*\n.*(?:Passed|Failed).*)$`).Find(out)
	t.Logf("csi-sanity: %s", summary)

	specs := readReport(t, report)
	var failed, unexplained []string
	passed := 0
	for _, s := range specs {
		switch s.State {
		case "passed":
			passed++
		case "skipped", "pending":
			if why := skips.Reason(s.name()); why == "" {
				unexplained = append(unexplained, s.name())
			}
		default:
			failed = append(failed, s.State+": "+s.name())
		}
	}
	drv.stop()
	emu.stop()
	if len(failed) > 0 {
		t.Errorf("%d specs failed:\n  %s\n%s", len(failed), strings.Join(failed, "\n  "), tail(out, 80))
	}
	if len(unexplained) > 0 {
		t.Errorf("%d specs skipped without a reason in skips.txt:\n  %s", len(unexplained), strings.Join(unexplained, "\n  "))
	}
	if runErr != nil && len(failed) == 0 {
		t.Errorf("csi-sanity: %v\n%s", runErr, tail(out, 40))
	}
	if passed == 0 {
		t.Errorf("no spec passed: the suite did not run\n%s", tail(out, 40))
	}
	for _, leak := range leaks(t, dir) {
		t.Errorf("left behind: %s", leak)
	}
}

// spec is the part of a Ginkgo JSON report entry the lane reads.
type spec struct {
	State                   string
	ContainerHierarchyTexts []string
	LeafNodeText            string
}

func (s spec) name() string {
	return strings.Join(append(append([]string(nil), s.ContainerHierarchyTexts...), s.LeafNodeText), " ")
}

func readReport(t *testing.T, path string) []spec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("csi-sanity wrote no report: %v", err)
	}
	var suites []struct{ SpecReports []spec }
	if err := json.Unmarshal(b, &suites); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	var specs []spec
	for _, s := range suites {
		for _, r := range s.SpecReports {
			if r.LeafNodeText != "" { // suite-level setup nodes have none
				specs = append(specs, r)
			}
		}
	}
	return specs
}

// leaks lists loop devices backed by a file under dir and mounts under dir.
func leaks(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(strings.TrimSpace(string(b)), dir) {
			out = append(out, fmt.Sprintf("%s on %s", strings.Split(f, "/")[3], strings.TrimSpace(string(b))))
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, "mount at "+f[4])
		}
	}
	return out
}

func build(t *testing.T, dir string, pkgs ...string) {
	t.Helper()
	for _, p := range pkgs {
		run(t, "go", "build", "-o", filepath.Join(dir, filepath.Base(p)), p)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// stop ends the process (SIGTERM, then SIGKILL after 10s) and waits for it.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// syncBuf is a bytes.Buffer safe to read while a process writes it.
type syncBuf struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuf() *syncBuf { return &syncBuf{mu: make(chan struct{}, 1)} }

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// start runs a binary with its stderr in dir/<name>.log (shown on failure)
// and returns its stdout.
func start(t *testing.T, dir, bin string, args ...string) (*proc, *syncBuf) {
	t.Helper()
	logPath := filepath.Join(dir, filepath.Base(bin)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	stdout := newSyncBuf()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (tail):\n%s", filepath.Base(bin), tail(b, 40))
		}
	})
	return p, stdout
}

func waitLine(t *testing.T, out *syncBuf, re *regexp.Regexp) string {
	t.Helper()
	var m []string
	waitFor(t, re.String(), func() bool {
		for _, l := range strings.Split(out.String(), "\n") {
			if m = re.FindStringSubmatch(l); m != nil {
				return true
			}
		}
		return false
	})
	return m[1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
