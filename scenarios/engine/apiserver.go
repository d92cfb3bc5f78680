package engine

import (
	"errors"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// watchAPI starts the engine's own informers: the external-attacher's watch
// of VolumeAttachments (the retry annotation) lives on them.
//
// It also counts the writes to Node objects and VolumeAttachments, whoever
// makes them (timeline actions, chaos faults and their undos, the
// attachers, the driver): the engine keeps what it read of them until one
// happens (kubeSim.nodes, kubeSim.attachedByPV). The reactors only look:
// they let every action through to the object tracker.
func (w *World) watchAPI() error {
	countWrites := func(counter func(*kubeSim) *atomic.Uint64) k8stesting.ReactionFunc {
		return func(a k8stesting.Action) (bool, runtime.Object, error) {
			switch a.GetVerb() {
			case "get", "list", "watch":
			default:
				if k := w.kube; k != nil { // nil only while NewWorld builds it: nothing is kept yet
					counter(k).Add(1)
				}
			}
			return false, nil, nil
		}
	}
	w.Kube.PrependReactor("*", "nodes", countWrites(func(k *kubeSim) *atomic.Uint64 { return &k.nodeWrites }))
	w.Kube.PrependReactor("*", "volumeattachments", countWrites(func(k *kubeSim) *atomic.Uint64 { return &k.vaWrites }))
	f := informers.NewSharedInformerFactory(w.Kube, 0)
	va := f.Storage().V1().VolumeAttachments().Informer()
	if _, err := va.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: func(o, n any) { w.kube.nudge(o, n) }}); err != nil {
		return err
	}
	f.Start(w.ctx.Done())
	for _, ok := range f.WaitForCacheSync(w.ctx.Done()) {
		if !ok {
			return errors.New("engine: informers did not sync")
		}
	}
	return nil
}

// readyNode is a Node object reporting Ready since now.
func readyNode(name string, now time.Time) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), LastHeartbeatTime: metav1.NewTime(now)}}}}
}
