package memconn

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MaxBuffered bounds the bytes one direction holds unread; a writer beyond
// it waits for the reader, as a full socket buffer makes it wait.
const MaxBuffered = 4 << 20

// Pipe returns the two ends of a new connection.
func Pipe() (net.Conn, net.Conn) {
	ab, ba := newBuffer(), newBuffer()
	return &conn{rd: ba, wr: ab, local: addr("memconn-a"), remote: addr("memconn-b")},
		&conn{rd: ab, wr: ba, local: addr("memconn-b"), remote: addr("memconn-a")}
}

type addr string

func (a addr) Network() string { return "memconn" }
func (a addr) String() string  { return string(a) }

// buffer is one direction.
type buffer struct {
	mu       sync.Mutex
	cond     *sync.Cond
	data     []byte
	closed   bool // the writer closed (EOF after the data) or the reader did
	rdExpire deadline
	wrExpire deadline
}

func newBuffer() *buffer {
	b := &buffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// deadline is one end's read or write deadline; expired is set by its
// timer, under the buffer's lock, which then wakes every waiter.
type deadline struct {
	timer   *time.Timer
	expired bool
}

func (b *buffer) set(d *deadline, t time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.expired = false
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.expired = true
		b.cond.Broadcast()
		return
	}
	d.timer = time.AfterFunc(wait, func() {
		b.mu.Lock()
		d.expired = true
		b.cond.Broadcast()
		b.mu.Unlock()
	})
}

func (b *buffer) read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.data) == 0 && !b.closed && !b.rdExpire.expired {
		b.cond.Wait()
	}
	switch {
	case len(b.data) > 0:
		n := copy(p, b.data)
		b.data = b.data[n:]
		if len(b.data) == 0 {
			b.data = nil // let a drained buffer's array go
		}
		b.cond.Broadcast() // a writer may wait for room
		return n, nil
	case b.rdExpire.expired:
		return 0, os.ErrDeadlineExceeded
	}
	return 0, io.EOF
}

func (b *buffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for n < len(p) {
		for len(b.data) >= MaxBuffered && !b.closed && !b.wrExpire.expired {
			b.cond.Wait()
		}
		switch {
		case b.closed:
			return n, io.ErrClosedPipe
		case b.wrExpire.expired:
			return n, os.ErrDeadlineExceeded
		}
		k := min(len(p)-n, MaxBuffered-len(b.data))
		b.data = append(b.data, p[n:n+k]...)
		n += k
		b.cond.Broadcast()
	}
	return n, nil
}

func (b *buffer) close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
}

type conn struct {
	rd, wr        *buffer
	local, remote addr
	once          sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return c.rd.read(p)
}

func (c *conn) Write(p []byte) (int, error) { return c.wr.write(p) }

// Close ends both directions: the peer reads what was written, then EOF;
// writes either way fail.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.wr.close()
		c.rd.close()
		c.rd.mu.Lock()
		c.rd.data = nil // unread bytes of a closed end are gone
		c.rd.mu.Unlock()
	})
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.rd.set(&c.rd.rdExpire, t)
	c.wr.set(&c.wr.wrExpire, t)
	return nil
}
func (c *conn) SetReadDeadline(t time.Time) error  { c.rd.set(&c.rd.rdExpire, t); return nil }
func (c *conn) SetWriteDeadline(t time.Time) error { c.wr.set(&c.wr.wrExpire, t); return nil }
