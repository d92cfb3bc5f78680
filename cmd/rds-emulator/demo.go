package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/emulator"
)

// demoScript is the scripted session `rds-emulator demo` plays: the commands the
// driver uses, a few of RouterOS's awkward answers, and a crash the disks survive.
var demoScript = []string{
	"/system identity print",
	"/system resource print",
	"/disk print detail",
	"/disk add type=file file-path=/storage-pool/k8s/pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11.img file-size=50G slot=pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11",
	"/disk add type=file file-path=/storage-pool/k8s/pvc-a1.img file-size=10G slot=pvc-a1 nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-a1",
	"/disk print detail where slot~\"^pvc-\"",
	"/disk print detail where mount-point=\"storage-pool\"",
	"/file print detail",
	"/disk add type=file file-path=/storage-pool/k8s/huge.img file-size=100T slot=huge",
	"/disk remove [find slot=nope]",
	"/disk frob",
	"/disk print detail where slot=\"pvc-a1\"; /disk remove [find slot=pvc-a1]",
	"/disk print detail where slot=\"x\" garbage",
	"#crash",
	"/disk print detail where slot=pvc-a1",
	"/file remove [find name=\"storage-pool/k8s/pvc-a1.img\"]",
	"/file print detail where name~\"pvc-a1\"",
}

// demo starts an emulator in a temporary directory and plays demoScript over a
// real SSH connection, printing a transcript as a terminal would show it.
func demo(out io.Writer) error {
	dir, err := os.MkdirTemp("", "rds-emulator-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return err
	}
	emu, err := emulator.New(emulator.Config{
		Listen: "127.0.0.1:0", StateDir: dir, AuthorizedKeys: []gossh.PublicKey{signer.PublicKey()},
	})
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := emu.Start(); err != nil {
		return err
	}
	fmt.Fprintf(out, "# rds-emulator listening on %s, state in %s\n", emu.Addr(), dir)
	fmt.Fprintf(out, "# host key %s (pinned by the client below)\n\n", gossh.FingerprintSHA256(emu.HostKey()))
	cfg := &gossh.ClientConfig{
		User:            "admin",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(emu.HostKey()),
		Timeout:         10 * time.Second,
	}
	client, err := gossh.Dial("tcp", emu.Addr(), cfg)
	if err != nil {
		return err
	}
	defer func() { client.Close() }()
	for _, cmd := range demoScript {
		if cmd == "#crash" {
			fmt.Fprintf(out, "# --- RDS crashes: every connection drops; it comes back a second later ---\n")
			emu.Crash()
			time.Sleep(time.Second)
			if err := emu.Restart(); err != nil {
				return err
			}
			client.Close()
			if client, err = gossh.Dial("tcp", emu.Addr(), cfg); err != nil {
				return err
			}
			fmt.Fprintf(out, "# --- reconnected; pvc-a1's disk is gone but its file was left behind ---\n\n")
			continue
		}
		sess, err := client.NewSession()
		if err != nil {
			return err
		}
		text, runErr := sess.CombinedOutput(cmd)
		sess.Close()
		status := ""
		if ee, ok := runErr.(*gossh.ExitError); ok {
			status = fmt.Sprintf("   # exit status %d", ee.ExitStatus())
		} else if runErr != nil {
			return runErr
		}
		fmt.Fprintf(out, "[admin@rds] > %s%s\n%s", cmd, status, text)
		if !strings.HasSuffix(string(text), "\n") && len(text) > 0 {
			fmt.Fprintln(out)
		}
		fmt.Fprintln(out)
	}
	return nil
}
