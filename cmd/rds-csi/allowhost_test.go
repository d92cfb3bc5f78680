package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/loop"
	"github.com/rds-csi/rds-csi/driver/exportacl"
	"github.com/rds-csi/rds-csi/driver/hostnqn"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator"
)

// TestLoopRefusesHostTheExportDoesNotAllow wires the loop data plane as
// --mode=node --restrict-hosts does: its own SSH connection to the emulator
// from the --rds-* flags, the allow-list read as RouterOS prints it. A node
// the export does not allow is refused before any device is touched; the
// allowed node, and any node while the list is empty, get past the check
// (to the missing backing file of this test's empty backing directory); a
// slot holding another file, or an unreachable emulator, answer an error,
// never "any host".
func TestLoopRefusesHostTheExportDoesNotAllow(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := gossh.NewSignerFromKey(priv)
	block, _ := gossh.MarshalPrivateKey(priv, "")
	keyFile := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
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
	if err := os.WriteFile(knownHosts, gossh.MarshalAuthorizedKey(emu.HostKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config{rdsAddress: emu.Addr(), rdsUser: "admin", rdsKeyFile: keyFile, rdsKnownHosts: knownHosts,
		rdsConnectTimeout: 30 * time.Second, rdsCommandTimeout: 30 * time.Second, basePath: "/storage-pool/k8s"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mgr, err := nodeRDS(ctx, c, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	client, err := rds.NewClient(mgr, rds.ClientOptions{BasePath: c.basePath})
	if err != nil {
		t.Fatal(err)
	}
	run := func(cmd string) {
		t.Helper()
		out, err := mgr.Run(ctx, cmd)
		if kind, _ := rds.Classify(out); err != nil || kind != nil {
			t.Fatalf("%s: %q %v", cmd, out, err)
		}
	}
	const slot, file = "pvc-1", "/storage-pool/k8s/pvc-1.img"
	run(`/disk add type=file file-path=` + file + ` file-size=1M slot=` + slot + ` nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`)
	lp, err := loop.New(loop.Options{BackingDir: filepath.Join(dir, "node"), AllowHost: exportacl.AllowList(client)})
	if err != nil {
		t.Fatal(err)
	}
	attach := func(node, filePath string) error {
		h, err := hostnqn.For(node)
		if err != nil {
			t.Fatal(err)
		}
		_, err = lp.Attach(ctx, dataplane.Target{VolumeID: slot, FilePath: filePath, HostNQN: h})
		return err
	}
	admitted := func(err error) bool {
		return errors.Is(err, fs.ErrNotExist) && !errors.Is(err, dataplane.ErrHostNotAllowed)
	}

	if err := attach("node-b", file); !admitted(err) {
		t.Fatalf("empty allow-list (any host): node-b %v, want past the check", err)
	}
	a, _ := hostnqn.For("node-a")
	run(`/disk set [find slot=` + slot + `] ` + rds.AllowHostProperty + `="` + a + `"`)
	if err := attach("node-b", file); !errors.Is(err, dataplane.ErrHostNotAllowed) {
		t.Fatalf("export allows node-a only: node-b %v, want ErrHostNotAllowed", err)
	}
	if err := attach("node-a", file); !admitted(err) {
		t.Fatalf("export allows node-a: node-a %v, want past the check", err)
	}
	if err := attach("node-a", "/storage-pool/k8s/other.img"); !errors.Is(err, rds.ErrNotFound) {
		t.Fatalf("slot holds another file: %v, want ErrNotFound", err)
	}
	emu.Crash()
	if err := attach("node-a", file); !errors.Is(err, rds.ErrUnavailable) {
		t.Fatalf("emulator down: %v, want ErrUnavailable (never admitted)", err)
	}
}
