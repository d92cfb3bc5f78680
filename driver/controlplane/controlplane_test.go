package controlplane_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	"github.com/rds-csi/rds-csi/internal/clock"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/controlplane"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
	"github.com/rds-csi/rds-csi/emulator/emulatortest"
	"github.com/rds-csi/rds-csi/internal/promtest"
)

// fakeConn is an RDS connection that answers every command with nothing
// until the test drops it.
type fakeConn struct {
	once sync.Once
	done chan struct{}
}

func (c *fakeConn) Run(context.Context, string) (string, error) { return "", nil }
func (c *fakeConn) HealthCheck(context.Context) error           { return nil }
func (c *fakeConn) Close() error                                { c.once.Do(func() { close(c.done) }); return nil }
func (c *fakeConn) Done() <-chan struct{}                       { return c.done }

// fakeConnector hands out fakeConns and remembers them; with fail set it
// refuses.
type fakeConnector struct {
	mu    sync.Mutex
	conns []*fakeConn
	fail  bool
}

func (f *fakeConnector) Connect(context.Context) (rds.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("connection refused")
	}
	c := &fakeConn{done: make(chan struct{})}
	f.conns = append(f.conns, c)
	return c, nil
}

func (f *fakeConnector) last() *fakeConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns[len(f.conns)-1]
}

// downRDS is an RDS connection that is never up.
type downRDS struct{}

func (downRDS) Run(context.Context, string) (string, error) { return "", errors.New("down") }
func (downRDS) State() rds.State                            { return rds.StateDisconnected }

func baseOptions() controlplane.Options {
	return controlplane.Options{Driver: driver.Options{BasePath: "/storage-pool/k8s", NVMeAddress: "10.0.0.1"}}
}

// TestNewRefusesWiredSeams: a caller cannot wire a part itself through its
// options; the assembly is the only wiring.
func TestNewRefusesWiredSeams(t *testing.T) {
	for name, set := range map[string]func(*controlplane.Options){
		"driver clock":         func(o *controlplane.Options) { o.Driver.Clock = clock.FromLibrary(libclock.NewMock()) },
		"driver RDS":           func(o *controlplane.Options) { o.Driver.RDS = downRDS{} },
		"driver nodes":         func(o *controlplane.Options) { o.Driver.Nodes = driver.StaticNodes{} },
		"driver state ready":   func(o *controlplane.Options) { o.Driver.StateReady = func() bool { return true } },
		"driver attachments":   func(o *controlplane.Options) { o.Driver.Attachments = attachment.New(attachment.Options{}) },
		"driver registerer":    func(o *controlplane.Options) { o.Driver.Registerer = prometheus.NewRegistry() },
		"rds connector":        func(o *controlplane.Options) { o.RDS.Connector = &fakeConnector{} },
		"rds clock":            func(o *controlplane.Options) { o.RDS.Clock = clock.FromLibrary(libclock.NewMock()) },
		"reconciler client":    func(o *controlplane.Options) { o.Reconciler.Client = fake.NewClientset() },
		"reconciler recorder":  func(o *controlplane.Options) { o.Reconciler.Recorder = record.NewFakeRecorder(1) },
		"reconciler attach":    func(o *controlplane.Options) { o.Reconciler.Attachments = attachment.New(attachment.Options{}) },
		"reconciler drivernam": func(o *controlplane.Options) { o.Reconciler.DriverName = "other.csi" },
	} {
		o := baseOptions()
		set(&o)
		if _, err := controlplane.New(controlplane.Seams{Connector: &fakeConnector{}}, o); err == nil {
			t.Errorf("%s: New accepted options that wire a seam", name)
		}
	}
	if _, err := controlplane.New(controlplane.Seams{}, baseOptions()); err == nil {
		t.Error("New without a connector succeeded")
	}
}

// TestStandalone: without Kubernetes there is no reconciler, the nodes are
// --node-id plus the standalone list, and the control plane serves at once.
func TestStandalone(t *testing.T) {
	emu := emulatortest.Start(t, emulatortest.Options{InMemory: true})
	o := baseOptions()
	o.Driver.NodeID, o.StandaloneNodes = "node-a", []string{"node-b"}
	cp, err := controlplane.New(controlplane.Seams{Connector: emulatorConnector(t, emu)}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if cp.Reconciler != nil {
		t.Fatal("a standalone control plane has a reconciler")
	}
	if err := cp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cp.Ready(); err != nil {
		t.Fatalf("Ready after connecting: %v", err)
	}
	ctx := context.Background()
	for node, want := range map[string]codes.Code{"node-a": codes.OK, "node-b": codes.OK, "node-c": codes.NotFound} {
		vol, err := cp.Driver.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-for-" + node, VolumeCapabilities: rwoMount})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cp.Driver.ControllerPublishVolume(ctx, &csi.ControllerPublishVolumeRequest{VolumeId: vol.GetVolume().GetVolumeId(),
			NodeId: node, VolumeCapability: rwoMount[0]})
		if status.Code(err) != want {
			t.Errorf("publish to %s: %v, want %v", node, err, want)
		}
	}
}

