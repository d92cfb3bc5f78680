package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	mrand "math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// binary is the rds-emulator built once for this package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rds-emulator-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "rds-emulator")
	if out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rds-emulator: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type keyPair struct {
	signer      gossh.Signer
	privateFile string // OpenSSH private key, for the ssh client
	authorized  string // authorized_keys file, for the emulator
}

func newKeyPair(t *testing.T) keyPair {
	t.Helper()
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{signer: signer, privateFile: filepath.Join(dir, "id_ed25519"), authorized: filepath.Join(dir, "authorized_keys")}
	if err := os.WriteFile(kp.privateFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kp.authorized, gossh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	return kp
}

type process struct {
	cmd        *exec.Cmd
	addr       string
	knownHosts string // the known_hosts line printed at start
	stdout     *bytes.Buffer
}

var (
	listeningRe  = regexp.MustCompile(`(?m)^listening on (\S+)$`)
	knownHostsRe = regexp.MustCompile(`(?m)^known_hosts: (.+)$`)
)

// startEmulator runs the binary and waits for its "listening on" line.
func startEmulator(t *testing.T, stateDir string, kp keyPair, extra ...string) *process {
	t.Helper()
	args := append([]string{"--listen", "127.0.0.1:0", "--state-dir", stateDir, "--authorized-keys", kp.authorized}, extra...)
	cmd := exec.Command(binary, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stdout: &bytes.Buffer{}}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(30 * time.Second)
	for p.addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("emulator exited before listening; stderr:\n%s", stderr.String())
			}
			p.stdout.WriteString(l + "\n")
			if m := knownHostsRe.FindStringSubmatch(l); m != nil {
				p.knownHosts = m[1]
			}
			if m := listeningRe.FindStringSubmatch(l); m != nil {
				p.addr = m[1]
			}
		case <-timeout:
			t.Fatalf("no 'listening on' line in 30s; stdout so far:\n%s", p.stdout.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

func (p *process) kill9(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// TestOpenSSHClient is the acceptance check with the real OpenSSH client, pinning
// the host key from the known_hosts line the emulator prints.
func TestOpenSSHClient(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh client missing in CI; .ci/run installs openssh-client")
		}
		t.Skip("OpenSSH client not installed (CI installs it): " + err.Error())
	}
	kp := newKeyPair(t)
	p := startEmulator(t, t.TempDir(), kp)
	if !strings.Contains(p.stdout.String(), "host key fingerprint: SHA256:") {
		t.Fatalf("no fingerprint printed:\n%s", p.stdout.String())
	}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(p.knownHosts+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(p.addr, ":")
	ssh := func(tty bool, stdin string, command ...string) (string, error) {
		args := []string{"-i", kp.privateFile, "-p", port, "-o", "UserKnownHostsFile=" + knownHosts,
			"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
			"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"}
		if tty {
			args = append(args, "-tt")
		}
		args = append(args, "admin@"+host)
		args = append(args, command...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ssh", args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	if out, err := ssh(false, "", "/disk print detail"); err != nil || !strings.HasPrefix(out, "Flags: X - disabled; B - blocked") {
		t.Fatalf("print: %q %v", out, err)
	}
	add := "/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1G slot=pvc-1 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1"
	if out, err := ssh(false, "", add); err != nil || out != "" {
		t.Fatalf("add: %q %v", out, err)
	}
	if out, err := ssh(false, "", "/disk print detail where slot=pvc-1"); err != nil || !strings.Contains(out, "size=1 073 741 824") {
		t.Fatalf("print pvc-1: %q %v", out, err)
	}
	out, err := ssh(false, "", "/disk remove [find slot=nope]")
	if out != "failure: no such item\n" {
		t.Fatalf("remove missing: %q %v", out, err)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("remove missing: exit %v, want status 1", err)
	}
	out, err = ssh(true, "/system identity print\rquit\r")
	if err != nil || !strings.Contains(out, "[admin@rds] > ") || !strings.Contains(out, "name: rds") {
		t.Fatalf("interactive: %q %v", out, err)
	}

	// A different host key under the same address must be refused by the client.
	other := strings.Fields(p.knownHosts)
	forged := newKeyPair(t)
	other[len(other)-1] = strings.Fields(string(gossh.MarshalAuthorizedKey(forged.signer.PublicKey())))[1]
	if err := os.WriteFile(knownHosts, []byte(strings.Join(other, " ")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := ssh(false, "", "/system identity print"); err == nil {
		t.Fatalf("client accepted an unpinned host key: %q", out)
	}
}

// TestHostKeyFlag: --host-key serves the given key from any state directory
// (and writes none there); an encrypted or unreadable key stops the start
// with a message that says so.
func TestHostKeyFlag(t *testing.T) {
	kp := newKeyPair(t)
	host := newKeyPair(t)
	want := gossh.FingerprintSHA256(host.signer.PublicKey())
	for i := 0; i < 2; i++ {
		dir := t.TempDir()
		p := startEmulator(t, dir, kp, "--host-key", host.privateFile)
		if !strings.Contains(p.stdout.String(), "host key fingerprint: "+want) {
			t.Fatalf("start %d did not serve the given key %s:\n%s", i, want, p.stdout.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "ssh_host_ed25519_key")); !os.IsNotExist(err) {
			t.Fatalf("a host key was written to the state directory: %v", err)
		}
		client, err := gossh.Dial("tcp", p.addr, &gossh.ClientConfig{
			User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(kp.signer)},
			HostKeyCallback: gossh.FixedHostKey(host.signer.PublicKey()), Timeout: 10 * time.Second,
		})
		if err != nil {
			t.Fatalf("client pinning the given key: %v", err)
		}
		client.Close()
		p.kill9(t)
	}

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := gossh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(t.TempDir(), "encrypted")
	if err := os.WriteFile(encrypted, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	for file, msg := range map[string]string{encrypted: "passphrase-protected", kp.authorized: "--host-key", "/nonexistent/key": "no such file"} {
		out, err := exec.Command(binary, "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(),
			"--authorized-keys", kp.authorized, "--host-key", file).CombinedOutput()
		if err == nil || !strings.Contains(string(out), msg) {
			t.Errorf("--host-key %s: %v, output %q; want a failure saying %q", file, err, out, msg)
		}
	}
}

// TestKill9AtRandomPoints runs the real binary under SSH load, kills it with
// SIGKILL at random moments and checks that every acknowledged /disk add is there
// after a restart on the same state directory, and that the state always loads.
func TestKill9AtRandomPoints(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewSource(seed))
	kp := newKeyPair(t)
	dir := t.TempDir()
	acked := map[string]bool{}     // the add returned success to the client
	attempted := map[string]bool{} // the add was sent (it may have landed unacknowledged)
	for round := 0; round < 5; round++ {
		p := startEmulator(t, dir, kp, "--command-log", "off")
		cfg := &gossh.ClientConfig{User: "admin", Auth: []gossh.AuthMethod{gossh.PublicKeys(kp.signer)},
			HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second} // test only: the key is checked in TestOpenSSHClient
		// Everything acknowledged before this round must have survived.
		c, err := gossh.Dial("tcp", p.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// Every acknowledged add survived; anything else present was at least sent
		// (a command can land and be killed before its answer leaves).
		out := sshRun(t, c, `/disk print detail where slot~"^r"`)
		present := regexp.MustCompile(`slot="([^"]+)"`).FindAllStringSubmatch(out, -1)
		for _, m := range present {
			if !attempted[m[1]] {
				t.Fatalf("round %d: disk %s present but never sent", round, m[1])
			}
		}
		if len(present) < len(acked) {
			t.Fatalf("round %d: %d disks after restart, fewer than %d acknowledged", round, len(present), len(acked))
		}
		for slot := range acked {
			if out := sshRun(t, c, "/disk print count-only where slot="+slot); out != "1\n" {
				t.Fatalf("round %d: acknowledged %s lost", round, slot)
			}
		}
		c.Close()

		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				c, err := gossh.Dial("tcp", p.addr, cfg)
				if err != nil {
					return
				}
				defer c.Close()
				for i := 0; ; i++ {
					slot := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					s, err := c.NewSession()
					if err != nil {
						return
					}
					mu.Lock()
					attempted[slot] = true
					mu.Unlock()
					out, err := s.Output(fmt.Sprintf("/disk add type=file file-path=/storage-pool/k/%s.img file-size=1M slot=%s", slot, slot))
					s.Close()
					if err != nil || len(out) != 0 {
						return // killed mid-command: not acknowledged
					}
					mu.Lock()
					acked[slot] = true
					mu.Unlock()
				}
			}(w)
		}
		time.Sleep(time.Duration(50+rng.Intn(400)) * time.Millisecond)
		p.kill9(t)
		wg.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("no command was acknowledged: the test proved nothing")
	}
}

func sshRun(t *testing.T, c *gossh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output(cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return string(out)
}
