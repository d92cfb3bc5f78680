package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/controlplane"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// controller is one running leader: the control plane the binary runs
// (controlplane.New), on a clock view that dies with it.
type controller struct {
	w       *World
	replica *replica
	view    *clockView
	ctx     context.Context
	cancel  context.CancelFunc
	reg     *prometheus.Registry
	traced  *tracedMetrics // the part of reg traceMetrics reads (tracedRegisterer)
	cp      *controlplane.ControlPlane

	mu         sync.Mutex
	dead       bool               // crashed: its late RDS events are not traced
	metrics    map[string]float64 // last traced value of each sample
	metricsGen int64              // trace generation at the last gather
}

// startController starts a controller for replica r through the binary's
// assembly: startup reconciliation from the VolumeAttachments runs before it
// serves. The World models the Lease itself (see replica), so the control
// plane runs with the default elector (always leader) for as long as the
// World lets this replica lead.
func (w *World) startController(r *replica) error {
	c := &controller{w: w, replica: r, reg: prometheus.NewRegistry(), traced: &tracedMetrics{}}
	c.view = w.vc.view()
	c.ctx, c.cancel = context.WithCancel(w.ctx)
	ssh, err := rds.NewSSHConnector(w.Network.Dial, rds.SSHConfig{Address: "rds.sim:22", Signer: w.signer,
		KnownHostsLine: w.hostLine})
	if err != nil {
		return err
	}
	grace := w.opts.GracePeriod
	if w.opts.Bugs.IgnoreGracePeriod {
		grace = time.Nanosecond // zero would mean "the default" to the driver
	}
	c.cp, err = controlplane.New(controlplane.Seams{
		Clock: c.view, Kube: w.Kube, Connector: &connector{c: c, ssh: ssh},
		Rand:       rand.New(rand.NewPCG(w.opts.Seed, uint64(r.restarts)<<8|0x5e)),
		Registerer: tracedRegisterer{all: c.reg, traced: c.traced}, Recorder: &recorder{w: w},
	}, controlplane.Options{
		Driver: driver.Options{BasePath: "/storage-pool/k8s", NVMeAddress: "10.0.0.1", NVMePort: 4420, GracePeriod: grace,
			RestrictHosts: w.opts.RestrictHosts},
		RDS:             rds.ManagerConfig{HealthInterval: w.opts.HealthInterval},
		MigrationWindow: w.opts.MigrationWindow,
		Reconciler: reconciler.Options{Interval: w.opts.ReconcileInterval,
			Identity: &corev1.ObjectReference{Kind: "Pod", Namespace: "kube-system", Name: r.name}},
		Hooks: controlplane.Hooks{
			RDSEvent: c.onRDSEvent,
			AttachmentEvent: func(e attachment.Event) {
				w.record(trace.KindAttachmentEvent, map[string]any{trace.FieldType: string(e.Type), trace.FieldVolume: e.Volume, trace.FieldNode: e.Node,
					trace.FieldOther: e.OtherNode, trace.FieldMsg: e.Message})
			},
			WrapRDS: func(next driver.RDSConnection) driver.RDSConnection { return &transport{c: c, next: next} },
			WrapFencer: func(f reconciler.Fencer) reconciler.Fencer {
				if w.opts.Bugs.RevocationDisabled {
					return noRevocation{f}
				}
				return f
			},
		},
	})
	if err != nil {
		return err
	}
	w.ctrl = c
	w.record(trace.KindController, map[string]any{trace.FieldReplica: r.name, trace.FieldState: "leader"})
	// Start without waiting for the first connection: the loop connects in
	// the background, as it does after the binary's --rds-connect-timeout.
	nowait, stop := context.WithCancel(c.ctx)
	stop()
	_ = c.cp.Start(nowait)
	w.settle() // the loop's first steps and the engine's next ones must not interleave
	serving := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		ran <- c.cp.Run(c.ctx, func(ctx context.Context) error {
			close(serving)
			<-ctx.Done()
			return nil
		})
	}()
	// Only the engine's goroutine may block outside the barrier: once the
	// World is quiescent the control plane serves, or has failed.
	w.settle()
	select {
	case <-serving:
		return nil
	case err := <-ran:
		return fmt.Errorf("engine: controller %s ended before it served: %w", r.name, err)
	default:
		return fmt.Errorf("engine: controller %s neither serves nor failed at a standstill", r.name)
	}
}

