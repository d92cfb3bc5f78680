package rds

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestCmdDiskAllowHosts(t *testing.T) {
	got := cmdDiskAllowHosts("pvc-1", "/storage-pool/k8s/pvc-1.img", "nqn.2026-12.io.rds-csi:node:a,nqn.2026-12.io.rds-csi:node:b")
	want := `/disk set [find slot="pvc-1" and file-path="/storage-pool/k8s/pvc-1.img"] nvme-tcp-server-allow-host-name="nqn.2026-12.io.rds-csi:node:a,nqn.2026-12.io.rds-csi:node:b"`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if v := verbOf(got); v != VerbSet {
		t.Errorf("verb %q, want set", v)
	}
}

func TestEncodeAllowedHosts(t *testing.T) {
	a, b, c := "nqn.2026-12.io.rds-csi:node:a", "nqn.2026-12.io.rds-csi:node:b", "nqn.2026-12.io.rds-csi:node:c"
	for _, tc := range []struct {
		name  string
		hosts []string
		want  string // "" means refused
	}{
		{"one", []string{a}, a},
		{"two sorted", []string{b, a}, a + "," + b},
		{"duplicate collapses", []string{a, a}, a},
		{"none would open to all", nil, ""},
		{"three is a bug", []string{a, b, c}, ""},
		{"quote injection", []string{`nqn.2026-12.io.x:a" nvme-tcp-export=no "`}, ""},
		{"comma inside a host", []string{a + "," + c}, ""},
		{"command substitution", []string{"nqn.2026-12.io.x:[/disk remove 0]"}, ""},
		{"empty host", []string{""}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeAllowedHosts(tc.hosts)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("encode(%q) = %q, %v; want ErrInvalidArgument", tc.hosts, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("encode(%q) = %q, %v; want %q", tc.hosts, got, err, tc.want)
			}
			if back := AllowedHosts(got); strings.Join(back, ",") != got {
				t.Errorf("AllowedHosts(%q) = %q", got, back)
			}
		})
	}
}

// TestEmulatorSetAllowedHosts: the value set is read back as set, at 512
// and at 80 columns (where the long value wraps), and a refused argument
// sends nothing.
func TestEmulatorSetAllowedHosts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		login func(*SSHConfig)
	}{
		{"ct512w", func(*SSHConfig) {}},
		{"80 columns", func(c *SSHConfig) { c.NoLoginOptions = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startEmu(t, emulatortest.Options{PoolSize: 1 << 40}, nil, func(sc *SSHConfig, _ *ManagerConfig) { tc.login(sc) })
			c, ctx := s.c, context.Background()
			slot := "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"
			path := testBase + "/" + slot + ".img"
			if _, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: slot, FilePath: path, Size: 1 << 30,
				Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:" + slot}); err != nil {
				t.Fatal(err)
			}
			d, err := c.GetDisk(ctx, slot)
			if err != nil {
				t.Fatal(err)
			}
			if hosts, printed := d.AllowedHosts(); !printed || hosts != nil {
				t.Fatalf("new disk allows %q (printed %v); want any host, printed", hosts, printed)
			}
			a := "nqn.2026-12.io.rds-csi:node:worker-with-a-rather-long-name-a.example.com"
			b := "nqn.2026-12.io.rds-csi:node:worker-with-a-rather-long-name-b.example.com"
			for _, want := range [][]string{{a}, {a, b}, {b}} {
				d, err := c.SetAllowedHosts(ctx, slot, path, want)
				if err != nil {
					t.Fatalf("SetAllowedHosts(%q): %v", want, err)
				}
				got, _ := d.AllowedHosts()
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after SetAllowedHosts(%q) the disk allows %q", want, got)
				}
				if st, ok := s.emu.Store().DiskBySlot(slot); !ok || st.NVMeTCPServerAllowHostName != strings.Join(want, ",") {
					t.Fatalf("emulator holds %q, want %q", st.NVMeTCPServerAllowHostName, strings.Join(want, ","))
				}
			}
			sets := s.log.count("/disk set")
			if _, err := c.SetAllowedHosts(ctx, slot, path, []string{b}); err != nil {
				t.Fatal(err)
			}
			if n := s.log.count("/disk set"); n != sets {
				t.Errorf("setting the value already in place sent %d more /disk set", n-sets)
			}
			if _, err := c.SetAllowedHosts(ctx, slot, path, []string{`x" nvme-tcp-export=no "`}); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("hostile host: %v, want ErrInvalidArgument", err)
			}
			if _, err := c.SetAllowedHosts(ctx, "pvc-missing", testBase+"/pvc-missing.img", []string{a}); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing slot: %v, want ErrNotFound", err)
			}
			// The slot holds a disk, but not with the file the driver owns.
			if _, err := c.SetAllowedHosts(ctx, slot, testBase+"/elsewhere/"+slot+".img", []string{a}); !errors.Is(err, ErrNotFound) {
				t.Errorf("slot with another file: %v, want ErrNotFound", err)
			}
			if _, err := c.SetAllowedHosts(ctx, slot, "/other-pool/"+slot+".img", []string{a}); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("path outside the base: %v, want ErrInvalidArgument", err)
			}
			if n := s.log.count("/disk set"); n != sets {
				t.Errorf("refused calls sent %d /disk set", n-sets)
			}
		})
	}
}

