//go:build e2e || e2ekubelet

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// noMountAnnotation on a Pod makes the kubelet stand-in report its volumes in
// use and wait for them to be attached, but not stage or publish them: for
// scenarios about the controller with hundreds of attachments, where a loop
// device and a filesystem per volume would only cost time.
const noMountAnnotation = "e2e.rds-csi.io/no-mount"

// stageMu serialises NodeStage across all nodes of the harness, so the loop
// devices a stage creates can be attributed to its node (see powerOff).
var stageMu sync.Mutex

// node plays a kubelet for one Node: it registers the Node, its Lease and
// CSINode, heartbeats, reports volumesInUse, and for each Pod bound to it
// waits for the VolumeAttachment and calls NodeStage/NodePublish on its own
// rds-csi node plugin (loop data plane), and the reverse on deletion.
type node struct {
	c      *cluster
	name   string
	root   string // this node's /var/lib/kubelet
	socket string
	plugin *proc
	conn   *grpc.ClientConn
	csi    csi.NodeClient

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	uid       types.UID
	inUse     map[string]bool        // unique volume names reported in volumesInUse
	staged    map[string]*stagedVol  // by volume handle
	pods      map[types.UID]*podVols // pods whose volumes are set up (or being)
	inflight  map[types.UID]bool     // pods a worker is busy with
	lister    func() ([]*corev1.Pod, error)
	podLister corelisters.PodLister
	devices   map[string]string // loop device → volume handle, attached by this node
	log       *proc             // not a process: its log file, for the failure dump
}

