package rds

import (
	"context"
	"errors"
	"strings"
	"testing"

	libclock "github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/internal/promtest"
)

const testBase = "/storage-pool/k8s"

func newTestClient(t *testing.T, tr Transport) (*Client, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewClient(tr, ClientOptions{BasePath: testBase, Registerer: reg, Clock: clock.FromLibrary(libclock.NewMock())})
	if err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func req(slot string, size int64) CreateDiskRequest {
	return CreateDiskRequest{Slot: slot, FilePath: testBase + "/" + slot + ".img", Size: size, Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:" + slot}
}

func TestClientRoundTrip(t *testing.T) {
	f := newFakeRDS()
	c, reg := newTestClient(t, f)
	ctx := context.Background()

	// A long slot makes the fake's output wrap inside values.
	slot := "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"
	d, err := c.CreateDisk(ctx, req(slot, 10_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != 10_000_269_312 || d.Slot != slot || d.FilePath != testBase+"/"+slot+".img" || d.NQN != "nqn.2000-02.com.mikrotik:"+slot || d.Port != 4420 || !d.Export {
		t.Fatalf("created %+v", d)
	}
	if f.count("/disk add type=file file-path=") != 1 || !strings.Contains(strings.Join(f.commands(), "\n"), "file-size=10000269312 ") {
		t.Errorf("size not sent as rounded bytes: %q", f.commands())
	}

	got, err := c.GetDisk(ctx, slot)
	if err != nil || got.Size != d.Size {
		t.Fatalf("GetDisk = %+v, %v", got, err)
	}
	if _, err := c.CreateDisk(ctx, req("pvc-b", 1<<30)); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListDisks(ctx, "^pvc-")
	if err != nil || len(list) != 2 {
		t.Fatalf("ListDisks = %+v, %v", list, err)
	}

	d, err = c.ResizeDisk(ctx, "pvc-b", 2<<30+1)
	if err != nil || d.Size != 2<<30+1<<20 {
		t.Fatalf("ResizeDisk = %+v, %v", d, err)
	}
	n := len(f.commands())
	if d, err = c.ResizeDisk(ctx, "pvc-b", 1<<30); err != nil || d.Size != 2<<30+1<<20 {
		t.Fatalf("shrinking resize = %+v, %v", d, err)
	}
	if f.count("/disk set") != 1 || len(f.commands()) != n+1 {
		t.Errorf("a resize to a smaller size must be a read-only no-op: %q", f.commands()[n:])
	}

	snap, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: "pvc-b", Slot: "snap-b", FilePath: testBase + "/snap-b.img"})
	if err != nil || snap.Size != 2<<30+1<<20 || snap.Export {
		t.Fatalf("CopyDisk = %+v, %v", snap, err)
	}
	if _, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: "pvc-b", Slot: "snap-b", FilePath: testBase + "/snap-b.img"}); err != nil {
		t.Fatalf("repeated CopyDisk: %v", err)
	}
	if f.count("/disk add type=file copy-from") != 1 {
		t.Errorf("copy repeated: %q", f.commands())
	}
	if _, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: "nope", Slot: "snap-c", FilePath: testBase + "/snap-c.img"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("copy from missing source: %v", err)
	}

	files, err := c.ListFiles(ctx, `^storage-pool/k8s/.*\.img$`)
	if err != nil || len(files) != 3 {
		t.Fatalf("ListFiles = %+v, %v", files, err)
	}

	cp, err := c.PoolCapacity(ctx, "storage-pool")
	if err != nil || cp.Size != 100<<30 || cp.Free != 100<<30-(10_000_269_312+2*(2<<30+1<<20)) {
		t.Fatalf("PoolCapacity = %+v, %v", cp, err)
	}
	if _, err := c.PoolCapacity(ctx, "other-pool"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing pool: %v", err)
	}

	for _, s := range []string{slot, "pvc-b", "snap-b"} {
		if err := c.DeleteDisk(ctx, s, testBase+"/"+s+".img"); err != nil {
			t.Fatalf("DeleteDisk(%s): %v", s, err)
		}
	}
	if len(f.disks) != 0 || len(f.files) != 1 {
		t.Fatalf("leftovers: disks=%d files=%v", len(f.disks), f.files)
	}
	if err := c.DeleteDisk(ctx, "pvc-b", testBase+"/pvc-b.img"); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
	if _, err := c.GetDisk(ctx, "pvc-b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetDisk after delete: %v", err)
	}

	id, err := c.Identity(ctx)
	if err != nil || id != "rds-test" {
		t.Errorf("Identity = %q, %v", id, err)
	}
	v, err := c.Version(ctx)
	if err != nil || v != "7.16 (stable)" {
		t.Errorf("Version = %q, %v", v, err)
	}

	if got := counter(t, reg, "rds_csi_rds_commands_total", map[string]string{"verb": "add", "result": "success"}); got != 3 {
		t.Errorf("add/success = %v, want 3", got)
	}
	if got := counter(t, reg, "rds_csi_rds_commands_total", map[string]string{"verb": "print", "result": "not_found"}); got != 0 {
		t.Errorf("print/not_found = %v: an empty print is a success", got)
	}
}

