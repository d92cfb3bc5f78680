package emulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/internal/promtest"
)

func addCmd(slot, size string) string {
	return "/disk add type=file file-path=/storage-pool/k8s/" + slot + ".img file-size=" + size +
		" slot=" + slot + " nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:" + slot
}

func TestExecAcceptance(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	if out := emu.Run("/disk print detail"); !strings.HasPrefix(out, "Flags: X - disabled; B - blocked\n") {
		t.Fatalf("print: %q", out)
	}
	if out := emu.Run(addCmd("pvc-1", "1G")); out != "" {
		t.Fatalf("add printed %q", out)
	}
	if out := emu.Run("/disk print detail where slot=pvc-1"); !strings.Contains(out, "size=1 073 741 824") {
		t.Fatalf("print after add: %q", out)
	}
	out, status, err := emu.RunAs("admin", "/disk remove [find slot=nope]")
	if err != nil || out != "failure: no such item\n" || status != 1 {
		t.Fatalf("remove missing: %q status %d err %v", out, status, err)
	}
}

func TestZeroExitOnError(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{ZeroExitOnError: true})
	out, status, err := emu.RunAs("admin", "/disk remove [find slot=nope]")
	if err != nil || status != 0 || out != "failure: no such item\n" {
		t.Fatalf("got %q status %d err %v; want the error text with exit status 0", out, status, err)
	}
}

func TestAuthentication(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	other, err := gossh.NewSignerFromKey(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  *gossh.ClientConfig
	}{
		{"unknown key", &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(other)}, HostKeyCallback: gossh.FixedHostKey(emu.HostKey())}},
		{"unknown user", &gossh.ClientConfig{User: "root", Auth: []gossh.AuthMethod{gossh.PublicKeys(emu.ClientSigner())}, HostKeyCallback: gossh.FixedHostKey(emu.HostKey())}},
		{"password", &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.Password("admin")}, HostKeyCallback: gossh.FixedHostKey(emu.HostKey())}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Timeout = 5 * time.Second
			if c, err := gossh.Dial("tcp", emu.Addr(), tc.cfg); err == nil {
				c.Close()
				t.Fatal("login accepted")
			}
		})
	}
	// Login options do not change who you are.
	if _, _, err := emu.RunAs("admin+ct512w", "/system identity print"); err != nil {
		t.Fatalf("admin+ct512w: %v", err)
	}
}

func TestKeepaliveGlobalRequestRejected(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	c, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Fatalf("keepalive: ok=%v err=%v; want a refusal", ok, err)
	}
	// The connection is still usable after the refusal.
	if out, _, err := emulatortest.Exec(c, "/system identity print"); err != nil || !strings.Contains(out, "name: rds") {
		t.Fatalf("after keepalive: %q %v", out, err)
	}
}

func TestLoginWidthOption(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	slot := "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"
	emu.Run(addCmd(slot, "50G"))
	narrow := emu.Run("/disk print detail where slot=" + slot)
	wide, _, err := emu.RunAs("admin+ct512w", "/disk print detail where slot="+slot)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(narrow, "\n"); n < 8 {
		t.Fatalf("80-column output has only %d lines:\n%s", n, narrow)
	}
	if n := strings.Count(wide, "\n"); n > 3 {
		t.Fatalf("512-column output has %d lines, want at most legend + two:\n%s", n, wide)
	}
	for _, l := range strings.Split(wide, "\n") {
		if len(l) > 512 {
			t.Fatalf("line of %d columns at width 512", len(l))
		}
	}
}