// logf appends a line to the kubelet stand-in's log.
func (n *node) logf(format string, args ...any) {
	f, err := os.OpenFile(n.log.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

type stagedVol struct {
	handle, stagingPath string
	users               map[types.UID]bool
}

// podVols is what the kubelet did for a pod, so it can undo it even after the
// Pod object is gone.
type podVols struct {
	pod     *corev1.Pod
	vols    []*podVol
	running bool
}

type podVol struct {
	pv         *corev1.PersistentVolume
	handle     string
	unique     string
	targetPath string
	published  bool
	block      bool
	noMount    bool
}

// addNode starts a node plugin for name and registers the node like a kubelet.
// extra are flags the node plugin gets besides the harness's own.
func (c *cluster) addNode(ctx context.Context, name string, extra ...string) (*node, error) {
	n := &node{c: c, name: name, root: filepath.Join(c.dir, "nodes", name, "kubelet"),
		inUse: map[string]bool{}, staged: map[string]*stagedVol{}, pods: map[types.UID]*podVols{},
		inflight: map[types.UID]bool{}, devices: map[string]string{}}
	if err := os.MkdirAll(n.root, 0o750); err != nil {
		return nil, err
	}
	n.socket = filepath.Join(c.dir, "nodes", name, "csi.sock")
	// The emulator's state directory "as this node sees it": a bind mount of
	// its own. Nodes of a real cluster have a kernel each; here they share
	// one, and the loop data plane finds a file's device by the path the
	// kernel reports for it, so two nodes must reach the files through
	// different mounts or the second would adopt the first one's device.
	backing := filepath.Join(c.dir, "nodes", name, "rds-state")
	if err := os.MkdirAll(backing, 0o750); err != nil {
		return nil, err
	}
	if os.Getenv("E2E_SHARED_LOOP_DIR") != "" {
		// Reproduces kind: every node reaches the files by the same path.
		backing = c.emuState
	} else if err := unix.Mount(c.emuState, backing, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("bind-mount the emulator state for %s: %w", name, err)
	}
	args := append([]string{"--mode=node", "--node-id=" + name, "--endpoint=unix://" + n.socket,
		"--data-plane=loop", "--loop-backing-dir=" + backing, "--kubelet-dir=" + n.root,
		"--node-state-dir=" + filepath.Join(c.dir, "nodes", name, "plugin-state"),
		"--v=4"}, extra...)
	n.plugin = c.procs.add(newProc(filepath.Join(c.dir, "logs"), "node-"+name, c.bins.rdsCSI, args...))
	n.plugin.supervised = true
	n.log = c.procs.add(newProc(filepath.Join(c.dir, "logs"), "kubelet-"+name, ""))
	if err := n.plugin.Start(); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	n.conn, n.csi = conn, csi.NewNodeClient(conn)
	var info *csi.NodeGetInfoResponse
	if err := waitFor(ctx, 30*time.Second, 100*time.Millisecond, "node plugin "+name+" NodeGetInfo", func(ctx context.Context) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err = n.csi.NodeGetInfo(cctx, &csi.NodeGetInfoRequest{})
		return err == nil, err
	}); err != nil {
		return nil, err
	}

	nodeIDs, _ := json.Marshal(map[string]string{driverName: info.GetNodeId()})
	obj := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: name,
		Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
			"kubernetes.io/arch": "amd64"},
		Annotations: map[string]string{
			"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			"csi.volume.kubernetes.io/nodeid":                        string(nodeIDs),
		},
	}}
	created, err := c.admin.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create node %s: %w", name, err)
	}
	n.uid = created.UID
	now := metav1.Now()
	created.Status = corev1.NodeStatus{
		Capacity: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("500"),
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
		Allocatable: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("500"),
			corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
		Conditions: n.conditions(now),
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
			{Type: corev1.NodeHostName, Address: name}},
		NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64",
			ContainerRuntimeVersion: "e2e://none"},
	}
	statusPatch, err := json.Marshal(map[string]any{"status": created.Status})
	if err != nil {
		return nil, err
	}
	if _, err := c.admin.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, statusPatch, metav1.PatchOptions{}, "status"); err != nil {
		return nil, fmt.Errorf("node %s status: %w", name, err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: n.uid}}
	var alloc *storagev1.VolumeNodeResources
	if m := info.GetMaxVolumesPerNode(); m > 0 {
		alloc = &storagev1.VolumeNodeResources{Count: ptr.To(int32(m))}
	}
	var topo []string
	for k := range info.GetAccessibleTopology().GetSegments() {
		topo = append(topo, k)
	}
	sort.Strings(topo)
	if _, err := c.admin.StorageV1().CSINodes().Create(ctx, &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owner},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{
			Name: driverName, NodeID: info.GetNodeId(), TopologyKeys: topo, Allocatable: alloc}}},
	}, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("CSINode %s: %w", name, err)
	}
	if err := n.renewLease(ctx, owner); err != nil {
		return nil, err
	}

	n.ctx, n.cancel = context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactoryWithOptions(c.admin, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", name).String()
	}))
	pods := f.Core().V1().Pods()
	kick := make(chan struct{}, 1)
	trigger := func(any) {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: trigger, UpdateFunc: func(_, o any) { trigger(o) }, DeleteFunc: trigger,
	}); err != nil {
		return nil, err
	}
	n.podLister = pods.Lister()
	n.lister = func() ([]*corev1.Pod, error) { return pods.Lister().List(labels.Everything()) }
	f.Start(n.ctx.Done())
	f.WaitForCacheSync(ctx.Done())

	n.wg.Add(2)
	go func() { // heartbeats: the Lease every second, the status every 10s
		defer n.wg.Done()
		lease := time.NewTicker(time.Second)
		defer lease.Stop()
		last := time.Now()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-lease.C:
			}
			cctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			_ = n.renewLease(cctx, owner)
			if time.Since(last) >= 10*time.Second {
				_ = n.postStatus(cctx)
				last = time.Now()
			}
			cancel()
		}
	}()
	go func() { // the pod loop
		defer n.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-kick:
			case <-tick.C:
			}
			n.syncPods()
		}
	}()
	return n, nil
}

func (n *node) conditions(now metav1.Time) []corev1.NodeCondition {
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
	}
}

func (n *node) renewLease(ctx context.Context, owner []metav1.OwnerReference) error {
	leases := n.c.admin.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(ctx, n.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: n.name, Namespace: corev1.NamespaceNodeLease, OwnerReferences: owner},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(n.name), LeaseDurationSeconds: ptr.To(int32(40)),
				RenewTime: &now},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	return err
}

// postStatus patches the Ready heartbeat and volumesInUse, as kubelet does; the
// attach-detach controller owns volumesAttached.
func (n *node) postStatus(ctx context.Context) error {
	n.mu.Lock()
	inUse := make([]string, 0, len(n.inUse))
	for v := range n.inUse {
		inUse = append(inUse, v)
	}
	n.mu.Unlock()
	sort.Strings(inUse)
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"conditions":   n.conditions(metav1.Now()),
		"volumesInUse": inUse,
	}})
	if err != nil {
		return err
	}
	_, err = n.c.admin.CoreV1().Nodes().Patch(ctx, n.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	return err
}