// counter returns a counter's value, or the sample count of a histogram.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return promtest.Value(t, reg, name, labels)
}

func TestCreateDiskIdempotency(t *testing.T) {
	tests := []struct {
		name    string
		first   CreateDiskRequest
		second  CreateDiskRequest
		wantErr error
		reason  string
	}{
		{name: "same size", first: req("a", 5<<20), second: req("a", 5<<20)},
		{name: "same after rounding", first: req("a", 5<<20-7), second: req("a", 5<<20)},
		{name: "different size", first: req("a", 5<<20), second: req("a", 6<<20), wantErr: ErrExists, reason: "size"},
		{name: "smaller size", first: req("a", 5<<20), second: req("a", 4<<20), wantErr: ErrExists, reason: "size"},
		{name: "different path", first: req("a", 5<<20), second: CreateDiskRequest{Slot: "a", FilePath: testBase + "/other.img", Size: 5 << 20}, wantErr: ErrExists, reason: "file path"},
		{name: "different nqn", first: req("a", 5<<20), second: func() CreateDiskRequest { r := req("a", 5<<20); r.NQN += "x"; return r }(), wantErr: ErrExists, reason: "export"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRDS()
			c, _ := newTestClient(t, f)
			if _, err := c.CreateDisk(context.Background(), tt.first); err != nil {
				t.Fatal(err)
			}
			d, err := c.CreateDisk(context.Background(), tt.second)
			if tt.wantErr == nil {
				if err != nil || d.Size != 5<<20 {
					t.Fatalf("retry = %+v, %v", d, err)
				}
			} else {
				var ee *ExistsError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &ee) || ee.Reason != tt.reason {
					t.Fatalf("err = %v, want %v (%s)", err, tt.wantErr, tt.reason)
				}
			}
			if n := f.count("/disk add"); n != 1 || len(f.disks) != 1 {
				t.Fatalf("%d adds, %d disks", n, len(f.disks))
			}
		})
	}
}

