package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/emulator/emulatortest"
)

func TestNetworkLatencyEachDirection(t *testing.T) {
	clk, n, client, far := dialedPair(t)
	const latency = 250 * time.Millisecond
	apply(t, "network.latency", map[string]string{"latency": "250ms"}, Targets{Network: n})

	for _, tc := range []struct {
		dir      string
		from, to interface {
			Write([]byte) (int, error)
		}
		read func() <-chan string
	}{
		{"upstream", client, far, func() <-chan string { return readAsync(far) }},
		{"downstream", far, client, func() <-chan string { return readAsync(client) }},
	} {
		sent := clk.Now()
		got := tc.read()
		if _, err := tc.from.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		eventually(t, tc.dir+" chunk to be held", func() bool { return n.Stats().Parked == 1 })
		if due := n.Stats().NextRelease; !due.Equal(sent.Add(latency)) {
			t.Fatalf("%s: chunk due at %s, want %s", tc.dir, due, sent.Add(latency))
		}
		clk.Add(latency - time.Millisecond)
		if s, ok := received(got); ok {
			t.Fatalf("%s: %q arrived before the latency had passed", tc.dir, s)
		}
		clk.Add(time.Millisecond)
		if s := awaitString(t, got); s != "ping" {
			t.Fatalf("%s: got %q", tc.dir, s)
		}
	}
}

func TestNetworkLatencySSH(t *testing.T) {
	clk := libclock.NewMock()
	emu := startEmulator(t)
	n := NewNetwork(tcpDial(emu), clock.FromLibrary(clk))
	t.Cleanup(func() { _ = n.Close() })
	client := dialSSH(t, n, emu)
	const latency = 250 * time.Millisecond
	undo := apply(t, "network.latency", map[string]string{"latency": "250ms"}, Targets{Network: n})

	// An exec is at least two round trips (open the channel, send the
	// request), so four one-way latencies before the exit status can arrive.
	// Advance the clock by one latency whenever traffic is held, and check
	// the command is not done before four have passed.
	res := execAsync(client, "/system identity print")
	var (
		r        result
		advanced time.Duration
	)
	for !done(res, &r) {
		eventually(t, "traffic to be held or the command to finish", func() bool {
			return n.Stats().Parked > 0 || len(res) > 0
		})
		if len(res) > 0 {
			continue
		}
		if advanced > 40*latency {
			t.Fatalf("command not done after %s on the clock", advanced)
		}
		clk.Add(latency)
		advanced += latency
	}
	if advanced < 4*latency {
		t.Fatalf("command finished after %s on the clock, less than two round trips of %s", advanced, latency)
	}
	if r.err != nil || r.out != identityReply {
		t.Fatalf("slow command: %+v", r)
	}
	t.Logf("exec took %s on the clock", advanced)

	// Once the toxic is gone, a command needs no clock at all.
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out, _, err := emulatortest.Exec(client, "/system identity print"); err != nil || out != identityReply {
		t.Fatalf("after undo: %q %v", out, err)
	}
}

func TestNetworkLatencyUndoReleasesHeldChunks(t *testing.T) {
	_, n, client, far := dialedPair(t)
	undo := apply(t, "network.latency", map[string]string{"latency": "1h"}, Targets{Network: n})
	got := readAsync(far)
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the chunk to be held", func() bool { return n.Stats().Parked == 1 })
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := awaitString(t, got); s != "ping" {
		t.Fatalf("got %q", s)
	}
}

// delaysSeen sends one chunk at a time upstream through a fresh network with
// the fault applied and returns the delay each one was given.
func delaysSeen(t *testing.T, f Fault, targets Targets, chunks int) []time.Duration {
	t.Helper()
	clk, n, client, far := dialedPair(t)
	targets.Network = n
	if _, err := f.Apply(context.Background(), targets); err != nil {
		t.Fatal(err)
	}
	var out []time.Duration
	for range chunks {
		got := readAsync(far)
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the chunk to be held", func() bool { return n.Stats().Parked == 1 })
		d := n.Stats().NextRelease.Sub(clk.Now())
		out = append(out, d)
		clk.Add(d)
		awaitString(t, got)
	}
	return out
}

