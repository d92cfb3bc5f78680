package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/rds-csi/rds-csi/emulator"
)

// TestBinaryAgainstEmulator builds rds-csi and runs it the way a Deployment
// does, with the flags other tools rely on, against an emulator: the flags wire
// up, the socket serves, Probe reports RDS, and a volume round trip works.
func TestBinaryAgainstEmulator(t *testing.T) {
	dir, err := os.MkdirTemp("", "rds-csi-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "rds-csi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := gossh.NewSignerFromKey(priv)
	block, _ := gossh.MarshalPrivateKey(priv, "")
	keyFile := filepath.Join(dir, "id_ed25519")
	os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
	emu, err := emulator.New(emulator.Config{Listen: "127.0.0.1:0", StateDir: filepath.Join(dir, "rds"),
		AuthorizedKeys: []gossh.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	os.WriteFile(knownHosts, gossh.MarshalAuthorizedKey(emu.HostKey()), 0o600)

	sock := filepath.Join(dir, "csi.sock")
	cmd := exec.Command(bin, "--mode=controller", "--endpoint", "unix://"+sock, "--node-id", "node-a",
		"--rds-address", emu.Addr(), "--rds-user", "admin", "--rds-key-file", keyFile, "--rds-known-hosts", knownHosts,
		"--metrics-address", "127.0.0.1:0", "--v", "2")
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("rds-csi output:\n%s", logs.String())
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.GetName() != "rds.csi.mikrotik.com" {
		t.Fatalf("plugin info: %v %v", info, err)
	}
	probe, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !probe.GetReady().GetValue() {
		t.Fatalf("probe: %v %v", probe, err)
	}
	cc := csi.NewControllerClient(conn)
	vol, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-binary", CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if got := vol.GetVolume().GetVolumeContext()["nvmeAddress"]; got != "127.0.0.1" {
		t.Fatalf("nvmeAddress defaults to the RDS host, got %q", got)
	}
	if out, _ := emu.Exec(ctx, "admin", "/disk print count-only where slot=pvc-binary"); out != "1\n" {
		t.Fatalf("disk on RDS: %q", out)
	}
	if _, err := cc.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: "pvc-binary"}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"Volume created"`) {
		if time.Now().After(deadline) {
			t.Fatalf("structured logs missing:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		c    config
		want string
	}{
		{config{mode: "sideways"}, "--mode"},
		{config{mode: "controller"}, "--rds-address"},
		{config{mode: "node"}, "--node-id"},
		{config{mode: "node", nodeID: "n", dataPlane: "loop", nodeStateDir: t.TempDir()}, "--loop-backing-dir"},
		{config{mode: "controller", operationTimeout: time.Minute, rdsCommandTimeout: 2 * time.Minute}, "--rds-command-timeout"},
		{config{mode: "controller", operationTimeout: -time.Second}, "--operation-timeout"},
	} {
		err := run(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error naming %s", tc.c, err, tc.want)
		}
	}
}

// lockedBuffer collects a child process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeErrorEndsTheProcess: a driver that cannot open its socket exits with
// the error instead of holding leadership without serving.
func TestServeErrorEndsTheProcess(t *testing.T) {
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	os.WriteFile(notADir, nil, 0o600)
	done := make(chan error, 1)
	go func() {
		done <- run(config{mode: "node", nodeID: "n", dataPlane: "nvme", nodeStateDir: filepath.Join(dir, "state"),
			endpoint: "unix://" + filepath.Join(notADir, "csi.sock")})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("run returned nil for an endpoint it cannot listen on")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run kept going without a socket")
	}
}

// TestHealthAndReadiness: /healthz answers for the process whatever RDS does,
// /readyz follows RDS, so an outage makes the Pod unready but never restarts it.
func TestHealthAndReadiness(t *testing.T) {
	var mu sync.Mutex
	var rdsErr error
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := serveMetrics(addr, prometheus.NewRegistry(), func() error { mu.Lock(); defer mu.Unlock(); return rdsErr }); err != nil {
		t.Fatal(err)
	}
	get := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 {
		t.Fatal("not healthy and ready with RDS up")
	}
	mu.Lock()
	rdsErr = errors.New("RDS disconnected")
	mu.Unlock()
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz during an RDS outage: %d", got)
	}
	if got := get("/healthz"); got != 200 {
		t.Fatalf("/healthz during an RDS outage: %d, want 200 (no restart loop)", got)
	}
}
