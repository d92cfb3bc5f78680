package engine

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// watched are the resources whose writes the barrier follows (apiWrites
// against apiSeen).
var watched = map[string]bool{"nodes": true, "volumeattachments": true, "persistentvolumes": true}

// watchAPI counts successful writes to the watched resources (a reactor in
// front of the tracker) and the events an informer of our own receives, so
// the barrier knows when every watcher has seen every write.
func (w *World) watchAPI() error {
	tracker := w.Kube.Tracker()
	w.Kube.PrependReactor("*", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		switch a.GetVerb() {
		case "create", "update", "patch", "delete":
		default:
			return false, nil, nil
		}
		if !watched[a.GetResource().Resource] {
			return false, nil, nil
		}
		handled, obj, err := k8stesting.ObjectReaction(tracker)(a)
		if err == nil {
			w.apiWrites.Add(1)
			// What the reconciler's handlers see (reconciler.Options.Observed).
			if r := a.GetResource().Resource; r == "nodes" || r == "persistentvolumes" || r == "volumeattachments" {
				w.recWrites.Add(1)
			}
		}
		return handled, obj, err
	})
	f := informers.NewSharedInformerFactory(w.Kube, 0)
	h := cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    func(_ any, initial bool) { w.apiSeen.Add(1) },
		UpdateFunc: func(any, any) { w.apiSeen.Add(1) },
		DeleteFunc: func(any) { w.apiSeen.Add(1) },
	}
	infs := []cache.SharedIndexInformer{f.Core().V1().Nodes().Informer(), f.Storage().V1().VolumeAttachments().Informer(),
		f.Core().V1().PersistentVolumes().Informer()}
	// The VolumeAttachment handler is also the external-attacher's watch
	// (the retry annotation): one handler, so the event is taken in before
	// it is counted as seen. Handlers of one informer run concurrently.
	vaHandler := h
	vaHandler.UpdateFunc = func(o, n any) {
		w.kube.nudge(o, n)
		w.apiSeen.Add(1)
	}
	for i, inf := range infs {
		hh := h
		if i == 1 {
			hh = vaHandler
		}
		if _, err := inf.AddEventHandler(hh); err != nil {
			return err
		}
	}
	f.Start(w.ctx.Done())
	for _, ok := range f.WaitForCacheSync(w.ctx.Done()) {
		if !ok {
			return errors.New("engine: informers did not sync")
		}
	}
	w.apiSeen.Add(-int64(len(w.opts.Nodes))) // the initial list is not a write
	return nil
}

// readyNode is a Node object reporting Ready since now.
func readyNode(name string, now time.Time) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), LastHeartbeatTime: metav1.NewTime(now)}}}}
}