// TestWiring: attachment events reach the hook and then the reconciler;
// the first connection and a lost one reach the reconciler, the loss with
// what the manager saw.
func TestWiring(t *testing.T) {
	conns := &fakeConnector{}
	rec := record.NewFakeRecorder(100)
	reg := prometheus.NewRegistry()
	var mu sync.Mutex // the hooks run on the manager's goroutine and the test's
	var hooked []attachment.EventType
	var rdsEvents []rds.Event
	o := baseOptions()
	o.Hooks = controlplane.Hooks{
		AttachmentEvent: func(e attachment.Event) {
			mu.Lock()
			hooked = append(hooked, e.Type)
			mu.Unlock()
		},
		RDSEvent: func(ev rds.Event, deliver func()) {
			mu.Lock()
			rdsEvents = append(rdsEvents, ev)
			mu.Unlock()
			deliver()
		},
	}
	o.Reconciler = reconciler.Options{Interval: time.Hour,
		Identity: &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: "rds-csi-0"}}
	kube := fake.NewClientset(readyNode("node-a"))
	cp, err := controlplane.New(controlplane.Seams{Kube: kube, Connector: conns, Registerer: reg, Recorder: rec}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	serving := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- cp.Run(ctx, func(lctx context.Context) error { close(serving); <-lctx.Done(); return nil })
	}()
	<-serving

	if err := cp.Attachments.Publish("vol-1", "node-a", attachment.SingleNode, 0); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(hooked) != 1 || hooked[0] != attachment.Attached {
		t.Errorf("attachment hook saw %v, want one Attached", hooked)
	}
	mu.Unlock()
	if v := promtest.Value(t, reg, "rds_csi_attachment_attach_total", map[string]string{"status": "success"}); v != 1 {
		t.Fatalf("reconciler counted %v attaches, want 1: the attachment event did not reach it", v)
	}

	// The connection drops; the manager reports it and reconnects.
	conns.last().Close()
	eventually(t, "RDSDisconnected event naming the cause", func() bool {
		for {
			select {
			case e := <-rec.Events:
				if strings.Contains(e, "RDSDisconnected") {
					if !strings.Contains(e, "connection lost") {
						t.Errorf("disconnect event without the manager's cause: %q", e)
					}
					return true
				}
			default:
				return false
			}
		}
	})
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run after its context ended: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rdsEvents) == 0 || rdsEvents[0].State != rds.StateConnecting {
		t.Fatalf("the hook missed the first connection's events (subscribed after Start?): %+v", rdsEvents)
	}
}

// scriptedElector leads on a goroutine of its own, as client-go's elector
// does, as many times as told, and returns without waiting for the leads.
type scriptedElector struct {
	leads  int
	lose   time.Duration // each lead loses leadership after this long
	called chan struct{}
}

func (e *scriptedElector) IsLeader() bool { return false }

func (e *scriptedElector) Run(ctx context.Context, lead func(context.Context)) {
	for i := 0; i < e.leads && ctx.Err() == nil; i++ {
		lctx, cancel := context.WithTimeout(ctx, e.lose)
		go lead(lctx)
		<-lctx.Done()
		cancel()
	}
}

// TestRunLeadsOnce: leadership lost while the process lives ends Run with
// ErrLeadershipLost, after serve has returned, and never leads twice with
// the same memory; a serve error is Run's error.
func TestRunLeadsOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		serveErr error
		want     error
	}{
		{"leadership lost", nil, controlplane.ErrLeadershipLost},
		{"serve fails", errors.New("listen: address in use"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			el := &scriptedElector{leads: 3, lose: 20 * time.Millisecond}
			cp, err := controlplane.New(controlplane.Seams{Connector: &fakeConnector{}, Elector: el}, baseOptions())
			if err != nil {
				t.Fatal(err)
			}
			defer cp.Close()
			var mu sync.Mutex
			serves, serving := 0, false
			err = cp.Run(context.Background(), func(ctx context.Context) error {
				mu.Lock()
				serves++
				serving = true
				mu.Unlock()
				if tc.serveErr != nil {
					return tc.serveErr
				}
				<-ctx.Done()
				time.Sleep(10 * time.Millisecond) // a server that takes a moment to stop
				mu.Lock()
				serving = false
				mu.Unlock()
				return nil
			})
			want := tc.want
			if want == nil {
				want = tc.serveErr
			}
			if !errors.Is(err, want) {
				t.Fatalf("Run: %v, want %v", err, want)
			}
			mu.Lock()
			defer mu.Unlock()
			if serves != 1 {
				t.Fatalf("served %d times, want once per process", serves)
			}
			if serving && tc.serveErr == nil {
				t.Fatal("Run returned while serve was still running")
			}
		})
	}
}

// TestRunElectorGivesUp: an elector that returns without ever leading (a
// misconfigured Lease) is an error, not a lost leadership.
func TestRunElectorGivesUp(t *testing.T) {
	cp, err := controlplane.New(controlplane.Seams{Connector: &fakeConnector{}, Elector: &scriptedElector{}}, baseOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	err = cp.Run(context.Background(), func(context.Context) error { t.Error("served without leading"); return nil })
	if err == nil || errors.Is(err, controlplane.ErrLeadershipLost) {
		t.Fatalf("Run: %v, want an error that is not ErrLeadershipLost", err)
	}
}

// TestRunEndsWithContext: a process asked to stop ends Run with nil.
func TestRunEndsWithContext(t *testing.T) {
	cp, err := controlplane.New(controlplane.Seams{Connector: &fakeConnector{}}, baseOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	ctx, cancel := context.WithCancel(context.Background())
	err = cp.Run(ctx, func(lctx context.Context) error { cancel(); <-lctx.Done(); return nil })
	if err != nil {
		t.Fatalf("Run after shutdown: %v, want nil", err)
	}
}
