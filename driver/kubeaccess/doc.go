// Package kubeaccess lists the Kubernetes API access the driver's own code
// needs: the controller's reconciler (informers on Nodes, VolumeAttachments and
// PersistentVolumes, confirming GETs, events) and its leader election (a
// coordination.k8s.io Lease). The node plugin talks to no Kubernetes API.
//
// The list is the contract between the code and the RBAC in deploy/: a test in
// this package runs the real code paths against client-go's fake clientset and
// fails when the code performs an action the list does not grant, or when the
// list grants a verb the code never uses. The deploy module's test then checks
// that the rendered ClusterRole and Role grant at least this list (plus what
// each CSI sidecar needs). Change the code, and the test tells you to change
// the list; change the list, and the deploy test tells you to change the RBAC.
package kubeaccess
