package engine

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/loop"
	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// The kernel's NVMe/TCP host, reduced to what decides whether a node keeps
// a mounted volume through an RDS outage (drivers/nvme/host/tcp.c and
// fabrics.c):
//
//   - when RDS drops the connection, the controller goes to "connecting" and
//     tries again every reconnect_delay (default 10 s), the first time one
//     delay after the loss;
//   - after ceil(ctrl_loss_tmo / reconnect_delay) failed tries (default
//     600 s) it deletes the controller: the device is gone, the filesystem
//     on it sees I/O errors and only a remount brings it back; -1 never
//     gives up;
//   - fast_io_fail_tmo after the loss (default -1: never), queued I/O fails
//     instead of waiting, while the tries go on;
//   - the first try at which RDS serves again makes the controller live:
//     queued I/O resumes, nothing is remounted.
//
// The path follows the RDS box (the emulator crashing or serving), not the
// SSH management network that network faults act on.
//
// Storage-side access control (Options.RestrictHosts): the target admits a
// connect only from a host NQN the disk's nvme-tcp-server-allow-host-name
// allows (loop.Allows, the loop data plane's rule). What RouterOS does to a
// host already connected when the list drops it is unverified on hardware
// (deploy/README.md's checklist asks); the model takes the assumption the
// fencing relies on and says so: the target ends that host's association
// at the list change ("revoked": its next I/O fails), and the host's
// reconnect tries are refused like a fresh connect, until ctrl_loss_tmo
// deletes the controller or the host is allowed again.
const (
	kernelReconnectDelay = 10 * time.Second  // NVMF_DEF_RECONNECT_DELAY
	kernelCtrlLossTmo    = 600 * time.Second // NVMF_DEF_CTRL_LOSS_TMO
)

// Path states, as sysfs names them; a deleted controller has no state.
const (
	pathLive       = "live"
	pathConnecting = "connecting"
	pathDeleted    = "deleted"
	// pathRevoked is traced, never a state: the target cut a live path
	// whose host the allow-list dropped; the path is connecting after it.
	pathRevoked = "revoked"
)

// nvmePath is one node's controller of one volume.
type nvmePath struct {
	volumeID, node string
	hostNQN        string        // the identity it connected with ("" without RestrictHosts)
	lossTmo        time.Duration // < 0: reconnect forever
	delay          time.Duration
	failFastTmo    time.Duration // < 0: never
	maxTries       int           // -1: forever

	state    string
	crashes  uint64 // the emulator's crash count while it was last live
	lostAt   time.Time
	tries    int
	failFast bool
}

// rdsBox is what the data path sees of RDS.
type rdsBox interface {
	Serving() bool
	Crashes() uint64
	// Admits applies the export's allow-list to a host (always true
	// without RestrictHosts).
	Admits(volumeID, hostNQN string) bool
}

// target is the emulator as the NVMe/TCP target: with restrict, it applies
// each disk's allow-list as the store holds it, the state RouterOS prints,
// never the controller's bookkeeping.
type target struct {
	*emulator.Emulator
	restrict bool
}

func (w *World) target() target { return target{w.Emulator, w.opts.RestrictHosts} }

func (t target) Admits(volumeID, hostNQN string) bool {
	if !t.restrict {
		return true
	}
	d, ok := t.Store().DiskBySlot(volumeID)
	// No disk, no export to restrict: connecting to it is not this rule's
	// business (the sim data plane never modelled a missing subsystem).
	return !ok || loop.Allows(d.NVMeTCPServerAllowHostName, hostNQN)
}

// working reports whether the path carries I/O now: live, and (with
// RestrictHosts) still allowed.
func (p *nvmePath) working() bool { return p.state == pathLive }

