// Package e2e runs rds-csi end to end against a real Kubernetes control plane:
// etcd, kube-apiserver and kube-controller-manager (attach-detach, node
// lifecycle, taint eviction, pod GC, PV binder), the real kubernetes-csi
// sidecars as separate processes, two rds-csi controller replicas electing a
// leader on a real Lease, one rds-csi node plugin per node, and the RouterOS
// emulator. There is no kubelet: the tests play its part for each node (Node
// object, Lease heartbeats, CSINode, volumesInUse, and the node RPCs).
//
// The tests carry the build tag e2e, so `go test ./...` does not run them.
// `make e2e` builds the Kubernetes binaries once (hack/e2e/tools.sh) and runs
// `go test -tags e2e ./e2e/...` with E2E_* variables naming them.
//
// Under the build tag e2ekubelet (make e2e-kubelet) the same harness runs the
// real-kubelet lane instead (lane_test.go, lane_volumes_test.go): two real
// kubelets, each with its own containerd, node plugin and
// node-driver-registrar, and nothing playing the kubelet. The harness files
// build under both tags; see hack/e2e/README.md.
package e2e