func TestNetworkLatencyJitterIsSeeded(t *testing.T) {
	const (
		latency = 100 * time.Millisecond
		jitter  = 50 * time.Millisecond
	)
	f, err := Lookup("network.latency", map[string]string{"latency": "100ms", "jitter": "50ms", "seed": "7"})
	if err != nil {
		t.Fatal(err)
	}
	seen := delaysSeen(t, f, Targets{}, 8)

	// The delays are the documented stream for (seed 7, connection 1, upstream).
	want := (&latencyToxic{latency: latency, jitter: jitter, seed: 7}).stream(1, upstream)
	distinct := map[time.Duration]bool{}
	for i, d := range seen {
		if w := want.next(); d != w {
			t.Fatalf("chunk %d delayed %s, want %s from the seeded stream", i, d, w)
		}
		if d < latency-jitter || d >= latency+jitter {
			t.Fatalf("chunk %d delayed %s, outside [%s, %s)", i, d, latency-jitter, latency+jitter)
		}
		distinct[d] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("no jitter: %v", seen)
	}

	// The same seed from the scenario gives the same delays.
	f, err = Lookup("network.latency", map[string]string{"latency": "100ms", "jitter": "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	again := delaysSeen(t, f, Targets{Seed: 7}, 8)
	for i := range seen {
		if seen[i] != again[i] {
			t.Fatalf("Targets.Seed 7 gave %v, the seed parameter 7 gave %v", again, seen)
		}
	}
}

func TestJitterStreams(t *testing.T) {
	lt := &latencyToxic{latency: time.Second, jitter: 500 * time.Millisecond, seed: 1}
	draw := func(lt *latencyToxic, conn uint64, dir direction) []time.Duration {
		s := lt.stream(conn, dir)
		out := make([]time.Duration, 16)
		for i := range out {
			out[i] = s.next()
		}
		return out
	}
	base := draw(lt, 1, upstream)
	if got := draw(lt, 1, upstream); !equalDurations(got, base) {
		t.Fatal("the same seed, connection and direction gave different delays")
	}
	for name, other := range map[string][]time.Duration{
		"direction":  draw(lt, 1, downstream),
		"connection": draw(lt, 2, upstream),
		"seed":       draw(&latencyToxic{latency: time.Second, jitter: 500 * time.Millisecond, seed: 2}, 1, upstream),
	} {
		if equalDurations(other, base) {
			t.Errorf("another %s gave the same delays", name)
		}
	}
	noJitter := &latencyToxic{latency: time.Second}
	for _, d := range draw(noJitter, 1, upstream) {
		if d != time.Second {
			t.Fatalf("without jitter a chunk was delayed %s", d)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestJitterIsDrawnPerInstant: the bytes written at one instant share one
// delay, however they are split into reads, so the jitter stream does not
// depend on goroutine scheduling (the scenario engine replays a seed to one
// trace; a draw per read made network.latency with jitter differ run to run).
func TestJitterIsDrawnPerInstant(t *testing.T) {
	clk, n, client, far := dialedPair(t)
	apply(t, "network.latency", map[string]string{"latency": "100ms", "jitter": "50ms", "seed": "7"}, Targets{Network: n})
	want := (&latencyToxic{latency: 100 * time.Millisecond, jitter: 50 * time.Millisecond, seed: 7}).stream(1, upstream)
	first, second := want.next(), want.next()

	got := readAsync(far)
	if _, err := client.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first chunk to be held", func() bool { return n.Stats().Parked == 1 })
	// A second read at the same instant: a separate chunk, the same delay.
	if _, err := client.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	// net.Pipe's Write returned once the proxy read "b"; the reader stamps
	// it right after. Give it that moment before the clock moves.
	time.Sleep(20 * time.Millisecond)
	clk.Add(first)
	if s := awaitString(t, got); s != "a" {
		t.Fatalf("got %q", s)
	}
	got = readAsync(far)
	eventually(t, "the second chunk to be delivered", func() bool { return n.Stats().Parked == 0 })
	if s := awaitString(t, got); s != "b" {
		t.Fatalf("got %q", s)
	}
	// The next instant with traffic takes the stream's second draw.
	clk.Add(time.Second)
	got = readAsync(far)
	if _, err := client.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the third chunk to be held", func() bool { return n.Stats().Parked == 1 })
	if d := n.Stats().NextRelease.Sub(clk.Now()); d != second {
		t.Fatalf("a chunk at a new instant delayed %s, want the stream's second draw %s (first %s)", d, second, first)
	}
	clk.Add(second)
	if s := awaitString(t, got); s != "c" {
		t.Fatalf("got %q", s)
	}
}

// dialedPair is a network on a mock clock with one connection through it:
// the client's end and the far end the dialer handed out.
func dialedPair(t *testing.T) (*libclock.Mock, *Network, net.Conn, net.Conn) {
	t.Helper()
	clk := libclock.NewMock()
	n, fars := pipeNetwork(t, clock.FromLibrary(clk))
	client, err := n.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return clk, n, client, <-fars
}