// newPath reads the connect options the node plugin passed, with the
// kernel's defaults for what it left out.
func newPath(t dataplane.Target, nodeName string, crashes uint64) (*nvmePath, error) {
	secs := func(name, v string, def time.Duration) (time.Duration, error) {
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("sim data plane: %s %q: %w", name, v, dataplane.ErrInvalidParameter)
		}
		return time.Duration(n) * time.Second, nil
	}
	p := &nvmePath{volumeID: t.VolumeID, node: nodeName, hostNQN: t.HostNQN, state: pathLive, crashes: crashes}
	var err error
	if p.lossTmo, err = secs("ctrl-loss-tmo", t.CtrlLossTmo, kernelCtrlLossTmo); err != nil {
		return nil, err
	}
	if p.delay, err = secs("reconnect-delay", t.ReconnectDelay, kernelReconnectDelay); err != nil {
		return nil, err
	}
	if p.failFastTmo, err = secs("fast_io_fail_tmo", t.FastIOFailTmo, -time.Second); err != nil {
		return nil, err
	}
	p.maxTries = -1
	if p.lossTmo >= 0 {
		p.maxTries = int((p.lossTmo + p.delay - 1) / p.delay)
	}
	return p, nil
}

// nextTry is when the controller tries to reconnect next.
func (p *nvmePath) nextTry() time.Time { return p.lostAt.Add(time.Duration(p.tries+1) * p.delay) }

// due is the next instant the path changes on its own, if any.
func (p *nvmePath) due(now time.Time) (time.Time, bool) {
	if p.state != pathConnecting {
		return time.Time{}, false
	}
	at := p.nextTry()
	if ff := p.lostAt.Add(p.failFastTmo); p.failFastTmo >= 0 && !p.failFast && ff.Before(at) {
		at = ff
	}
	return at, true
}

// step moves the path to now; it returns the transitions, for the trace.
func (p *nvmePath) step(now time.Time, box rdsBox) []string {
	var out []string
	if p.state == pathLive && box.Crashes() != p.crashes {
		p.state, p.lostAt, p.tries, p.failFast = pathConnecting, now, 0, false
		out = append(out, pathConnecting)
	}
	if p.state == pathLive && !box.Admits(p.volumeID, p.hostNQN) {
		// The export no longer allows this host: the target ends its
		// association, and the kernel reconnects as after a loss.
		p.state, p.lostAt, p.tries, p.failFast = pathConnecting, now, 0, false
		out = append(out, pathRevoked)
	}
	for p.state == pathConnecting {
		try := p.nextTry()
		if ff := p.lostAt.Add(p.failFastTmo); p.failFastTmo >= 0 && !p.failFast && !now.Before(ff) && !ff.After(try) {
			p.failFast = true
			out = append(out, "fail-fast")
		}
		if now.Before(try) {
			break
		}
		// The clock stops at every try (due), so this loop normally runs
		// one try; it catches up if a caller stepped past some.
		if box.Serving() && box.Admits(p.volumeID, p.hostNQN) {
			p.state, p.crashes = pathLive, box.Crashes()
			out = append(out, pathLive)
			break
		}
		p.tries++
		if p.maxTries >= 0 && p.tries >= p.maxTries {
			p.state = pathDeleted
			out = append(out, pathDeleted)
		}
	}
	return out
}

// tickPaths moves every path to now and traces what changed, in volume and
// node order (each path steps on its own, so only the trace needs an order).
func (w *World) tickPaths(now time.Time) {
	type change struct {
		p     *nvmePath
		state string
	}
	var changes []change
	box := w.target()
	f := w.fab
	f.mu.Lock()
	for _, p := range f.paths {
		for _, s := range p.step(now, box) {
			changes = append(changes, change{p, s})
		}
	}
	f.mu.Unlock()
	// Stable: a path's own transitions keep the order step gave them.
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i].p, changes[j].p
		if a.volumeID != b.volumeID {
			return a.volumeID < b.volumeID
		}
		return a.node < b.node
	})
	for _, c := range changes {
		fields := map[string]any{trace.FieldVolume: w.volumeName(c.p.volumeID), trace.FieldNode: c.p.node, trace.FieldState: c.state}
		if c.state != pathConnecting && c.state != pathRevoked {
			fields[trace.FieldAfter] = now.Sub(c.p.lostAt).String()
		}
		w.record(trace.KindNVMe, fields)
		if c.state == pathDeleted {
			w.inv.pathDeleted(c.p)
		}
	}
}

// pathsDue is the earliest instant a path changes on its own.
func (f *fabric) pathsDue(now time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var best time.Time
	found := false
	for _, p := range f.paths {
		if t, ok := p.due(now); ok && t.After(now) && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found
}