func TestInteractiveShell(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	s := newSession(t, emu)
	if err := s.RequestPty("xterm", 40, 120, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	var out syncBuffer
	s.Stdout = &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	waitForOutput(t, &out, "[admin@rds] > ")
	// A typo fixed with backspace, then the command.
	io.WriteString(in, "/system identity prinx\x7ft\r")
	waitForOutput(t, &out, "name: rds\r\n[admin@rds] > ")
	io.WriteString(in, "/disk frob\r")
	waitForOutput(t, &out, "bad command name frob (line 1 column 7)\r\n")
	io.WriteString(in, "quit\r")
	if err := s.Wait(); err != nil {
		t.Fatalf("shell exit: %v", err)
	}
}

func TestShellWithoutPty(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	s := newSession(t, emu)
	s.Stdin = strings.NewReader(addCmd("pvc-1", "1G") + "\n/disk print count-only where slot=pvc-1\n")
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if want := "[admin@rds] > [admin@rds] > 1\n[admin@rds] > "; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}

// TestShellMenuContext: a bare menu path enters the menu, the prompt shows
// it, commands without a leading '/' run in it, ".." and "/" leave it, and an
// absolute command runs where it says without moving the prompt.
func TestShellMenuContext(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	emu.Run(addCmd("pvc-1", "1G"))
	s := newSession(t, emu)
	s.Stdin = strings.NewReader(strings.Join([]string{
		"/disk",
		"print count-only where slot=pvc-1",
		"/system identity print",
		"..",
		"disk print count-only",
		"/system/identity",
		"print",
		"/",
		"print",
	}, "\n") + "\n")
	var out bytes.Buffer
	s.Stdout = &out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	want := "[admin@rds] > " +
		"[admin@rds] /disk> 1\n" +
		"[admin@rds] /disk>   name: rds\n" +
		"[admin@rds] /disk> " +
		"[admin@rds] > 2\n" +
		"[admin@rds] > " +
		"[admin@rds] /system/identity>   name: rds\n" +
		"[admin@rds] /system/identity> " +
		"[admin@rds] > bad command name print (line 1 column 1)\n" +
		"[admin@rds] > "
	if out.String() != want {
		t.Fatalf("got  %q\nwant %q", out.String(), want)
	}
}

func TestHostKeyStableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	first := emulatortest.Start(t, emulatortest.Options{StateDir: dir})
	first.Run(addCmd("pvc-1", "1G"))
	key := first.HostKey()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := emulatortest.Start(t, emulatortest.Options{StateDir: dir})
	if !bytes.Equal(second.HostKey().Marshal(), key.Marshal()) {
		t.Fatal("host key changed across restart")
	}
	// The new instance has its own client key; the disk must still be there.
	if out := second.Run("/disk print count-only where slot=pvc-1"); out != "1\n" {
		t.Fatalf("disk lost across restart: %q", out)
	}
}

func TestCrashAndRestart(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	c, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := emulatortest.Exec(c, addCmd("pvc-1", "1G")); err != nil {
		t.Fatal(err)
	}
	emu.Crash()
	if _, _, err := emulatortest.Exec(c, "/system identity print"); err == nil {
		t.Fatal("connection survived the crash")
	}
	if conn, err := net.DialTimeout("tcp", emu.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("crashed emulator still accepts TCP")
	}
	if err := emu.Restart(); err != nil {
		t.Fatal(err)
	}
	if out := emu.Run("/disk print count-only where slot=pvc-1"); out != "1\n" {
		t.Fatalf("disk lost across crash: %q", out)
	}
}

func TestFaultsOverSSH(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{})
	c, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	emu.Faults().FailNext(1, "failure: not enough space")
	out, status, _ := emulatortest.Exec(c, addCmd("pvc-1", "1G"))
	if out != "failure: not enough space\n" || status != 1 {
		t.Fatalf("fail-next: %q %d", out, status)
	}
	if out := emu.Run("/disk print count-only where slot=pvc-1"); out != "0\n" {
		t.Fatalf("a failed command must not run: %q", out)
	}

	emu.Faults().HangNext(1)
	done := make(chan string, 1)
	go func() {
		out, _, _ := emulatortest.Exec(c, addCmd("pvc-2", "1G"))
		done <- out
	}()
	deadline := time.Now().Add(5 * time.Second)
	for emu.Faults().Hanging() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("command never hung")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("hung command answered before release")
	default:
	}
	emu.Faults().Release()
	if out := <-done; out != "" {
		t.Fatalf("released add printed %q", out)
	}

	emu.Faults().RejectConnections(true)
	if _, err := emu.Dial("admin"); err == nil {
		t.Fatal("new connection accepted while rejecting")
	}
	if _, _, err := emulatortest.Exec(c, "/system identity print"); err != nil {
		t.Fatalf("existing connection broken by reject: %v", err)
	}
	emu.Faults().RejectConnections(false)
	if out := emu.Run("/disk print count-only where slot=pvc-2"); out != "1\n" {
		t.Fatalf("after reject off: %q", out)
	}
}

