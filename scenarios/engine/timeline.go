package engine

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/chaos"
	"github.com/rds-csi/rds-csi/scenarios/trace"
)

// Apply performs one timeline action by name: a fault of the chaos
// catalogue, or one the engine performs itself (node.ready, node.create,
// volume.attach, volume.detach). It is traced.
func (w *World) Apply(name string, params map[string]string) error {
	if _, ok := chaos.LookupSpec(name); ok {
		return w.ApplyFault(name, params)
	}
	w.record(trace.KindAction, withParams(map[string]any{trace.FieldAction: name}, params))
	switch name {
	case "node.ready":
		return w.setReady(params["node"])
	case "node.create":
		_, err := w.Kube.CoreV1().Nodes().Create(w.ctx, readyNode(params["node"], w.Clock.Now()), metav1.CreateOptions{})
		w.record(trace.KindNode, map[string]any{trace.FieldNode: params["node"], trace.FieldState: "created"})
		return err
	case "volume.attach":
		return w.AddPlacement(params["volume"], params["node"])
	case "volume.detach":
		return w.Unschedule(params["volume"], params["node"])
	}
	return fmt.Errorf("engine: unknown action %q", name)
}

func withParams(f map[string]any, params map[string]string) map[string]any {
	for _, k := range sortedKeys(params) {
		f[trace.ParamPrefix+k] = params[k]
	}
	return f
}

// setReady ends a node.not-ready fault on the node, or marks it Ready.
func (w *World) setReady(node string) error {
	if _, ok := w.faults["node.not-ready/"+node]; ok {
		return w.EndFault("node.not-ready/" + node)
	}
	n, err := w.Kube.CoreV1().Nodes().Get(w.ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	n = n.DeepCopy()
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionTrue
		}
	}
	_, err = w.Kube.CoreV1().Nodes().UpdateStatus(w.ctx, n, metav1.UpdateOptions{})
	w.record(trace.KindNode, map[string]any{trace.FieldNode: node, trace.FieldState: "ready"})
	return err
}

// FaultKey keys an active fault (EndFault): node faults per node, so two
// nodes can be down at once.
func FaultKey(name string, params map[string]string) string {
	return trace.FaultKey(name, params["node"])
}

// ApplyFault starts the catalogued fault name (chaos.Lookup) and traces it.
func (w *World) ApplyFault(name string, params map[string]string) error {
	f, err := chaos.Lookup(name, params)
	if err != nil {
		return err
	}
	undo, err := f.Apply(w.ctx, chaos.Targets{RDS: w.Emulator, Network: w.Network, Kube: w.Kube,
		Clock: w.vc.view(), Seed: w.opts.Seed, Controller: w, KubeVirt: w})
	fields := withParams(map[string]any{trace.FieldFault: name}, params)
	if err != nil {
		fields[trace.FieldErr] = err.Error()
		w.record(trace.KindFaultApplyFailed, fields)
		return err
	}
	key := FaultKey(name, params)
	if undo != nil {
		w.faults[key] = undo
	} else {
		delete(w.faults, key)
	}
	w.record(trace.KindFaultApplied, fields)
	w.nodeFaultTrace(name, params)
	return nil
}

// EndFault undoes the fault started under key (the fault's name, with
// "/node" for node faults).
func (w *World) EndFault(key string) error {
	undo, ok := w.faults[key]
	if !ok {
		return fmt.Errorf("engine: fault %q not active", key)
	}
	delete(w.faults, key)
	err := undo(w.ctx)
	f := map[string]any{trace.FieldFault: key}
	if err != nil {
		f[trace.FieldErr] = err.Error()
	}
	w.record(trace.KindFaultEnded, f)
	return err
}

func (w *World) nodeFaultTrace(name string, params map[string]string) {
	state := map[string]string{"node.not-ready": "not-ready", "node.delete": "deleted", "node.out-of-service": "out-of-service"}[name]
	if state == "" {
		return
	}
	w.record(trace.KindNode, map[string]any{trace.FieldNode: params["node"], trace.FieldState: state})
}

// Migrate is a KubeVirt live migration of the VM whose disk is volume to
// node: attach-first starts the target pod, then deletes the source pod
// delay later once the target is attached (KubeVirt aborts, deleting the
// target, when it is not); detach-first deletes the source first.
func (w *World) Migrate(volume, to, order string, delay time.Duration) error {
	src := w.Placement(volume)
	if len(src) != 1 {
		return fmt.Errorf("engine: VM %s runs on %v, not on one node", volume, src)
	}
	source := src[0]
	now := w.Clock.Now()
	w.record(trace.KindKubeVirt, map[string]any{trace.FieldVM: volume, trace.FieldFrom: source, trace.FieldTo: to, trace.FieldOrder: order, trace.FieldOp: "migration-started"})
	if order == "detach-first" {
		if err := w.Unschedule(volume, source); err != nil {
			return err
		}
		w.tasks.add(now.Add(delay), "migrate "+volume, func() error { return w.AddPlacement(volume, to) })
		return nil
	}
	if err := w.AddPlacement(volume, to); err != nil {
		return err
	}
	w.tasks.add(now.Add(delay), "migrate "+volume, func() error {
		if !slices.Contains(w.AttachedTo(volume), to) {
			w.record(trace.KindKubeVirt, map[string]any{trace.FieldVM: volume, trace.FieldFrom: source, trace.FieldTo: to, trace.FieldOp: "migration-aborted"})
			return w.Unschedule(volume, to)
		}
		w.record(trace.KindKubeVirt, map[string]any{trace.FieldVM: volume, trace.FieldFrom: source, trace.FieldTo: to, trace.FieldOp: "migration-completed"})
		return w.Unschedule(volume, source)
	})
	return nil
}
