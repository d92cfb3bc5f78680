package chaos

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// Reasons and messages of the Ready condition, as the kubelet and the node
// lifecycle controller write them.
const (
	reasonReady         = "KubeletReady"
	messageReady        = "kubelet is posting ready status"
	reasonNotReady      = "KubeletNotReady"
	messageNotReady     = "kubelet is not ready (node.not-ready fault)"
	reasonStatusUnknown = "NodeStatusUnknown"
	messageUnknown      = "Kubelet stopped posting node status."
)

// setReadyCondition writes the Ready condition into a node's status, as the
// kubelet (True, False) or the node lifecycle controller (Unknown) would: the
// transition time moves only when the status changes, and the heartbeat only
// when a kubelet is posting.
func setReadyCondition(n *corev1.Node, status corev1.ConditionStatus, reason, message string, now time.Time) {
	t := metav1.NewTime(now)
	c := corev1.NodeCondition{Type: corev1.NodeReady}
	i := -1
	for j := range n.Status.Conditions {
		if n.Status.Conditions[j].Type == corev1.NodeReady {
			i, c = j, n.Status.Conditions[j]
			break
		}
	}
	if c.Status != status {
		c.LastTransitionTime = t
	}
	if status != corev1.ConditionUnknown || c.LastHeartbeatTime.IsZero() {
		c.LastHeartbeatTime = t
	}
	c.Status, c.Reason, c.Message = status, reason, message
	if i < 0 {
		n.Status.Conditions = append(n.Status.Conditions, c)
	} else {
		n.Status.Conditions[i] = c
	}
}

// updateNodeStatus reads node, lets change edit it and writes its status back,
// retrying on conflicts.
func updateNodeStatus(ctx context.Context, kube kubernetes.Interface, node string, change func(*corev1.Node)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		change(n)
		_, err = kube.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

// updateNode is updateNodeStatus for the node's spec.
func updateNode(ctx context.Context, kube kubernetes.Interface, node string, change func(*corev1.Node) error) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := change(n); err != nil {
			return err
		}
		_, err = kube.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
		return err
	})
}

func nodeParam(f Fault, node string) error {
	if node == "" {
		return invalid(f, "node must be named")
	}
	return nil
}

func nodeErr(f Fault, node string, err error) error {
	return fmt.Errorf("%s: node %s: %w", f.Name(), node, err)
}