// syncPods starts a worker for every pod that needs one.
func (n *node) syncPods() {
	pods, err := n.lister()
	if err != nil {
		return
	}
	seen := map[types.UID]bool{}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range pods {
		seen[p.UID] = true
		pv := n.pods[p.UID]
		switch {
		case p.DeletionTimestamp == nil && pv != nil && pv.running:
			continue // set up
		case n.inflight[p.UID]:
			continue
		}
		n.inflight[p.UID] = true
		n.wg.Add(1)
		go func(p *corev1.Pod) {
			defer n.wg.Done()
			var err error
			if p.DeletionTimestamp != nil {
				err = n.teardown(p.UID, p)
			} else {
				err = n.setup(p)
			}
			if err != nil && n.ctx.Err() == nil {
				n.logf("pod %s/%s: %v", p.Namespace, p.Name, err)
			}
			n.mu.Lock()
			delete(n.inflight, p.UID)
			n.mu.Unlock()
		}(p)
	}
	// Pods deleted without a kubelet's say (force deletion, pod GC): clean up.
	for uid := range n.pods {
		if !seen[uid] && !n.inflight[uid] {
			n.inflight[uid] = true
			n.wg.Add(1)
			go func(uid types.UID) {
				defer n.wg.Done()
				_ = n.teardown(uid, nil)
				n.mu.Lock()
				delete(n.inflight, uid)
				n.mu.Unlock()
			}(uid)
		}
	}
}

// vaName is the VolumeAttachment name the attach-detach controller uses.
func vaName(handle, nodeName string) string {
	return fmt.Sprintf("csi-%x", sha256.Sum256([]byte(handle+driverName+nodeName)))
}

// setup does what kubelet does for a new pod's PVC volumes.
func (n *node) setup(p *corev1.Pod) error {
	ctx := n.ctx
	n.mu.Lock()
	pv := n.pods[p.UID]
	if pv == nil {
		pv = &podVols{pod: p}
		n.pods[p.UID] = pv
	}
	n.mu.Unlock()
	noMount := p.Annotations[noMountAnnotation] == "true"
	if len(pv.vols) == 0 {
		// All or nothing: a claim not bound yet is retried with the others.
		var vols []*podVol
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim == nil {
				continue
			}
			pvc, err := n.c.admin.CoreV1().PersistentVolumeClaims(p.Namespace).Get(ctx, v.PersistentVolumeClaim.ClaimName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if pvc.Spec.VolumeName == "" || pvc.Status.Phase != corev1.ClaimBound {
				return fmt.Errorf("PVC %s not bound yet", pvc.Name)
			}
			obj, err := n.c.admin.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if obj.Spec.CSI == nil || obj.Spec.CSI.Driver != driverName {
				continue
			}
			block := obj.Spec.VolumeMode != nil && *obj.Spec.VolumeMode == corev1.PersistentVolumeBlock
			handle := obj.Spec.CSI.VolumeHandle
			vol := &podVol{pv: obj, handle: handle, block: block, noMount: noMount,
				unique: "kubernetes.io/csi/" + driverName + "^" + handle}
			if block {
				vol.targetPath = filepath.Join(n.root, "plugins/kubernetes.io/csi/volumeDevices/publish", obj.Name, string(p.UID))
			} else {
				vol.targetPath = filepath.Join(n.root, "pods", string(p.UID), "volumes/kubernetes.io~csi", obj.Name, "mount")
			}
			vols = append(vols, vol)
		}
		pv.vols = vols
	}
	// Report in use before mounting, as kubelet's volume manager does.
	n.mu.Lock()
	changed := false
	for _, v := range pv.vols {
		if !n.inUse[v.unique] {
			n.inUse[v.unique], changed = true, true
		}
	}
	n.mu.Unlock()
	if changed {
		if err := n.postStatus(ctx); err != nil {
			return err
		}
	}
	for _, v := range pv.vols {
		// Wait for the attach-detach controller and the external-attacher.
		var va *storagev1.VolumeAttachment
		err := waitFor(ctx, 10*time.Minute, 200*time.Millisecond, "VolumeAttachment of "+v.pv.Name, func(ctx context.Context) (bool, error) {
			if cur, err := n.podLister.Pods(p.Namespace).Get(p.Name); err != nil || cur.UID != p.UID || cur.DeletionTimestamp != nil {
				return false, permanent(fmt.Errorf("pod %s is going away", p.Name))
			}
			var err error
			va, err = n.c.vaLister.Get(vaName(v.handle, n.name))
			if err != nil {
				return false, err
			}
			return va.Status.Attached, nil
		})
		if err != nil {
			return err
		}
		if v.noMount || v.published {
			continue
		}
		if err := n.stage(ctx, p, v, va.Status.AttachmentMetadata); err != nil {
			return err
		}
		if err := n.publish(ctx, p, v, va.Status.AttachmentMetadata); err != nil {
			return err
		}
		v.published = true
		n.logf("pod %s/%s: %s staged and published at %s", p.Namespace, p.Name, v.handle, v.targetPath)
	}
	// Containers "run".
	now := metav1.Now()
	cur, err := n.c.admin.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cur.UID != p.UID || cur.DeletionTimestamp != nil {
		return nil
	}
	cur.Status.Phase = corev1.PodRunning
	cur.Status.HostIP = "127.0.0.1"
	cur.Status.StartTime = &now
	cur.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	cur.Status.ContainerStatuses = nil
	for _, ctr := range cur.Spec.Containers {
		cur.Status.ContainerStatuses = append(cur.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := n.c.admin.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return err
	}
	n.mu.Lock()
	pv.running = true
	n.mu.Unlock()
	n.logf("pod %s/%s: running", p.Namespace, p.Name)
	return nil
}

// capability is the CSI volume capability kubelet derives from the PV.
func capability(pv *corev1.PersistentVolume) *csi.VolumeCapability {
	mode := csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER // RWO on a driver with SINGLE_NODE_MULTI_WRITER
	for _, m := range pv.Spec.AccessModes {
		switch m {
		case corev1.ReadWriteMany:
			mode = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
		case corev1.ReadOnlyMany:
			mode = csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY
		case corev1.ReadWriteOncePod:
			mode = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		}
	}
	vc := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
	if pv.Spec.VolumeMode != nil && *pv.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		vc.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		vc.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{
			FsType: pv.Spec.CSI.FSType, MountFlags: pv.Spec.MountOptions}}
	}
	return vc
}