func TestMetricsAndCommandLog(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	var mu sync.Mutex
	var log []emulator.CommandRecord
	emu := emulatortest.Start(t, emulatortest.Options{Registerer: reg, CommandLog: func(r emulator.CommandRecord) {
		mu.Lock()
		log = append(log, r)
		mu.Unlock()
	}})
	emu.Run(addCmd("pvc-1", "1G"))
	emu.Run("/disk print detail")
	emu.Run("/disk frob")

	if got := promtest.Value(t, reg, "rds_emulator_commands_total", map[string]string{"verb": "add", "result": "ok"}); got != 1 {
		t.Fatalf("add ok = %v", got)
	}
	if got := promtest.Value(t, reg, "rds_emulator_commands_total", map[string]string{"verb": "invalid", "result": "error"}); got != 1 {
		t.Fatalf("invalid error = %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "rds_emulator_disks", "rds_emulator_pool_used_bytes", "rds_emulator_sessions", "rds_emulator_command_duration_seconds"); err != nil || n < 4 {
		t.Fatalf("gathered %d series, err %v", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP rds_emulator_disks File disks present.\n# TYPE rds_emulator_disks gauge\nrds_emulator_disks 1\n"), "rds_emulator_disks"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(log) != 3 || log[0].User != "admin" || log[0].Status != "ok" || log[2].Status != "error" ||
		!strings.HasPrefix(log[2].Output, "bad command name frob") {
		b, _ := json.Marshal(log)
		t.Fatalf("command log: %s", b)
	}
}

func TestInMemoryConn(t *testing.T) {
	signer := mustSigner(t)
	emu2, err := emulator.New(emulator.Config{AuthorizedKeys: []gossh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu2.Close()
	client, err := emu2.DialInMemory()
	if err != nil {
		t.Fatal(err)
	}
	conn, chans, reqs, err := gossh.NewClientConn(client, "in-memory", &gossh.ClientConfig{
		User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.FixedHostKey(emu2.HostKey()),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := gossh.NewClient(conn, chans, reqs)
	defer c.Close()
	if out, _, err := emulatortest.Exec(c, "/system identity print"); err != nil || !strings.Contains(out, "name: rds") {
		t.Fatalf("over a pipe: %q %v", out, err)
	}
	if out, _ := emu2.Exec(context.Background(), "admin", addCmd("pvc-1", "1G")); out != "" {
		t.Fatalf("Exec: %q", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the SSH reader goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitForOutput(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output:\n%q", want, b.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCrashRestartConcurrently: crash and restart requests that overlap (a chaos
// schedule, or two operators) neither race nor deadlock, and the emulator ends
// up serving after a final restart.
func TestCrashRestartConcurrently(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); emu.Crash() }()
		go func() { defer wg.Done(); _ = emu.Restart() }()
	}
	wg.Wait()
	emu.Crash()
	if err := emu.Restart(); err != nil {
		t.Fatal(err)
	}
	if out := emu.Run("/system identity print"); !strings.Contains(out, "name: rds") {
		t.Fatalf("after crash/restart storm: %q", out)
	}
}

// TestCrashRefusesInMemoryConnections: a crashed emulator does not answer
// in-memory connections either, and Restart brings back both kinds.
func TestCrashRefusesInMemoryConnections(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	dialPipe := func() error {
		c, err := emu.DialInMemory()
		if err != nil {
			return err
		}
		conn, chans, reqs, err := gossh.NewClientConn(c, "in-memory", emu.ClientConfig("admin"))
		if err != nil {
			c.Close()
			return err
		}
		client := gossh.NewClient(conn, chans, reqs)
		defer client.Close()
		_, _, err = emulatortest.Exec(client, "/system identity print")
		return err
	}
	if err := dialPipe(); err != nil {
		t.Fatalf("before the crash: %v", err)
	}
	emu.Crash()
	if emu.Serving() {
		t.Fatal("crashed emulator says it is serving")
	}
	if err := dialPipe(); err == nil {
		t.Fatal("crashed emulator answered an in-memory connection")
	}
	if err := emu.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := dialPipe(); err != nil {
		t.Fatalf("in-memory after restart: %v", err)
	}
	if out := emu.Run("/system identity print"); !strings.Contains(out, "name: rds") {
		t.Fatalf("TCP after restart: %q", out)
	}
}

// TestCrashRestartWithoutTCP: an emulator that never listened (the scenario
// runner's) crashes and comes back for in-memory connections alone.
func TestCrashRestartWithoutTCP(t *testing.T) {
	signer := mustSigner(t)
	emu, err := emulator.New(emulator.Config{AuthorizedKeys: []gossh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	run := func() error {
		c, err := emu.DialInMemory()
		if err != nil {
			return err
		}
		conn, chans, reqs, err := gossh.NewClientConn(c, "in-memory", &gossh.ClientConfig{User: "admin",
			Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.FixedHostKey(emu.HostKey())})
		if err != nil {
			c.Close()
			return err
		}
		client := gossh.NewClient(conn, chans, reqs)
		defer client.Close()
		_, _, err = emulatortest.Exec(client, "/system identity print")
		return err
	}
	if err := run(); err != nil {
		t.Fatalf("before the crash: %v", err)
	}
	emu.Crash()
	if err := run(); err == nil {
		t.Fatal("crashed emulator answered")
	}
	if err := emu.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := run(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if emu.Addr() != "" {
		t.Fatalf("restart opened a TCP port %s on an emulator that never listened", emu.Addr())
	}
}

// newSession opens an SSH session to emu as admin, closed with the test.
func newSession(t *testing.T, emu *emulatortest.Emulator) *gossh.Session {
	t.Helper()
	c, err := emu.Dial("admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
