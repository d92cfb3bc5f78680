package engine

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// watchAPI starts the engine's own informers: the external-attacher's watch
// of VolumeAttachments (the retry annotation) lives on them.
func (w *World) watchAPI() error {
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
