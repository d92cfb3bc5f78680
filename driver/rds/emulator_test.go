package rds

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/emulator/faults"
)

// emuSetup is a Manager and Client connected to an emulator.
type emuSetup struct {
	emu *emulatortest.Emulator
	m   *Manager
	c   *Client
	clk clock.Clock
	log *cmdLog
}

type cmdLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *cmdLog) record(r emulator.CommandRecord) {
	l.mu.Lock()
	l.cmds = append(l.cmds, r.Command)
	l.mu.Unlock()
}

func (l *cmdLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.cmds {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func emuSSHConfig(emu *emulatortest.Emulator) SSHConfig {
	return SSHConfig{
		Address:        emu.Addr(),
		Signer:         emu.ClientSigner(),
		KnownHostsLine: emu.Addr() + " " + string(ssh.MarshalAuthorizedKey(emu.HostKey())),
	}
}

func startEmu(t testing.TB, opts emulatortest.Options, clk clock.Clock, mod func(*SSHConfig, *ManagerConfig)) *emuSetup {
	t.Helper()
	log := &cmdLog{}
	opts.CommandLog = log.record
	emu := emulatortest.Start(t, opts)
	scfg := emuSSHConfig(emu)
	mcfg := ManagerConfig{Clock: clk, Registerer: prometheus.NewRegistry()}
	if mod != nil {
		mod(&scfg, &mcfg)
	}
	cn, err := NewSSHConnector(nil, scfg)
	if err != nil {
		t.Fatal(err)
	}
	mcfg.Connector = cn
	m, err := NewManager(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(m, ClientOptions{BasePath: testBase, Clock: clk, Registerer: mcfg.Registerer})
	if err != nil {
		t.Fatal(err)
	}
	return &emuSetup{emu: emu, m: m, c: c, clk: clk, log: log}
}

// TestEmulatorRepliesAtEveryWidth: whatever width the RDS wraps its replies
// at, 40 to 200 columns, the client reads the same disks, files and pool as
// at the width it asked for.
func TestEmulatorRepliesAtEveryWidth(t *testing.T) {
	s := startEmu(t, emulatortest.Options{PoolSize: 1 << 40}, nil, nil)
	c, ctx := s.c, context.Background()
	slot := "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"
	want, err := c.CreateDisk(ctx, req(slot, 53_687_091_200))
	if err != nil {
		t.Fatal(err)
	}
	wantFiles, err := c.ListFiles(ctx, "^storage-pool/")
	if err != nil {
		t.Fatal(err)
	}
	wantPool, err := c.PoolCapacity(ctx, "storage-pool")
	if err != nil {
		t.Fatal(err)
	}
	for width := 40; width <= 200; width++ {
		s.emu.Faults().ClearReplyFaults()
		if err := s.emu.Faults().AddReplyFault(faults.ReplyFault{Match: " print detail", Mode: faults.ReplyRewrap, Width: width}); err != nil {
			t.Fatal(err)
		}
		d, err := c.GetDisk(ctx, slot)
		if err != nil || !reflect.DeepEqual(d, want) {
			t.Fatalf("width %d: GetDisk = %+v, %v\nwant %+v", width, d, err, want)
		}
		files, err := c.ListFiles(ctx, "^storage-pool/")
		if err != nil || !reflect.DeepEqual(files, wantFiles) {
			t.Fatalf("width %d: ListFiles = %+v, %v\nwant %+v", width, files, err, wantFiles)
		}
		pool, err := c.PoolCapacity(ctx, "storage-pool")
		if err != nil || !reflect.DeepEqual(pool, wantPool) {
			t.Fatalf("width %d: PoolCapacity = %+v, %v\nwant %+v", width, pool, err, wantPool)
		}
	}
}

func TestEmulatorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		login func(*SSHConfig)
		opts  emulatortest.Options
	}{
		{name: "ct512w", login: func(*SSHConfig) {}},
		// A bare login gets 80-column output that wraps inside values, and
		// errors exit 0: the client must read both from the text.
		{name: "80 columns, zero exit on error", login: func(c *SSHConfig) { c.NoLoginOptions = true }, opts: emulatortest.Options{ZeroExitOnError: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.PoolSize = 1 << 40
			s := startEmu(t, tc.opts, nil, func(sc *SSHConfig, _ *ManagerConfig) { tc.login(sc) })
			c, ctx := s.c, context.Background()

			if id, err := c.Identity(ctx); err != nil || id == "" {
				t.Fatalf("Identity = %q, %v", id, err)
			}
			if v, err := c.Version(ctx); err != nil || !strings.HasPrefix(v, "7.") {
				t.Fatalf("Version = %q, %v", v, err)
			}

			// Long names so 80-column output wraps inside the values.
			slot := "pvc-5b0c7e2a-1d4f-4c1e-9a55-0f6f3b1e2d11"
			path := testBase + "/" + slot + ".img"
			r := CreateDiskRequest{Slot: slot, FilePath: path, Size: 10_000_000_000, Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:" + slot}
			d, err := c.CreateDisk(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			if d.Size < 10_000_000_000 || d.Slot != slot || d.FilePath != path || d.NQN != r.NQN || !d.Export || d.Port != 4420 {
				t.Fatalf("created %+v", d)
			}
			st, ok := s.emu.Store().DiskBySlot(slot)
			if !ok || st.FileSize != d.Size {
				t.Fatalf("reported size %d, emulator holds %+v", d.Size, st)
			}
			// A retry with the same request is the same disk; a different
			// size is refused.
			if d2, err := c.CreateDisk(ctx, r); err != nil || d2.Size != d.Size {
				t.Fatalf("retried create = %+v, %v", d2, err)
			}
			r2 := r
			r2.Size = 20_000_000_000
			if _, err := c.CreateDisk(ctx, r2); !errors.Is(err, ErrExists) {
				t.Fatalf("create with another size = %v", err)
			}
			if _, err := c.CreateDisk(ctx, CreateDiskRequest{Slot: "huge", FilePath: testBase + "/huge.img", Size: 2 << 40}); !errors.Is(err, ErrCapacity) {
				t.Fatalf("oversized create = %v", err)
			}

			got, err := c.GetDisk(ctx, slot)
			if err != nil || got.Size != d.Size || got.FilePath != path {
				t.Fatalf("GetDisk = %+v, %v", got, err)
			}
			if _, err := c.CreateDisk(ctx, req("pvc-small", 1)); err != nil {
				t.Fatal(err)
			}
			list, err := c.ListDisks(ctx, "^pvc-")
			if err != nil || len(list) != 2 {
				t.Fatalf("ListDisks = %+v, %v", list, err)
			}

			d, err = c.ResizeDisk(ctx, slot, 12_000_000_000)
			if err != nil || d.Size < 12_000_000_000 {
				t.Fatalf("ResizeDisk = %+v, %v", d, err)
			}

			snap, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: slot, Slot: "snap-1", FilePath: testBase + "/snapshots/snap-1.img"})
			if err != nil || snap.Size != d.Size || snap.Export {
				t.Fatalf("CopyDisk = %+v, %v", snap, err)
			}
			clone, err := c.CopyDisk(ctx, CopyDiskRequest{SourceSlot: "snap-1", Slot: "pvc-clone", FilePath: testBase + "/pvc-clone.img",
				Export: true, Port: 4420, NQN: "nqn.2000-02.com.mikrotik:pvc-clone"})
			if err != nil || clone.Size != d.Size || !clone.Export {
				t.Fatalf("clone = %+v, %v", clone, err)
			}

			files, err := c.ListFiles(ctx, `^storage-pool/k8s/.*\.img$`)
			if err != nil || len(files) != 4 {
				t.Fatalf("ListFiles = %+v, %v", files, err)
			}
			cp, err := c.PoolCapacity(ctx, "storage-pool")
			if err != nil || cp.Size != 1<<40 || cp.Free > cp.Size {
				t.Fatalf("PoolCapacity = %+v, %v", cp, err)
			}

			for _, sl := range []string{slot, "pvc-small", "snap-1", "pvc-clone"} {
				p := "/storage-pool/k8s/" + sl + ".img"
				if sl == "snap-1" {
					p = testBase + "/snapshots/snap-1.img"
				}
				if err := c.DeleteDisk(ctx, sl, p); err != nil {
					t.Fatalf("DeleteDisk(%s): %v", sl, err)
				}
			}
			if err := c.DeleteDisk(ctx, slot, path); err != nil {
				t.Fatalf("repeated delete: %v", err)
			}
			if files, err := c.ListFiles(ctx, `\.img$`); err != nil || len(files) != 0 {
				t.Fatalf("files left behind: %+v, %v", files, err)
			}
			ds, err := c.ListDisks(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				if d.Type == "file" {
					t.Fatalf("disk left behind: %+v", d)
				}
			}
			// pvc-5b0c..., the refused huge one and pvc-small: retries
			// never added again.
			if n := s.log.count("/disk add type=file file-path="); n != 3 {
				t.Errorf("adds: %d, want 3", n)
			}
		})
	}
}

// dropTransport wraps the manager so a test can act around "/disk add".
type dropTransport struct {
	Transport
	around func(ctx context.Context, cmd string, run func() (string, error)) (string, error)
}

func (d *dropTransport) Run(ctx context.Context, cmd string) (string, error) {
	run := func() (string, error) { return d.Transport.Run(ctx, cmd) }
	if strings.HasPrefix(cmd, "/disk add") && d.around != nil {
		return d.around(ctx, cmd, run)
	}
	return run()
}

// TestEmulatorCreateAfterDrop: the connection drops while "/disk add" is in
// flight; after the emulator comes back, the retried create leaves exactly
// one disk.
func TestEmulatorCreateAfterDrop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ran   bool // whether the add was carried out before the drop
		setup func(s *emuSetup) func(ctx context.Context, cmd string, run func() (string, error)) (string, error)
	}{
		{name: "hung, then crash", setup: func(s *emuSetup) func(context.Context, string, func() (string, error)) (string, error) {
			return func(ctx context.Context, cmd string, run func() (string, error)) (string, error) {
				s.emu.Faults().HangNext(1)
				crashed := make(chan struct{})
				go func() {
					defer close(crashed)
					waitFor(t, "hung add", func() bool { return s.emu.Faults().Hanging() == 1 })
					s.emu.Crash()
				}()
				out, err := run()
				<-crashed // Crash and Restart must not overlap
				return out, err
			}
		}},
		{name: "ran, reply lost in the crash", ran: true, setup: func(s *emuSetup) func(context.Context, string, func() (string, error)) (string, error) {
			return func(ctx context.Context, cmd string, run func() (string, error)) (string, error) {
				if _, err := run(); err != nil {
					return "", err
				}
				s.emu.Crash()
				return "", unavailablef("connection lost before the reply")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := libclock.NewMock()
			s := startEmu(t, emulatortest.Options{InMemory: true}, clock.FromLibrary(clk), nil)
			ch := events(s.m)
			dt := &dropTransport{Transport: s.m}
			dt.around = tc.setup(s)
			c, err := NewClient(dt, ClientOptions{BasePath: testBase, Clock: clock.FromLibrary(clk)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			_, err = c.CreateDisk(ctx, req("pvc-drop", 1<<30))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("create during crash = %v, want unavailable", err)
			}
			if _, ok := s.emu.Store().DiskBySlot("pvc-drop"); ok != tc.ran {
				t.Fatalf("disk exists = %v after the drop, want %v", ok, tc.ran)
			}
			ev := next(t, ch, StateDisconnected)
			if err := s.emu.Restart(); err != nil {
				t.Fatal(err)
			}
			clk.Add(ev.RetryIn)
			next(t, ch, StateConnected)

			dt.around = nil
			d, err := c.CreateDisk(ctx, req("pvc-drop", 1<<30))
			if err != nil || d.Size != 1<<30 {
				t.Fatalf("retried create = %+v, %v", d, err)
			}
			n := 0
			for _, dd := range s.emu.Store().Disks() {
				if dd.Slot == "pvc-drop" {
					n++
				}
			}
			wantAdds := 2
			if tc.ran {
				wantAdds = 1 // the retry found the disk and did not add again
			}
			if n != 1 || s.log.count("/disk add") != wantAdds {
				t.Fatalf("%d disks, %d adds logged (want 1, %d)", n, s.log.count("/disk add"), wantAdds)
			}
		})
	}
}

// TestEmulatorReconnect: Crash and Restart on a mock clock; attempts back
// off while the emulator is down, probing it every ProbeInterval once an
// attempt found it unreachable, and the client reconnects at the first
// probe after it returns.
//
// The clock moves one armed timer at a time (see armClock). While the
// manager probes, each failed probe arms the next probe's timer, and after
// a successful one it dials, shakes hands and runs a health check, all
// under deadlines on this clock: one Add of the whole backoff would pass by
// the timers armed during it, or expire those deadlines while the I/O is in
// flight, and leave the manager waiting for a time that never comes.
func TestEmulatorReconnect(t *testing.T) {
	const probeEvery = time.Second // ProbeInterval's default
	clk := newArmClock()
	s := startEmu(t, emulatortest.Options{InMemory: true}, clk, func(_ *SSHConfig, m *ManagerConfig) {
		m.Rand = fixedRand(0.5) // no jitter in effect: exact delays
	})
	ch := events(s.m)
	ctx := context.Background()
	if _, err := s.c.Identity(ctx); err != nil {
		t.Fatal(err)
	}
	s.emu.Crash()
	ev := next(t, ch, StateDisconnected)
	if _, err := s.c.Identity(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("while down: %v", err)
	}
	// Only waitToRetry arms timers shorter than the 10 s of Start's wait
	// and the health interval: every 1 s timer is a retry or a probe.
	mark := 0
	for _, want := range []time.Duration{1, 2, 4, 8, 16, 16} {
		if ev.RetryIn != want*time.Second {
			t.Fatalf("retry in %v, want %v", ev.RetryIn, want*time.Second)
		}
		for left := ev.RetryIn; left > 0; left -= probeEvery {
			clk.step(t, &mark, min(left, probeEvery))
		}
		ev = next(t, ch, StateDisconnected)
	}
	// A probe each second of the backoffs after the first refused attempt,
	// but not at their ends, where an attempt is due.
	reg := s.m.cfg.Registerer.(*prometheus.Registry)
	if got := counter(t, reg, "rds_csi_rds_reachability_probes_total", map[string]string{"status": "failure"}); got != 1+3+7+15+15 {
		t.Errorf("failed probes = %v, want %d", got, 1+3+7+15+15)
	}
	if err := s.emu.Restart(); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	clk.step(t, &mark, probeEvery) // the next probe finds it
	next(t, ch, StateConnected)
	if got := clk.Now().Sub(start); got != probeEvery {
		t.Errorf("reconnected %v after the restart, want %v (the next probe)", got, probeEvery)
	}
	if _, err := s.c.Identity(ctx); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	// A refused connection (the emulator accepts and closes) backs off too.
	s.emu.Faults().RejectConnections(true)
	s.emu.Crash()
	if err := s.emu.Restart(); err != nil {
		t.Fatal(err)
	}
	ev = next(t, ch, StateDisconnected)
	clk.step(t, &mark, ev.RetryIn)
	if ev = next(t, ch, StateDisconnected); ev.RetryIn != 2*time.Second || ev.Err == nil {
		t.Fatalf("rejected attempt: %+v", ev)
	}
	s.emu.Faults().RejectConnections(false)
	clk.step(t, &mark, ev.RetryIn)
	next(t, ch, StateConnected)
}

type fixedRand float64

func (f fixedRand) Float64() float64 { return float64(f) }

// Benchmarks. Each mode measures, in one run: the floor (this client against
// a bare SSH server that answers every command with a fixed string), a naive
// client that dials a new SSH connection per command, and this client, both
// against the emulator. The client's sub-benchmark reports its rate as
// ratios to the other two, which, unlike absolute figures, carry over
// between machines.

var benchRates sync.Map // "mode/kind" -> commands per second

func runCallers(b *testing.B, callers int, op func() error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < callers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "cmds/s")
	return rate
}

