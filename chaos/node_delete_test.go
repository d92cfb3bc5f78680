package chaos

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeDelete(t *testing.T) {
	n := readyNode("node-a")
	// The outage left its marks: NotReady, tainted out of service.
	n.Status.Conditions[1].Status = corev1.ConditionUnknown
	n.Spec.Taints = append(n.Spec.Taints,
		corev1.Taint{Key: corev1.TaintNodeOutOfService, Value: OutOfServiceValue, Effect: corev1.TaintEffectNoExecute},
		corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute})
	tg, clk := nodeTargets(n, readyNode("node-b"))

	undo := apply(t, "node.delete", map[string]string{"node": "node-a"}, tg)
	if _, err := tg.Kube.CoreV1().Nodes().Get(context.Background(), "node-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("node-a after delete: %v, want NotFound", err)
	}
	getNode(t, tg, "node-b")

	clk.Add(time.Hour)
	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	back := getNode(t, tg, "node-a")
	if c := readyCondition(t, back); c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Time.Equal(start.Add(time.Hour)) {
		t.Fatalf("re-created node: Ready %s since %s, want True since %s", c.Status, c.LastTransitionTime, start.Add(time.Hour))
	}
	if back.Labels["kubernetes.io/hostname"] != "node-a" || back.Spec.ProviderID != "kind://node-a" {
		t.Fatalf("re-created node lost its labels or spec: %+v", back.ObjectMeta.Labels)
	}
	if back.Status.NodeInfo.KubeletVersion != "v1.34.0" {
		t.Fatal("re-created node lost its status")
	}
	if len(back.Spec.Taints) != 1 || back.Spec.Taints[0].Key != "example.com/dedicated" {
		t.Fatalf("re-created node's taints %v, want only the node's own", back.Spec.Taints)
	}
}

func TestNodeDeleteUndoWhenBack(t *testing.T) {
	tg, _ := nodeTargets(readyNode("node-a"))
	undo := apply(t, "node.delete", map[string]string{"node": "node-a"}, tg)
	if _, err := tg.Kube.CoreV1().Nodes().Create(context.Background(), readyNode("node-a"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := undo(context.Background()); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("undo over a node that is back: %v, want AlreadyExists", err)
	}
}

func TestNodeDeleteMissingNode(t *testing.T) {
	tg, _ := nodeTargets()
	f, _ := Lookup("node.delete", map[string]string{"node": "ghost"})
	if _, err := f.Apply(context.Background(), tg); !apierrors.IsNotFound(err) {
		t.Fatalf("delete of a missing node: %v, want NotFound", err)
	}
}
