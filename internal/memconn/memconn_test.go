package memconn

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestConn runs the standard library's conformance tests for net.Conn.
func TestConn(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		c1, c2 = Pipe()
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestBothSpeakFirst: a write completes without the peer reading, which is
// what SSH's version exchange needs and net.Pipe cannot give.
func TestBothSpeakFirst(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	defer b.Close()
	if _, err := a.Write([]byte("SSH-2.0-a\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("SSH-2.0-b\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, _ := a.Read(buf); string(buf[:n]) != "SSH-2.0-b\r\n" {
		t.Fatalf("a read %q", buf[:n])
	}
	if n, _ := b.Read(buf); string(buf[:n]) != "SSH-2.0-a\r\n" {
		t.Fatalf("b read %q", buf[:n])
	}
}

func TestCloseAndDeadline(t *testing.T) {
	a, b := Pipe()
	_, _ = a.Write([]byte("last"))
	a.Close()
	got, err := io.ReadAll(b)
	if string(got) != "last" || err != nil {
		t.Fatalf("peer read %q, %v; want the data, then EOF", got, err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("write to a closed peer: %v", err)
	}
	c, d := Pipe()
	defer d.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
}