// TestCreateDiskFailures covers how each kind of add failure is decided.
func TestCreateDiskFailures(t *testing.T) {
	dropAfterExec := func(f *fakeRDS) {
		// The command runs on RDS, then the connection drops before the
		// answer arrives.
		f.after = func(cmd, out string) (string, error) {
			if strings.HasPrefix(cmd, "/disk add") {
				return "", unavailablef("connection lost")
			}
			return out, nil
		}
	}
	dropBeforeExec := func(f *fakeRDS) {
		f.hook = func(cmd string) (string, error, bool) {
			if strings.HasPrefix(cmd, "/disk add") {
				return "", errors.New("broken pipe"), true
			}
			return "", nil, false
		}
	}
	tests := []struct {
		name      string
		setup     func(*fakeRDS)
		size      int64
		wantErr   error
		wantDisks int
		wantAdds  int
		wantGets  int
	}{
		{name: "not enough space", size: 200 << 30, wantErr: ErrCapacity, wantAdds: 1, wantGets: 1},
		{name: "rejected is final", setup: func(f *fakeRDS) {
			f.hook = func(cmd string) (string, error, bool) {
				if strings.HasPrefix(cmd, "/disk add") {
					return "syntax error (line 1 column 12)\n", nil, true
				}
				return "", nil, false
			}
		}, size: 1 << 20, wantErr: ErrRejected, wantAdds: 1, wantGets: 1},
		{name: "dropped after it ran: found, success", setup: dropAfterExec, size: 1 << 20, wantDisks: 1, wantAdds: 1, wantGets: 2},
		{name: "dropped before it ran: unavailable, not retried", setup: dropBeforeExec, size: 1 << 20, wantErr: ErrUnavailable, wantAdds: 1, wantGets: 2},
		{name: "unknown failure, not created", setup: func(f *fakeRDS) {
			f.hook = func(cmd string) (string, error, bool) {
				if strings.HasPrefix(cmd, "/disk add") {
					return "failure: controller on fire\n", nil, true
				}
				return "", nil, false
			}
		}, size: 1 << 20, wantErr: ErrFailed, wantAdds: 1, wantGets: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRDS()
			if tt.setup != nil {
				tt.setup(f)
			}
			c, _ := newTestClient(t, f)
			d, err := c.CreateDisk(context.Background(), req("pvc-x", tt.size))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || d == nil || d.Slot != "pvc-x" {
				t.Fatalf("CreateDisk = %+v, %v", d, err)
			}
			if got := len(f.disks); got != tt.wantDisks {
				t.Errorf("%d disks, want %d", got, tt.wantDisks)
			}
			if got := f.count("/disk add"); got != tt.wantAdds {
				t.Errorf("%d adds, want %d", got, tt.wantAdds)
			}
			if got := f.count("/disk print detail where slot="); got != tt.wantGets {
				t.Errorf("%d lookups, want %d: %q", got, tt.wantGets, f.commands())
			}
		})
	}

	// After "dropped before it ran", a retry looks first and creates once.
	f := newFakeRDS()
	dropBeforeExec(f)
	c, _ := newTestClient(t, f)
	if _, err := c.CreateDisk(context.Background(), req("pvc-x", 1<<20)); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	f.hook = nil
	if _, err := c.CreateDisk(context.Background(), req("pvc-x", 1<<20)); err != nil {
		t.Fatal(err)
	}
	if len(f.disks) != 1 {
		t.Fatalf("%d disks", len(f.disks))
	}
}

