package engine

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rds-csi/rds-csi/chaos"
)

// Step is one timed action of a programmatic timeline.
type Step struct {
	At   time.Duration
	Name string
	Do   func(w *World) error
}

// Apply performs one timeline action by name: a fault of the chaos
// catalogue, or one the engine performs itself (node.ready, node.create,
// volume.attach, volume.detach). It is traced.
func (w *World) Apply(name string, params map[string]string) error {
	if _, ok := chaos.LookupSpec(name); ok {
		return w.ApplyFault(name, params)
	}
	w.record("action", withParams(map[string]any{"action": name}, params))
	switch name {
	case "node.ready":
		return w.setReady(params["node"])
	case "node.create":
		_, err := w.Kube.CoreV1().Nodes().Create(w.ctx, readyNode(params["node"], w.Clock.Now()), metav1.CreateOptions{})
		w.record("node", map[string]any{"node": params["node"], "state": "created"})
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
		f["param."+k] = params[k]
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
	w.record("node", map[string]any{"node": node, "state": "ready"})
	return err
}

// FaultKey keys an active fault (EndFault, ActiveFaults): node faults per
// node, so two nodes can be down at once.
func FaultKey(name string, params map[string]string) string {
	if n := params["node"]; n != "" {
		return name + "/" + n
	}
	return name
}

// ApplyFault starts the catalogued fault name (chaos.Lookup) and traces it.
func (w *World) ApplyFault(name string, params map[string]string) error {
	f, err := chaos.Lookup(name, params)
	if err != nil {
		return err
	}
	undo, err := f.Apply(w.ctx, chaos.Targets{RDS: w.Emulator, Network: w.Network, Kube: w.Kube,
		Clock: w.vc.view(nil), Seed: w.opts.Seed, Controller: w, KubeVirt: w})
	fields := withParams(map[string]any{"fault": name}, params)
	if err != nil {
		fields["err"] = err.Error()
		w.record("fault.apply-failed", fields)
		return err
	}
	key := FaultKey(name, params)
	if undo != nil {
		w.faults[key] = undo
	} else {
		delete(w.faults, key)
	}
	w.record("fault.applied", fields)
	w.nodeFaultTrace(name, params, false)
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
	f := map[string]any{"fault": key}
	if err != nil {
		f["err"] = err.Error()
	}
	w.record("fault.ended", f)
	return err
}

func (w *World) nodeFaultTrace(name string, params map[string]string, ended bool) {
	state := map[string]string{"node.not-ready": "not-ready", "node.delete": "deleted", "node.out-of-service": "out-of-service"}[name]
	if state == "" || ended {
		return
	}
	w.record("node", map[string]any{"node": params["node"], "state": state})
}

// ActiveFaults lists the keys of the faults in force, sorted.
func (w *World) ActiveFaults() []string { return sortedKeys(w.faults) }

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
	w.record("kubevirt", map[string]any{"vm": volume, "from": source, "to": to, "order": order, "op": "migration-started"})
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
		if !containsStr(w.AttachedTo(volume), to) {
			w.record("kubevirt", map[string]any{"vm": volume, "from": source, "to": to, "op": "migration-aborted"})
			return w.Unschedule(volume, to)
		}
		w.record("kubevirt", map[string]any{"vm": volume, "from": source, "to": to, "op": "migration-completed"})
		return w.Unschedule(volume, source)
	})
	return nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Run plays steps in time order (stable for equal times).
func (w *World) Run(steps []Step) error {
	steps = append([]Step(nil), steps...)
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At < steps[j].At })
	for _, s := range steps {
		if err := w.Advance(s.At); err != nil {
			return err
		}
		w.record("step", map[string]any{"name": s.Name})
		if err := s.Do(w); err != nil {
			return fmt.Errorf("step %q at %v: %w", s.Name, s.At, err)
		}
		if err := w.Advance(w.Now()); err != nil {
			return err
		}
	}
	return nil
}

// Fault is a Step applying a catalogued fault; End one ending it.
func Fault(at time.Duration, name string, params map[string]string) Step {
	return Step{At: at, Name: "fault " + name, Do: func(w *World) error { return w.ApplyFault(name, params) }}
}

// End is a Step ending the fault started under key.
func End(at time.Duration, key string) Step {
	return Step{At: at, Name: "end " + key, Do: func(w *World) error { return w.EndFault(key) }}
}