func benchClient(b *testing.B, cfg SSHConfig) *Client {
	cn, err := NewSSHConnector(nil, cfg)
	if err != nil {
		b.Fatal(err)
	}
	// The floor answers every command, the health check included, with an
	// empty listing; keep its health check out of the measurement.
	m, err := NewManager(ManagerConfig{Connector: cn, HealthInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, err := NewClient(m, ClientOptions{BasePath: testBase})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// naiveGet is what a client without connection reuse does per command.
func naiveGet(addr string, cfg *ssh.ClientConfig, slot string) error {
	conn, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	ls := []listing{diskListing(whereSlot(slot))}
	out, _, err := emulatortest.Exec(conn, provenScript("", ls...))
	if err != nil {
		return err
	}
	es, err := parseProven(out, ParseOptions{}, ls)
	if err != nil || len(es[0]) != 1 {
		return fmt.Errorf("naive get: %v entries, %v", es, err)
	}
	return nil
}

func BenchmarkClientThroughput(b *testing.B) {
	floor := emulatortest.StartFloor(b)
	emu := emulatortest.Start(b, emulatortest.Options{InMemory: true, PoolSize: 1 << 50})
	emuClient := benchClient(b, emuSSHConfig(emu))
	// The floor answers every command, the connection's first health check
	// included, with a bare legend, which no Manager accepts as healthy and
	// no proven read accepts as an answer: it is measured on the raw
	// connection, one session per command, as the client's own floor.
	floorCn, err := NewSSHConnector(nil, SSHConfig{Address: floor.Addr, Signer: floor.Signer,
		KnownHostsLine: string(ssh.MarshalAuthorizedKey(floor.HostKey))})
	if err != nil {
		b.Fatal(err)
	}
	floorConn, err := floorCn.Connect(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { floorConn.Close() })
	const disks = 100
	for i := 0; i < disks; i++ {
		if _, err := emuClient.CreateDisk(context.Background(), req(fmt.Sprintf("bench-%d", i), 1<<20)); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	slot := func() string { return fmt.Sprintf("bench-%d", seq.Add(1)%disks) }
	naiveCfg := emu.ClientConfig("admin+ct512w")

	for _, mode := range []struct {
		name    string
		callers int
	}{{"sequential", 1}, {"concurrent16", 16}} {
		b.Run(mode.name+"/floor", func(b *testing.B) {
			rate := runCallers(b, mode.callers, func() error {
				out, err := floorConn.Run(context.Background(), provenScript("", diskListing(whereSlot("x"))))
				if err != nil || out != emulatortest.FloorReply {
					return fmt.Errorf("floor: %q, %v", out, err)
				}
				return nil
			})
			benchRates.Store(mode.name+"/floor", rate)
		})
		b.Run(mode.name+"/naive-dial-per-command", func(b *testing.B) {
			rate := runCallers(b, mode.callers, func() error { return naiveGet(emu.Addr(), naiveCfg, slot()) })
			benchRates.Store(mode.name+"/naive", rate)
		})
		b.Run(mode.name+"/client", func(b *testing.B) {
			rate := runCallers(b, mode.callers, func() error {
				_, err := emuClient.GetDisk(context.Background(), slot())
				return err
			})
			if f, ok := benchRates.Load(mode.name + "/floor"); ok {
				b.ReportMetric(rate/f.(float64), "x-floor")
			}
			if n, ok := benchRates.Load(mode.name + "/naive"); ok {
				b.ReportMetric(rate/n.(float64), "x-naive")
			}
		})
	}
}