func TestDeleteDisk(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(*fakeRDS, *Client)
		slot    string
		path    string
		wantErr error
		check   func(*testing.T, *fakeRDS)
	}{
		{name: "missing disk and file", slot: "gone", path: testBase + "/gone.img"},
		{name: "missing disk, leftover file", slot: "half", path: testBase + "/half.img",
			setup: func(f *fakeRDS, _ *Client) { f.files["storage-pool/k8s/half.img"] = 1 },
			check: func(t *testing.T, f *fakeRDS) {
				if _, ok := f.files["storage-pool/k8s/half.img"]; ok {
					t.Error("leftover file not removed")
				}
			}},
		{name: "path mismatch refuses", slot: "a", path: testBase + "/b.img", wantErr: ErrInvalidArgument,
			setup: func(f *fakeRDS, c *Client) { mustCreate(t, c, "a") },
			check: func(t *testing.T, f *fakeRDS) {
				if len(f.disks) != 1 {
					t.Error("disk removed despite mismatch")
				}
			}},
		{name: "file used by another disk is kept", slot: "gone", path: testBase + "/gone.img", wantErr: ErrInUse,
			setup: func(f *fakeRDS, c *Client) {
				f.disks = append(f.disks, &testDisk{slot: "a", path: testBase + "/gone.img", size: 1 << 20})
				f.files["storage-pool/k8s/gone.img"] = 1 << 20
			},
			check: func(t *testing.T, f *fakeRDS) {
				if _, ok := f.files["storage-pool/k8s/gone.img"]; !ok || f.count("/file remove")+f.count("/disk remove") != 0 {
					t.Error("file of a live disk removed")
				}
			}},
		{name: "a file not named after the slot is refused", slot: "gone", path: testBase + "/a.img", wantErr: ErrInvalidArgument,
			setup: func(f *fakeRDS, c *Client) { mustCreate(t, c, "a") },
			check: func(t *testing.T, f *fakeRDS) {
				for _, c := range f.commands() {
					if strings.Contains(c, "gone") || strings.Contains(c, " remove ") {
						t.Errorf("command sent for a refused delete: %q", c)
					}
				}
			}},
		{name: "disk in the slot with a file elsewhere is left alone", slot: "foreign", path: testBase + "/foreign.img",
			setup: func(f *fakeRDS, _ *Client) {
				f.disks = append(f.disks, &testDisk{slot: "foreign", path: "/storage-pool/other/foreign.img", size: 1 << 20})
				f.files["storage-pool/other/foreign.img"] = 1 << 20
			},
			check: func(t *testing.T, f *fakeRDS) {
				if f.count("/disk remove")+f.count("/file remove") != 0 || len(f.disks) != 1 {
					t.Error("foreign disk touched")
				}
			}},
		{name: "both: our leftover file goes, the foreign disk in the slot stays", slot: "foreign", path: testBase + "/foreign.img",
			setup: func(f *fakeRDS, _ *Client) {
				f.disks = append(f.disks, &testDisk{slot: "foreign", path: "/storage-pool/other/foreign.img", size: 1 << 20})
				f.files["storage-pool/k8s/foreign.img"] = 1
			},
			check: func(t *testing.T, f *fakeRDS) {
				if f.count("/disk remove") != 0 || len(f.disks) != 1 {
					t.Error("foreign disk touched")
				}
				if _, ok := f.files["storage-pool/k8s/foreign.img"]; ok {
					t.Error("leftover file at our own path not removed")
				}
			}},
		{name: "remove that does nothing is caught", slot: "a", path: testBase + "/a.img", wantErr: ErrFailed,
			setup: func(f *fakeRDS, c *Client) { mustCreate(t, c, "a"); f.ignoreRemove = true }},
		{name: "file remove that does nothing is caught", slot: "gone", path: testBase + "/gone.img", wantErr: ErrFailed,
			setup: func(f *fakeRDS, c *Client) { f.files["storage-pool/k8s/gone.img"] = 1; f.ignoreRemove = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRDS()
			c, _ := newTestClient(t, f)
			if tt.setup != nil {
				tt.setup(f, c)
			}
			err := c.DeleteDisk(ctx, tt.slot, tt.path)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("DeleteDisk = %v, want %v", err, tt.wantErr)
			}
			for _, cmd := range f.commands() {
				if strings.HasPrefix(cmd, "/file remove") && (strings.Contains(cmd, "~") || !strings.Contains(cmd, `name="storage-pool/`)) {
					t.Errorf("file removal not by exact name without leading slash: %s", cmd)
				}
			}
			if tt.check != nil {
				tt.check(t, f)
			}
		})
	}
}

func mustCreate(t *testing.T, c *Client, slot string) {
	t.Helper()
	if _, err := c.CreateDisk(context.Background(), req(slot, 1<<20)); err != nil {
		t.Fatal(err)
	}
}

