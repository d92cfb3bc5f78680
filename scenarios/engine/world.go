package engine

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/chaos"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/internal/bubble"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Options configure a World. Zero values take the defaults noted.
type Options struct {
	Seed uint64
	// Nodes are the Ready nodes at the start ("node-1".."node-3").
	Nodes []string
	// Replicas of the controller (1); more than one elect a leader.
	Replicas int
	// GracePeriod of the attachment rules (30s); ReconcileInterval of the
	// reconciler (5m); MigrationWindow of RWX hand-offs (5m).
	GracePeriod, ReconcileInterval, MigrationWindow time.Duration
	// PoolSize of the emulated RDS (8 TiB).
	PoolSize int64
	Start    time.Time // virtual start (2026-01-01T00:00:00Z)
	// HealthInterval of the RDS manager (10s, the production default).
	HealthInterval time.Duration
	// LeaseDuration: how long a dead leader's Lease blocks a successor (15s,
	// the binary's default).
	LeaseDuration time.Duration
	// RPCTimeout is the sidecars' --timeout on every CSI call (60s).
	RPCTimeout time.Duration
	// FixedOrder releases what one instant holds in a fixed order (timers in
	// arming order, calls and replies in key order, watches in creation
	// order) instead of one drawn from the seed: a failure that goes away
	// with it needed a particular ordering.
	FixedOrder bool
	// NoIdleSkip runs the engine's per-instant pass at every instant, idle
	// or not (idle.go): traces are the same either way, and a test proves
	// it with this switch.
	NoIdleSkip bool
	// RestrictHosts runs the controller and every node plugin with
	// --restrict-hosts: each export allows only the host NQNs of the nodes
	// holding a claim, the simulated NVMe/TCP target refuses any other host
	// and cuts one that is revoked (nodes.go, nvmepath.go), and the
	// data-plane-single-writer invariant is checked.
	RestrictHosts bool
	// Bugs plants known-bad behaviour, to prove that scenarios catch it.
	Bugs Bugs
}

// Bugs are deliberate defects a test can plant in the simulated system.
type Bugs struct {
	// IgnoreGracePeriod makes the controller release a gone node's claims at
	// once, as if the grace period were zero.
	IgnoreGracePeriod bool
	// UnpublishNeedsRDS makes ControllerUnpublish look the volume up on RDS
	// first and fail while RDS is unreachable: the defect behind the
	// outage this driver exists for.
	UnpublishNeedsRDS bool
	// HealthCheckWithoutDeadline runs the RDS manager's health check
	// without its deadline: a crashed or refused RDS still fails it at
	// once, a hung one holds it, and the manager keeps saying Connected.
	// Only a hang exposes it.
	HealthCheckWithoutDeadline bool
	// RepliesByPosition makes the attacher match the replies of one
	// instant to its calls by position (the order it launched them), not by
	// the call each reply answers. Replies that come back in launch order
	// hide it; only another ordering exposes it.
	RepliesByPosition bool
	// RevocationDisabled makes the reconciler clear a lapsed claim without
	// revoking its node's host from the export, and never apply what
	// unpublishes left pending (with RestrictHosts): the fencing step of
	// issue 20 switched off. The old node keeps a working path after its
	// claim is gone, until a publish elsewhere rewrites the list.
	RevocationDisabled bool
}

