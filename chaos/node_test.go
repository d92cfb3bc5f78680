package chaos

import (
	"context"
	"testing"
	"time"

	libclock "github.com/benbjohnson/clock"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/rds-csi/rds-csi/internal/clock"
)

// start is when node tests begin, whole seconds because the API keeps
// timestamps to the second.
var start = time.Date(2026, 2, 5, 10, 0, 0, 0, time.UTC)

var longAgo = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))

func readyNode(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Spec: corev1.NodeSpec{
			ProviderID: "kind://" + name,
			Taints:     []corev1.Taint{{Key: "example.com/dedicated", Value: "storage", Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{
				{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastTransitionTime: longAgo, LastHeartbeatTime: longAgo},
				{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: reasonReady, LastTransitionTime: longAgo, LastHeartbeatTime: longAgo},
			},
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.34.0"},
		},
	}
}

func nodeTargets(objs ...*corev1.Node) (Targets, *libclock.Mock) {
	clk := libclock.NewMock()
	clk.Set(start)
	kube := fake.NewClientset()
	for _, n := range objs {
		if _, err := kube.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
			panic(err)
		}
	}
	return Targets{Kube: kube, Clock: clock.FromLibrary(clk)}, clk
}

func getNode(t *testing.T, tg Targets, name string) *corev1.Node {
	t.Helper()
	n, err := tg.Kube.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", name, err)
	}
	return n
}

func readyCondition(t *testing.T, n *corev1.Node) corev1.NodeCondition {
	t.Helper()
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	t.Fatalf("node %s has no Ready condition", n.Name)
	return corev1.NodeCondition{}
}

func outOfServiceTaint(n *corev1.Node) *corev1.Taint {
	for i := range n.Spec.Taints {
		if n.Spec.Taints[i].Key == corev1.TaintNodeOutOfService {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}
