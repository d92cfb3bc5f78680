package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/leader"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
)

// kubeClient returns a client from --kubeconfig, the in-cluster config inside a
// Pod, or nil when neither applies (standalone: attachment rules in memory).
func kubeClient(c config) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	switch {
	case c.kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
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

// cluster is the controller's Kubernetes side: the reconciler and the identity
// of this replica.
type cluster struct {
	kube kubernetes.Interface
	r    *reconciler.Reconciler
	pod  *corev1.ObjectReference
}

func newCluster(c config, kube kubernetes.Interface, am *attachment.Manager, reg prometheus.Registerer) (*cluster, error) {
	var pod *corev1.ObjectReference
	if name, ns := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE"); name != "" && ns != "" {
		pod = &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Name: name, Namespace: ns}
	}
	r, err := reconciler.New(reconciler.Options{
		DriverName: driver.DefaultName, Client: kube, Attachments: am, Interval: c.reconcileInterval,
		NotReadyTimeout: c.notReadyTimeout, Registerer: reg, Identity: pod,
	})
	if err != nil {
		return nil, err
	}
	return &cluster{kube: kube, r: r, pod: pod}, nil
}

// elector returns the Lease elector of this replica, named after its Pod.
func (cl *cluster) elector(c config) (leader.Elector, error) {
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
	return leader.NewLease(cl.kube, ns, c.leaseName, id, leader.LeaseOptions{
		LeaseDuration: c.leaseDuration, RenewDeadline: c.renewDeadline, RetryPeriod: c.retryPeriod,
	})
}

// rdsChanged turns RDS connection transitions into events and, on reconnect,
// an immediate reconcile.
func (cl *cluster) rdsChanged(ev rds.Event) {
	switch {
	case ev.State == rds.StateConnected && ev.Previous != rds.StateConnected:
		cl.r.RDSStateChanged(true, "connection to RDS established")
	case ev.Previous == rds.StateConnected && ev.State != rds.StateConnected:
		reason := "connection to RDS lost"
		if ev.Err != nil {
			reason += ": " + ev.Err.Error()
		}
		cl.r.RDSStateChanged(false, reason)
	}
}