func (o *Options) defaults() {
	if len(o.Nodes) == 0 {
		o.Nodes = []string{"node-1", "node-2", "node-3"}
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.GracePeriod == 0 {
		o.GracePeriod = 30 * time.Second
	}
	if o.ReconcileInterval == 0 {
		o.ReconcileInterval = 5 * time.Minute
	}
	if o.MigrationWindow == 0 {
		o.MigrationWindow = 5 * time.Minute
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 10 * time.Second
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.RPCTimeout == 0 {
		o.RPCTimeout = time.Minute
	}
}

// fakeWatchBuffer is the capacity of every fake watch channel.
const fakeWatchBuffer = 1 << 16

// World is the whole system in one process on one virtual clock: the
// emulated RDS behind a chaos network, the controller replicas, a node plugin
// per node, and a Kubernetes API with the parts of Kubernetes that call the
// driver (attach-detach controller, external-attacher, kubelet).
type World struct {
	Clock    clock.Clock
	Emulator *emulator.Emulator
	Network  *chaos.Network
	Kube     *fake.Clientset

	opts   Options
	vc     *vclock
	start  time.Time
	trace  Trace
	ctx    context.Context
	cancel context.CancelFunc
	faults map[string]chaos.Undo
	tmp    string
	fab    *fabric

	signer   gossh.Signer
	hostLine string

	steps   atomic.Int64  // clock moves
	idleN   int64         // instants that skipped the per-instant pass
	order   *releaseOrder // the order of what one instant releases, from the seed
	watches watchGate     // the fake API server\'s watch events, released one at a time

	replicas []*replica
	ctrl     *controller // the leader's running controller; nil while there is none
	nodes    map[string]*simNode
	kube     *kubeSim
	tasks    taskQueue
	inv      *invariants

	probeKnown, probeReady bool
	idle                   idleMark // the World as the last per-instant pass left it
	timelineRestarts       int
	onInstant              []func()
	rdsUp                  bool
	rdsDownSince           time.Duration
}

// NewWorld builds and starts everything; it returns once the controller has
// rebuilt its state and the system is quiescent.
//
// A World runs inside a synctest bubble (internal/bubble): every goroutine
// it starts must be the bubble's for the barrier to know when all of them
// are blocked, so NewWorld refuses to run outside one.
func NewWorld(o Options) (*World, error) {
	if !bubble.Inside() {
		return nil, errors.New("engine: a World runs inside a synctest bubble (bubble.Run)")
	}
	o.defaults()
	w := &World{opts: o, vc: newVClock(o.Start), start: o.Start, faults: map[string]chaos.Undo{},
		nodes: map[string]*simNode{}, rdsUp: true}
	w.Clock = w.vc.view()
	w.order = &releaseOrder{r: rand.New(rand.NewPCG(o.Seed, 0x0de7)), fixed: o.FixedOrder}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	var err error
	if w.tmp, err = os.MkdirTemp(scratchBase(), "rds-scenario-"); err != nil {
		return nil, err
	}

	// SSH identities: the client key derives from the seed (its signatures
	// never reach the trace); the emulator's host key is pinned.
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], o.Seed)
	seed = sha256.Sum256(seed[:])
	if w.signer, err = gossh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed[:])); err != nil {
		return nil, err
	}
	w.Emulator, err = emulator.New(emulator.Config{AuthorizedKeys: []gossh.PublicKey{w.signer.PublicKey()},
		Clock: w.vc.view(), PoolSize: o.PoolSize})
	if err != nil {
		return nil, err
	}
	emu := w.Emulator
	w.hostLine = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(emu.HostKey())))
	w.Network = chaos.NewNetwork(func(context.Context) (net.Conn, error) { return emu.DialInMemory() }, w.vc.view())

	// The fake API server's watch channels panic when full; thousands of
	// writes in one instant (500 volumes attaching) are normal here.
	if watch.DefaultChanSize < fakeWatchBuffer {
		watch.DefaultChanSize = fakeWatchBuffer
	}
	var nodes []runtime.Object
	for _, n := range o.Nodes {
		nodes = append(nodes, readyNode(n, w.Clock.Now()))
	}
	w.Kube = fake.NewSimpleClientset(nodes...)
	w.watches.install(&w.Kube.Fake, w.Kube.Tracker())
	if err := w.watchAPI(); err != nil {
		return nil, err
	}
	for _, n := range o.Nodes {
		if err := w.addNodePlugin(n); err != nil {
			return nil, err
		}
	}
	w.kube = newKubeSim(w)
	w.inv = newInvariants(w)
	for i := 0; i < o.Replicas; i++ {
		w.replicas = append(w.replicas, &replica{name: fmt.Sprintf("rds-csi-controller-%d", i), up: true})
	}
	w.record(trace.KindWorld, map[string]any{trace.FieldSeed: o.Seed, trace.FieldNodes: slices.Clone(o.Nodes), trace.FieldReplicas: o.Replicas,
		trace.FieldGrace: o.GracePeriod.String(), trace.FieldReconcile: o.ReconcileInterval.String()})
	if err := w.elect(); err != nil {
		return nil, err
	}
	if err := w.Advance(0); err != nil {
		return nil, err
	}
	ok = true
	return w, nil
}

// scratchBase is where a World keeps its files (the nodes' device files,
// staging and publish directories): scratch that dies with the World, so a
// memory filesystem when the machine has one and the user has not chosen
// one with TMPDIR. On a disk, the data plane's syncs cost a replay a third
// of its time.
func scratchBase() string {
	if os.Getenv("TMPDIR") != "" {
		return ""
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() && fi.Mode().Perm()&0o002 != 0 {
		return "/dev/shm"
	}
	return ""
}

// Close stops everything the World started.
func (w *World) Close() {
	if w.ctrl != nil {
		w.ctrl.stop()
		w.ctrl = nil
	}
	w.cancel()
	if w.Network != nil {
		_ = w.Network.Close()
	}
	if w.Emulator != nil {
		_ = w.Emulator.Close()
	}
	if w.tmp != "" {
		_ = os.RemoveAll(w.tmp)
	}
}

// Now is the virtual time since the start.
func (w *World) Now() time.Duration { return w.Clock.Now().Sub(w.start) }

// Trace is the flushed trace so far.
func (w *World) Trace() *Trace { return &w.trace }

// TraceHash is the sha256 of the trace.
func (w *World) TraceHash() string { return w.trace.Hash() }

// VirtualSteps is how many times the clock was moved.
func (w *World) VirtualSteps() int64 { return w.steps.Load() }

// IdleSteps is how many instants found the World as the last per-instant
// pass left it and skipped the pass (idle.go). Read it after the run.
func (w *World) IdleSteps() int64 { return w.idleN }

// record traces an event at the current instant. The kind is typed, the
// payload a map keyed by trace.Field names: see scenarios/trace for why.
func (w *World) record(kind trace.Kind, f map[string]any) {
	w.trace.add(trace.Event{T: w.Now(), Kind: kind, Fields: f})
}

// RDSState is the leader's RDS connection state (disconnected without one).
func (w *World) RDSState() rds.State {
	if w.ctrl == nil {
		return rds.StateDisconnected
	}
	return w.ctrl.cp.RDS.State()
}

// Probe is what the CSI Probe of the serving controller answers; false
// while no controller serves.
func (w *World) Probe() bool {
	if w.ctrl == nil {
		return false
	}
	r, err := w.ctrl.cp.Driver.Probe(w.ctx, nil)
	return err == nil && r.GetReady().GetValue()
}

// errKind reduces an error to the rds sentinel it wraps: error texts carry
// scheduling detail (EOF versus reset) that must not reach the trace.
func errKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, rds.ErrUnavailable):
		// First: the trace tells a dropped session from a definite answer
		// by this one name, whatever else the error carries.
		return rds.ErrUnavailable.Error()
	}
	if k := rds.KindOf(err); k != nil {
		return k.Error()
	}
	for _, k := range []error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return "other"
}

// sortedKeys is a helper for deterministic iteration.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