// stop ends the controller: its goroutines exit, its timers go silent.
func (c *controller) stop() {
	c.mu.Lock()
	c.dead = true
	c.mu.Unlock()
	c.view.close()
	c.cancel()
	_ = c.cp.Close()
}

// ---- CSI calls -------------------------------------------------------------

// ctrlCall runs a controller RPC on the serving controller with the sidecar's
// timeout; without a leader it fails as a dial to a closed socket would.
func (w *World) ctrlCall(ctx context.Context, fn func(ctx context.Context, d *driver.Driver) error) error {
	c := w.ctrl
	if c == nil {
		return status.Error(codes.Unavailable, "no controller serves the CSI socket")
	}
	return fn(ctx, c.cp.Driver)
}

// unpublish is ControllerUnpublishVolume as the serving controller answers
// it, or as the planted UnpublishNeedsRDS bug would.
func (w *World) unpublish(ctx context.Context, c *controller, vol, node string) error {
	if w.opts.Bugs.UnpublishNeedsRDS {
		if _, err := c.cp.RDS.Run(ctx, "/disk print detail where slot="+vol); err != nil {
			return status.Errorf(codes.Unavailable, "look up volume: %v", err)
		}
	}
	_, err := c.cp.Driver.ControllerUnpublishVolume(ctx, &csi.ControllerUnpublishVolumeRequest{VolumeId: vol, NodeId: node})
	return err
}

// noRevocation is the planted RevocationDisabled fencer: it reports every
// fence done without touching RDS, so the reconciler clears lapsed claims
// with their hosts still allowed, and it applies nothing pending.
type noRevocation struct{ reconciler.Fencer }

func (noRevocation) Fence(context.Context, string, []string) error { return nil }
func (noRevocation) ApplyPending(context.Context) error            { return nil }

// recorder is the reconciler's event recorder: events go to the trace with
// virtual time (client-go's recorder stamps the wall clock).
type recorder struct{ w *World }

func (r *recorder) Event(obj runtime.Object, typ, reason, msg string) {
	f := map[string]any{trace.FieldType: typ, trace.FieldReason: reason, trace.FieldMsg: msg}
	pvc := ""
	if ref, ok := obj.(*corev1.ObjectReference); ok {
		f[trace.FieldObject] = ref.Kind + "/" + ref.Namespace + "/" + ref.Name
		if ref.Kind == "PersistentVolumeClaim" {
			pvc = ref.Name
		}
	} else if m, ok := obj.(metav1.Object); ok {
		f[trace.FieldObject] = fmt.Sprintf("%T/%s/%s", obj, m.GetNamespace(), m.GetName())
	}
	r.w.record(trace.KindK8sEvent, f)
	r.w.inv.event(reason, pvc)
}

func (r *recorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	r.Event(obj, typ, reason, fmt.Sprintf(format, args...))
}

func (r *recorder) AnnotatedEventf(obj runtime.Object, _ map[string]string, typ, reason, format string, args ...any) {
	r.Eventf(obj, typ, reason, format, args...)
}