func (n *node) stagingPath(v *podVol) string {
	if v.block {
		return filepath.Join(n.root, "plugins/kubernetes.io/csi/volumeDevices/staging", v.pv.Name)
	}
	return filepath.Join(n.root, "plugins/kubernetes.io/csi", driverName, fmt.Sprintf("%x", sha256.Sum256([]byte(v.handle))), "globalmount")
}

// retryCSI retries a node RPC as kubelet does (with a short backoff) until it
// succeeds or a minute passes.
func retryCSI(ctx context.Context, what string, call func(context.Context) error) error {
	return waitFor(ctx, 2*time.Minute, 500*time.Millisecond, what, func(ctx context.Context) (bool, error) {
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		err := call(cctx)
		return err == nil, err
	})
}

func (n *node) stage(ctx context.Context, p *corev1.Pod, v *podVol, pc map[string]string) error {
	n.mu.Lock()
	sv := n.staged[v.handle]
	if sv != nil {
		sv.users[p.UID] = true
		n.mu.Unlock()
		return nil
	}
	n.mu.Unlock()
	staging := n.stagingPath(v)
	if err := os.MkdirAll(filepath.Dir(staging), 0o750); err != nil {
		return err
	}
	err := retryCSI(ctx, "NodeStageVolume "+v.handle+" on "+n.name, func(ctx context.Context) error {
		stageMu.Lock()
		defer stageMu.Unlock()
		before := loopDevices(n.c.dir)
		_, err := n.csi.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
			VolumeId: v.handle, PublishContext: pc, StagingTargetPath: staging,
			VolumeCapability: capability(v.pv), VolumeContext: v.pv.Spec.CSI.VolumeAttributes,
		})
		for dev, file := range loopDevices(n.c.dir) {
			if _, ok := before[dev]; !ok {
				n.mu.Lock()
				n.devices[dev] = file
				n.mu.Unlock()
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.staged[v.handle] = &stagedVol{handle: v.handle, stagingPath: staging, users: map[types.UID]bool{p.UID: true}}
	n.mu.Unlock()
	return nil
}

func (n *node) publish(ctx context.Context, p *corev1.Pod, v *podVol, pc map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(v.targetPath), 0o750); err != nil {
		return err
	}
	return retryCSI(ctx, "NodePublishVolume "+v.handle+" on "+n.name, func(ctx context.Context) error {
		_, err := n.csi.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: v.handle, PublishContext: pc, StagingTargetPath: n.stagingPath(v), TargetPath: v.targetPath,
			VolumeCapability: capability(v.pv), VolumeContext: v.pv.Spec.CSI.VolumeAttributes,
		})
		return err
	})
}