// TestEmulatorCreateWithAllowedHosts: a disk created (or copied) with an
// allow-list has it from the reply of its /disk add on, and a list that
// could not be set never sends the add.
func TestEmulatorCreateWithAllowedHosts(t *testing.T) {
	s := startEmu(t, emulatortest.Options{PoolSize: 1 << 40}, nil, nil)
	c, ctx := s.c, context.Background()
	nobody := "nqn.2026-12.io.rds-csi:nobody"
	slot := "pvc-0d1f6a3e-7c2b-4f7e-8a0d-5b9e2c4f1a01"
	d, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: slot, FilePath: testBase + "/" + slot + ".img", Size: 1 << 30,
		Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:" + slot, AllowedHosts: []string{nobody}})
	if err != nil {
		t.Fatal(err)
	}
	if hosts, _ := d.AllowedHosts(); !slices.Equal(hosts, []string{nobody}) {
		t.Fatalf("created disk allows %q, want only %q", hosts, nobody)
	}
	clone := "pvc-0d1f6a3e-7c2b-4f7e-8a0d-5b9e2c4f1a02"
	d, err = c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: slot, Slot: clone, FilePath: testBase + "/" + clone + ".img",
		Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:" + clone, AllowedHosts: []string{nobody}})
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := s.emu.Store().DiskBySlot(clone); !ok || st.NVMeTCPServerAllowHostName != nobody {
		t.Fatalf("copied disk: emulator holds allow-list %q, want %q", st.NVMeTCPServerAllowHostName, nobody)
	}
	if hosts, _ := d.AllowedHosts(); !slices.Equal(hosts, []string{nobody}) {
		t.Fatalf("copied disk allows %q, want only %q", hosts, nobody)
	}
	adds := s.log.count("/disk add")
	for _, tc := range []struct {
		name  string
		req   CreateDiskRequest
		hosts []string
	}{
		{"hostile host", CreateDiskRequest{Export: true, Port: 4420}, []string{`x" nvme-tcp-export=no "`}},
		{"empty list (any host)", CreateDiskRequest{Export: true, Port: 4420}, []string{}},
		{"three hosts", CreateDiskRequest{Export: true, Port: 4420}, []string{nobody + "1", nobody + "2", nobody + "3"}},
		{"not exported", CreateDiskRequest{}, []string{nobody}},
	} {
		other := "pvc-0d1f6a3e-7c2b-4f7e-8a0d-5b9e2c4f1a09"
		tc.req.Slot, tc.req.FilePath, tc.req.Size, tc.req.AllowedHosts = other, testBase+"/"+other+".img", 1<<30, tc.hosts
		if tc.req.Export {
			tc.req.NQN = "nqn.2000-02.com.mikrotik:" + other
		}
		if _, err := c.CreateDisk(ctx, tc.req); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", tc.name, err)
		}
	}
	if n := s.log.count("/disk add"); n != adds {
		t.Errorf("refused allow-lists sent %d /disk add", n-adds)
	}
}
