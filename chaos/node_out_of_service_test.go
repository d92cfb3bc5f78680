package chaos

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodeOutOfService(t *testing.T) {
	tg, _ := nodeTargets(readyNode("node-a"))
	undo := apply(t, "node.out-of-service", map[string]string{"node": "node-a"}, tg)

	n := getNode(t, tg, "node-a")
	taint := outOfServiceTaint(n)
	if taint == nil {
		t.Fatal("no out-of-service taint")
	}
	if taint.Effect != corev1.TaintEffectNoExecute || taint.Value != OutOfServiceValue {
		t.Fatalf("taint %v, want %s=%s:NoExecute", taint, corev1.TaintNodeOutOfService, OutOfServiceValue)
	}
	if taint.TimeAdded == nil || !taint.TimeAdded.Time.Equal(start) {
		t.Fatalf("taint added at %v, want the clock's %s", taint.TimeAdded, start)
	}
	if len(n.Spec.Taints) != 2 {
		t.Fatalf("taints %v: the node's own taint must stay", n.Spec.Taints)
	}

	f, _ := Lookup("node.out-of-service", map[string]string{"node": "node-a"})
	if _, err := f.Apply(context.Background(), tg); !errors.Is(err, ErrActive) {
		t.Fatalf("second taint: %v, want ErrActive", err)
	}

	if err := undo(context.Background()); err != nil {
		t.Fatal(err)
	}
	n = getNode(t, tg, "node-a")
	if outOfServiceTaint(n) != nil || len(n.Spec.Taints) != 1 {
		t.Fatalf("after undo the taints are %v", n.Spec.Taints)
	}
}

func TestNodeOutOfServiceUndoAfterDelete(t *testing.T) {
	tg, _ := nodeTargets(readyNode("node-a"))
	undo := apply(t, "node.out-of-service", map[string]string{"node": "node-a"}, tg)
	if err := tg.Kube.CoreV1().Nodes().Delete(context.Background(), "node-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := undo(context.Background()); err != nil {
		t.Fatalf("undo on a deleted node: %v", err)
	}
}
