package main

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/leader"
)

// kubeClient returns a client from --kubeconfig, the in-cluster config inside a
// Pod, or nil when neither applies (standalone: attachment rules in memory).
func kubeClient(c config) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case c.kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	case inCluster():
		cfg, err = rest.InClusterConfig()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	cfg.UserAgent = "rds-csi/" + driver.Version
	return kubernetes.NewForConfig(cfg)
}

// inCluster reports whether this process runs in a Pod (in-cluster config).
func inCluster() bool { return os.Getenv("KUBERNETES_SERVICE_HOST") != "" }

// podReference is this replica's own Pod, which carries the controller's
// events; nil outside a Pod (the events are logged only).
func podReference() *corev1.ObjectReference {
	name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || ns == "" {
		return nil
	}
	return &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, Namespace: ns}
}

// elector returns the Lease elector of this replica, named after its Pod.
func elector(c config, kube kubernetes.Interface) (leader.Elector, error) {
	ns := c.leaseNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	if ns == "" {
		return nil, fmt.Errorf("leader election: set --leader-election-namespace or POD_NAMESPACE")
	}
	return leader.NewLease(kube, ns, c.leaseName, id, leader.LeaseOptions{
		LeaseDuration: c.leaseDuration, RenewDeadline: c.renewDeadline, RetryPeriod: c.retryPeriod,
	})
}