// teardown unpublishes a pod's volumes, unstages those no other pod on the
// node uses, drops them from volumesInUse and, if the Pod object still
// exists (a graceful deletion), deletes it for good, as kubelet does once
// the containers stopped and the volumes are unmounted.
func (n *node) teardown(uid types.UID, p *corev1.Pod) error {
	ctx := n.ctx
	n.mu.Lock()
	pv := n.pods[uid]
	n.mu.Unlock()
	if pv != nil {
		for _, v := range pv.vols {
			if v.published {
				if err := retryCSI(ctx, "NodeUnpublishVolume "+v.handle, func(ctx context.Context) error {
					_, err := n.csi.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.handle, TargetPath: v.targetPath})
					return err
				}); err != nil {
					return err
				}
				v.published = false
			}
			n.mu.Lock()
			sv := n.staged[v.handle]
			last := false
			if sv != nil {
				delete(sv.users, uid)
				last = len(sv.users) == 0
			}
			n.mu.Unlock()
			if sv != nil && last {
				if err := retryCSI(ctx, "NodeUnstageVolume "+v.handle, func(ctx context.Context) error {
					_, err := n.csi.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.handle, StagingTargetPath: sv.stagingPath})
					return err
				}); err != nil {
					return err
				}
				n.mu.Lock()
				delete(n.staged, v.handle)
				for dev, h := range n.devices {
					if strings.Contains(h, v.handle) {
						delete(n.devices, dev)
					}
				}
				n.mu.Unlock()
			}
		}
		// Still in use by another pod on this node?
		n.mu.Lock()
		delete(n.pods, uid)
		still := map[string]bool{}
		for _, o := range n.pods {
			for _, v := range o.vols {
				still[v.unique] = true
			}
		}
		for _, v := range pv.vols {
			if !still[v.unique] {
				delete(n.inUse, v.unique)
			}
		}
		n.mu.Unlock()
		if err := n.postStatus(ctx); err != nil {
			return err
		}
	}
	n.logf("pod %s: volumes torn down", uid)
	if p != nil {
		err := n.c.admin.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
	}
	return nil
}

// targetPath is where pod's PV is published on this node (a directory for a
// filesystem, a device file for a block volume).
func (n *node) targetPath(p *corev1.Pod, pvName string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pv := n.pods[p.UID]; pv != nil {
		for _, v := range pv.vols {
			if v.pv.Name == pvName {
				return v.targetPath
			}
		}
	}
	return ""
}

// fail is the node failing: the kubelet stops (no Lease renewals,
// no status, no volume work), the node plugin dies, and the machine "powers
// off": its mounts vanish and its loop devices are detached, so nothing of it
// writes again. Data not synced before is lost, as on real power loss.
func (n *node) fail() {
	n.cancel()
	n.plugin.Stop(0)
	n.wg.Wait()
	n.powerOff()
}

// powerOff unmounts everything under the node's root and detaches the loop
// devices this node attached.
func (n *node) powerOff() {
	unmountUnder(filepath.Dir(n.root))
	n.mu.Lock()
	devs := make([]string, 0, len(n.devices))
	for d := range n.devices {
		devs = append(devs, d)
	}
	n.devices = map[string]string{}
	n.mu.Unlock()
	for _, d := range devs {
		_ = exec.Command("losetup", "-d", d).Run()
	}
}

// stop ends a healthy node at the end of the suite.
func (n *node) stop() {
	if n.cancel != nil {
		n.cancel()
	}
	n.wg.Wait()
	n.plugin.Stop(3 * time.Second)
	if n.conn != nil {
		n.conn.Close()
	}
	n.powerOff()
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, mp := range points {
		_ = unix.Unmount(mp, unix.MNT_DETACH)
	}
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

// loopDevices maps /dev/loopN to its backing file for every loop device whose
// backing file lies under dir.
func loopDevices(dir string) map[string]string {
	out := map[string]string{}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = dir
	}
	matches, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		file := strings.TrimSpace(string(b))
		if strings.HasPrefix(file, real+"/") || strings.HasPrefix(file, dir+"/") {
			dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(m)))
			out[dev] = file
		}
	}
	return out
}