// traceMetrics records every metric sample of the controller that changed
// since the last instant. Histograms are left out: their buckets would only
// repeat the RPC and command lines.
func (c *controller) traceMetrics() {
	// Metrics move only with the work that traces events; an instant that
	// traced nothing (an idle timer) cannot have changed them.
	if gen := c.w.trace.generation(); c.metrics != nil && gen == c.metricsGen {
		return
	}
	defer func() { c.metricsGen = c.w.trace.generation() }()
	samples, ok := c.traced.read()
	if !ok {
		return
	}
	if c.metrics == nil {
		c.metrics = map[string]float64{}
	}
	for _, s := range samples {
		if old, ok := c.metrics[s.key]; !ok || old != s.value {
			c.metrics[s.key] = s.value
			c.w.record(trace.KindMetric, map[string]any{trace.FieldName: s.key, trace.FieldValue: s.value})
		}
	}
}

// tracedRegisterer is the controller's Registerer: every collector goes to
// all, as to the binary's registry (registration succeeds and fails as
// there), and those traceMetrics reads also to traced. Histograms (and
// summaries: whatever observes) stay out of traced: traceMetrics skips them.
type tracedRegisterer struct {
	all    *prometheus.Registry
	traced *tracedMetrics
}

func (r tracedRegisterer) Register(c prometheus.Collector) error {
	if err := r.all.Register(c); err != nil {
		return err
	}
	switch c.(type) {
	case prometheus.Observer, prometheus.ObserverVec:
	default:
		r.traced.add(c)
	}
	return nil
}

func (r tracedRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

func (r tracedRegisterer) Unregister(c prometheus.Collector) bool {
	r.traced.remove(c)
	return r.all.Unregister(c)
}

// tracedMetrics reads the counters and gauges traceMetrics traces. A
// Registry's Gather would do, but it runs at every instant that traced
// something, and for that it costs too much: it allocates two channels of
// a thousand metrics, sorts and checks every family each time. The
// registry (all) has checked the collectors once, at registration; reading
// them is then Collect and Write.
type tracedMetrics struct {
	mu         sync.Mutex
	collectors []prometheus.Collector
	names      map[*prometheus.Desc]string // a metric's name, by its Desc
}

type sample struct {
	key   string // name,label=value,... with the labels sorted by name
	value float64
}

func (t *tracedMetrics) add(c prometheus.Collector) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.collectors = append(t.collectors, c)
}

func (t *tracedMetrics) remove(c prometheus.Collector) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.collectors = slices.DeleteFunc(t.collectors, func(x prometheus.Collector) bool { return x == c })
}

// read returns every counter and gauge sample; ok is false if a metric
// failed to write itself out, as Gather would have failed.
func (t *tracedMetrics) read() (out []sample, ok bool) {
	t.mu.Lock()
	cols := slices.Clone(t.collectors)
	t.mu.Unlock()
	ch := make(chan prometheus.Metric, 64)
	go func() {
		defer close(ch)
		for _, c := range cols {
			c.Collect(ch)
		}
	}()
	ok = true
	var m dto.Metric
	for metric := range ch {
		if !ok {
			continue // drain: the collecting goroutine must finish
		}
		m.Reset()
		if err := metric.Write(&m); err != nil {
			ok = false
			continue
		}
		var v float64
		switch {
		case m.GetCounter() != nil:
			v = m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			v = m.GetGauge().GetValue()
		default:
			continue
		}
		// Write gives the labels sorted by name, as Gather does.
		key := t.name(metric.Desc())
		for _, l := range m.GetLabel() {
			key += "," + l.GetName() + "=" + l.GetValue()
		}
		out = append(out, sample{key, v})
	}
	return out, ok
}

// name is the metric name of a Desc. Desc keeps it unexported; its String
// form begins with it, quoted, and is read once per Desc.
func (t *tracedMetrics) name(d *prometheus.Desc) string {
	if n, ok := t.names[d]; ok {
		return n
	}
	s := strings.TrimPrefix(d.String(), "Desc{fqName: ")
	n := s
	if q, err := strconv.QuotedPrefix(s); err == nil {
		n, _ = strconv.Unquote(q)
	}
	if t.names == nil {
		t.names = map[*prometheus.Desc]string{}
	}
	t.names[d] = n
	return n
}