func TestClientReadsSamples(t *testing.T) {
	// Each read is one script: the listing, then its count.
	proven := func(menu, where, sample, count string) (string, string) {
		return provenScript("", listing{menu: menu, where: where}), readSample(t, sample) + count
	}
	script := map[string]string{}
	for _, r := range [][4]string{
		{"disk", `slot="pvc-a1"`, "disk-print-detail-two.txt", "2\n"},
		{"disk", `slot~"^pvc-"`, "disk-print-detail-two.txt", "2\n"},
		{"disk", `slot="none"`, "disk-print-empty.txt", "0\n"},
		{"disk", `mount-point="storage-pool"`, "pool-capacity.txt", "1\n"},
		{"file", `name~"^storage-pool/k8s"`, "file-print-detail.txt", "3\n"},
	} {
		cmd, out := proven(r[0], r[1], r[2], r[3])
		script[cmd] = out
	}
	tr := transportFunc(func(_ context.Context, cmd string) (string, error) {
		out, ok := script[cmd]
		if !ok {
			return "bad command name x (line 1 column 2)\n", nil
		}
		return out, nil
	})
	c, _ := newTestClient(t, tr)
	ctx := context.Background()
	// The two-disk sample answers a one-slot query with a disk it did not
	// ask for: such a reply answers nothing.
	if d, err := c.GetDisk(ctx, "pvc-a1"); !errors.Is(err, ErrFailed) {
		t.Fatalf("GetDisk = %+v, %v; want ErrFailed for a reply that does not match its where clause", d, err)
	}
	ds, err := c.ListDisks(ctx, "^pvc-")
	if err != nil || len(ds) != 2 || ds[1].Size != 1649267441664 || ds[1].FileSize != "1.5TiB" {
		t.Fatalf("ListDisks = %+v, %v", ds, err)
	}
	if _, err := c.GetDisk(ctx, "none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDisk(none) = %v", err)
	}
	cp, err := c.PoolCapacity(ctx, "storage-pool")
	if err != nil || *cp != (Capacity{Size: 7681574174720, Free: 5632440000000}) {
		t.Fatalf("PoolCapacity = %+v, %v", cp, err)
	}
	fs, err := c.ListFiles(ctx, "^storage-pool/k8s")
	if err != nil || len(fs) != 3 || !fs[0].IsDir() || fs[2].Size != 3<<39 {
		t.Fatalf("ListFiles = %+v, %v", fs, err)
	}
	if _, err := c.Identity(ctx); !errors.Is(err, ErrRejected) {
		t.Fatalf("Identity on a bad command = %v, want ErrRejected", err)
	}
}

type transportFunc func(ctx context.Context, cmd string) (string, error)

func (f transportFunc) Run(ctx context.Context, cmd string) (string, error) { return f(ctx, cmd) }

func TestClientTransportErrors(t *testing.T) {
	tests := []struct {
		err  error
		want []error
	}{
		{errors.New("EOF"), []error{ErrUnavailable}},
		{context.DeadlineExceeded, []error{ErrUnavailable, context.DeadlineExceeded}},
		{unavailablef("x: %w", context.Canceled), []error{ErrUnavailable, context.Canceled}},
		{ErrFailed, []error{ErrFailed}},
	}
	for _, tt := range tests {
		c, reg := newTestClient(t, transportFunc(func(context.Context, string) (string, error) { return "", tt.err }))
		_, err := c.GetDisk(context.Background(), "a")
		for _, w := range tt.want {
			if !errors.Is(err, w) {
				t.Errorf("transport %v: got %v, want %v", tt.err, err, w)
			}
		}
		if got := counter(t, reg, "rds_csi_rds_commands_total", map[string]string{"verb": "print", "result": resultOf(err)}); got != 1 {
			t.Errorf("metric for %v = %v", err, got)
		}
	}
	// A context that is already over never reaches the transport.
	called := false
	c, _ := newTestClient(t, transportFunc(func(context.Context, string) (string, error) { called = true; return "", nil }))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Identity(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) || called {
		t.Errorf("cancelled ctx: %v called=%v", err, called)
	}
}

func TestNewClientValidation(t *testing.T) {
	for _, base := range []string{"", "relative", "/a/../b", "/a/", "/"} {
		if _, err := NewClient(newFakeRDS(), ClientOptions{BasePath: base}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("BasePath %q: %v", base, err)
		}
	}
	if _, err := NewClient(nil, ClientOptions{BasePath: "/a"}); !errors.Is(err, ErrInvalidArgument) {
		t.Error("nil transport accepted")
	}
	// Two clients on one registry share the collectors.
	reg := prometheus.NewRegistry()
	for i := 0; i < 2; i++ {
		if _, err := NewClient(newFakeRDS(), ClientOptions{BasePath: "/a", Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
}
