//go:build e2e || e2ekubelet

package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

const (
	driverName = "rds.csi.mikrotik.com"
	// csiNamespace is where the controller replicas "run": their Leases and
	// the sidecars' Leases live there.
	csiNamespace = "rds-csi"
	// nodeMonitorGracePeriod is how long a node may miss heartbeats before the
	// node-lifecycle controller marks it NotReady (Kubernetes' default is 50s).
	nodeMonitorGracePeriod = 8 * time.Second
	// driverGracePeriod is the attachment grace period of the e2e StorageClass.
	driverGracePeriod = 5 * time.Second
	// controllerLease is the rds-csi controller's leader-election lease.
	// Short for a test, with room for a loaded 2-core machine.
	controllerLease = 6 * time.Second
	// sidecarLease is the sidecars' leader-election lease.
	sidecarLease = 8 * time.Second
)

// binaries are the external programs, from hack/e2e/tools.sh (E2E_*) and the
// repository (rds-csi, rds-emulator, built by TestMain).
type binaries struct {
	etcd, apiserver, controllerManager, kubectl string
	provisioner, attacher, resizer, snapshotter string
	snapshotController, snapshotCRDs            string
	rdsCSI, emulator                            string
	versions                                    string
}

// cluster is one control plane with the driver deployed into it.
type cluster struct {
	dir     string
	bins    binaries
	procs   procs
	pki     *pki
	server  string // https://127.0.0.1:PORT
	admin   kubernetes.Interface
	restCfg *rest.Config

	adminKubeconfig string

	etcd, apiserver, kcm *proc

	// The emulator.
	emu           *proc
	emuState      string
	emuAddr       string
	emuControl    string
	emuKey        string
	emuFingerprnt string

	// Controller replicas, each a "pod" of rds-csi and its sidecars.
	replicas []*replica

	// vaLister is a cache of every VolumeAttachment, for the kubelets.
	vaLister      storagelisters.VolumeAttachmentLister
	stopInformers chan struct{}
}

// replica is one controller Pod: rds-csi --mode=controller plus its sidecars,
// all talking over the replica's own CSI socket.
type replica struct {
	name   string
	socket string
	driver *proc
	cars   []*proc
}

func (r *replica) procs() []*proc { return append([]*proc{r.driver}, r.cars...) }

// kill ends every container of the replica at once (SIGKILL), as when its Pod's
// node dies; all of them are restarted by their supervisors, as kubelet would.
func (r *replica) kill() {
	for _, p := range r.procs() {
		p.Kill()
	}
}

// down kills every container of the replica and keeps it down, as when its
// node dies; up brings it back (the rescheduled Pod).
func (r *replica) down() {
	for _, p := range r.procs() {
		p.Stop(0)
	}
}

func (r *replica) up() error {
	for _, p := range r.procs() {
		if err := p.Start(); err != nil {
			return err
		}
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// toolBinaries reads E2E_* from the environment; when they are missing (a bare
// `go test -tags e2e ./e2e/`) it runs hack/e2e/tools.sh, which builds or finds
// them in the cache.
func toolBinaries(repo string) (binaries, error) {
	if os.Getenv("E2E_KUBE_APISERVER") == "" {
		cmd := exec.Command("bash", filepath.Join(repo, "hack/e2e/tools.sh"))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			return binaries{}, fmt.Errorf("hack/e2e/tools.sh: %w", err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "E2E_") {
				os.Setenv(k, v)
			}
		}
	}
	b := binaries{
		etcd:               envOr("E2E_ETCD", "etcd"),
		apiserver:          os.Getenv("E2E_KUBE_APISERVER"),
		controllerManager:  os.Getenv("E2E_KUBE_CONTROLLER_MANAGER"),
		kubectl:            os.Getenv("E2E_KUBECTL"),
		provisioner:        os.Getenv("E2E_CSI_PROVISIONER"),
		attacher:           os.Getenv("E2E_CSI_ATTACHER"),
		resizer:            os.Getenv("E2E_CSI_RESIZER"),
		snapshotter:        os.Getenv("E2E_CSI_SNAPSHOTTER"),
		snapshotCRDs:       os.Getenv("E2E_SNAPSHOT_CRDS"),
		snapshotController: os.Getenv("E2E_SNAPSHOT_CONTROLLER"),
		versions:           os.Getenv("E2E_VERSIONS"),
	}
	for name, p := range map[string]string{"E2E_KUBE_APISERVER": b.apiserver, "E2E_KUBE_CONTROLLER_MANAGER": b.controllerManager,
		"E2E_CSI_PROVISIONER": b.provisioner, "E2E_CSI_ATTACHER": b.attacher} {
		if p == "" {
			return b, fmt.Errorf("%s is not set: run `make e2e` (hack/e2e/tools.sh prints these variables)", name)
		}
		if _, err := os.Stat(p); err != nil {
			return b, fmt.Errorf("%s: %w", name, err)
		}
	}
	if p, err := exec.LookPath(b.etcd); err != nil {
		return b, fmt.Errorf("etcd not found (Debian: apt-get install etcd-server): %w", err)
	} else {
		b.etcd = p
	}
	return b, nil
}

// startCluster brings up etcd, kube-apiserver, kube-controller-manager, the
// emulator and two controller replicas with their sidecars. Node plugins and
// nodes are per test (see kubelet_test.go).
func startCluster(ctx context.Context, dir string, bins binaries) (*cluster, error) {
	c := &cluster{dir: dir, bins: bins}
	logs := filepath.Join(dir, "logs")
	for _, d := range []string{logs, filepath.Join(dir, "pki")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return c, err
		}
	}
	var err error
	if c.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		return c, err
	}

	// etcd, on tmpfs when there is one: the control plane's speed is fsync-bound.
	etcdData := filepath.Join(dir, "etcd")
	// etcd preallocates 64 MiB WAL segments: only a roomy tmpfs will do.
	var shm unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &shm); err == nil && int64(shm.Bavail)*shm.Bsize >= 1<<30 {
		d := filepath.Join("/dev/shm", filepath.Base(dir)+"-etcd")
		if err := os.MkdirAll(d, 0o700); err == nil {
			etcdData = d
		}
	}
	clientPort, err := freePort()
	if err != nil {
		return c, err
	}
	peerPort, err := freePort()
	if err != nil {
		return c, err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	c.etcd = c.procs.add(newProc(logs, "etcd", bins.etcd,
		"--name=e2e", "--data-dir="+etcdData,
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--log-level=warn"))
	if err := c.etcd.Start(); err != nil {
		return c, err
	}
	if err := waitFor(ctx, 30*time.Second, 100*time.Millisecond, "etcd health", func(ctx context.Context) (bool, error) {
		return httpOK(ctx, nil, etcdURL+"/health")
	}); err != nil {
		return c, err
	}

	// kube-apiserver.
	apiPort, err := freePort()
	if err != nil {
		return c, err
	}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	if _, _, err := c.pki.issue("apiserver", "kube-apiserver", nil, true); err != nil {
		return c, err
	}
	if err := c.pki.serviceAccountKey(); err != nil {
		return c, err
	}
	c.apiserver = c.procs.add(newProc(logs, "kube-apiserver", bins.apiserver,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--etcd-servers="+etcdURL,
		"--tls-cert-file="+c.pki.path("apiserver.crt"), "--tls-private-key-file="+c.pki.path("apiserver.key"),
		"--client-ca-file="+c.pki.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.path("sa.key"),
		"--service-account-signing-key-file="+c.pki.path("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=Node,RBAC",
		// The defaults plus NodeRestriction; no kubelet runs, so nothing
		// that needs one (there is none in the default set).
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		// No Endpoints for the "kubernetes" Service: it would need a
		// non-loopback address.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
		"--max-requests-inflight=1000", "--max-mutating-requests-inflight=500",
		"--v=1"))
	if err := c.apiserver.Start(); err != nil {
		return c, err
	}
	if c.adminKubeconfig, err = c.pki.kubeconfig("admin", "e2e-admin", []string{"system:masters"}, c.server); err != nil {
		return c, err
	}
	if c.restCfg, err = clientcmd.BuildConfigFromFlags("", c.adminKubeconfig); err != nil {
		return c, err
	}
	c.restCfg.QPS, c.restCfg.Burst = 500, 1000
	c.restCfg.UserAgent = "rds-csi-e2e"
	if c.admin, err = kubernetes.NewForConfig(c.restCfg); err != nil {
		return c, err
	}
	httpc, err := c.httpClient()
	if err != nil {
		return c, err
	}
	if err := waitFor(ctx, 90*time.Second, 200*time.Millisecond, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		if !c.apiserver.Running() {
			return false, permanent(errors.New("kube-apiserver exited"))
		}
		return httpOK(ctx, httpc, c.server+"/readyz")
	}); err != nil {
		return c, err
	}

	// kube-controller-manager: the controllers a kubelet-less cluster needs for
	// volumes and node failure.
	kcmConfig, err := c.pki.kubeconfig("kube-controller-manager", "system:kube-controller-manager", nil, c.server)
	if err != nil {
		return c, err
	}
	c.kcm = c.procs.add(newProc(logs, "kube-controller-manager", bins.controllerManager,
		"--kubeconfig="+kcmConfig,
		"--authentication-kubeconfig="+kcmConfig, "--authorization-kubeconfig="+kcmConfig,
		"--bind-address=127.0.0.1", "--secure-port=0",
		"--leader-elect=false",
		// Each controller under its own ServiceAccount and bootstrap role, as
		// kubeadm and kind run it.
		"--use-service-account-credentials=true",
		"--controllers=persistentvolume-attach-detach-controller,node-lifecycle-controller,taint-eviction-controller,"+
			"pod-garbage-collector-controller,persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,"+
			"persistentvolume-protection-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller",
		"--node-monitor-period=1s",
		"--node-monitor-grace-period="+nodeMonitorGracePeriod.String(),
		"--node-startup-grace-period=30s",
		"--kube-api-qps=300", "--kube-api-burst=600",
		"--concurrent-gc-syncs=5",
		"--v=2"))
	c.kcm.supervised = true
	if err := c.kcm.Start(); err != nil {
		return c, err
	}

	// Namespace for the driver's Pods and Leases, and the CSIDriver object.
	if _, err := c.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: csiNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return c, err
	}
	if err := waitFor(ctx, 60*time.Second, 200*time.Millisecond, "kube-controller-manager to create the default ServiceAccount", func(ctx context.Context) (bool, error) {
		if !c.kcm.Running() && c.kcm.lastExit != nil && !c.kcm.supervised {
			return false, errors.New("kube-controller-manager exited")
		}
		_, err := c.admin.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		return c, err
	}
	if _, err := c.admin.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: driverName},
		Spec: storagev1.CSIDriverSpec{
			// As deploy/ sets it, so the manifests' server-side apply co-owns
			// every field instead of conflicting.
			AttachRequired:       ptr.To(true),
			PodInfoOnMount:       ptr.To(false),
			SELinuxMount:         ptr.To(true),
			VolumeLifecycleModes: []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent},
		},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return c, err
	}
	if err := c.installSnapshotCRDs(ctx); err != nil {
		return c, err
	}
	c.stopInformers = make(chan struct{})
	f := informers.NewSharedInformerFactory(c.admin, 0)
	c.vaLister = f.Storage().V1().VolumeAttachments().Lister()
	f.Start(c.stopInformers)
	f.WaitForCacheSync(ctx.Done())

	// The snapshot-controller, as a cluster with VolumeSnapshots runs it
	// (one instance here).
	if c.bins.snapshotter != "" && c.bins.snapshotController != "" {
		if _, err := os.Stat(c.bins.snapshotController); err == nil {
			kc, err := c.pki.kubeconfig("snapshot-controller", "e2e:snapshot-controller", []string{"system:masters"}, c.server)
			if err != nil {
				return c, err
			}
			p := c.procs.add(newProc(logs, "snapshot-controller", c.bins.snapshotController,
				"--kubeconfig="+kc, "--leader-election=false", "--v=4",
				"--retry-interval-start=500ms", "--retry-interval-max=5s"))
			p.supervised = true
			if err := p.Start(); err != nil {
				return c, err
			}
		}
	}

	// The emulator.
	if err := c.startEmulator(ctx); err != nil {
		return c, err
	}
	// Two controller replicas.
	for i := 0; i < 2; i++ {
		r, err := c.newReplica(i)
		if err != nil {
			return c, err
		}
		c.replicas = append(c.replicas, r)
		for _, p := range r.procs() {
			if err := p.Start(); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// httpClient trusts the control plane's CA and presents the admin certificate.
func (c *cluster) httpClient() (*http.Client, error) {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	cert, err := tls.LoadX509KeyPair(c.pki.path("admin.crt"), c.pki.path("admin.key"))
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}, nil
}

var (
	fingerprintRE = regexp.MustCompile(`host key fingerprint: (\S+)`)
	listeningRE   = regexp.MustCompile(`listening on (\S+)`)
)

// startEmulator writes an SSH key pair for the driver and starts the emulator
// on a fixed loopback port (so a restart after a crash comes back at the same
// address).
func (c *cluster) startEmulator(ctx context.Context) error {
	c.emuState = filepath.Join(c.dir, "rds-state")
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	block, err := gossh.MarshalPrivateKey(priv, "rds-csi-e2e")
	if err != nil {
		return err
	}
	c.emuKey = filepath.Join(c.dir, "pki", "rds_id_ed25519")
	if err := os.WriteFile(c.emuKey, pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return err
	}
	authorized := filepath.Join(c.dir, "pki", "rds_authorized_keys")
	if err := os.WriteFile(authorized, gossh.MarshalAuthorizedKey(sshPub), 0o600); err != nil {
		return err
	}
	sshPort, err := freePort()
	if err != nil {
		return err
	}
	ctlPort, err := freePort()
	if err != nil {
		return err
	}
	c.emuAddr = fmt.Sprintf("127.0.0.1:%d", sshPort)
	c.emuControl = fmt.Sprintf("http://127.0.0.1:%d", ctlPort)
	c.emu = c.procs.add(newProc(filepath.Join(c.dir, "logs"), "rds-emulator", c.bins.emulator,
		"--listen="+c.emuAddr, "--state-dir="+c.emuState, "--authorized-keys="+authorized,
		"--control-listen="+strings.TrimPrefix(c.emuControl, "http://"), "--pool-size=8T"))
	return c.restartEmulator(ctx)
}

// restartEmulator starts the emulator (again) and waits until it listens.
func (c *cluster) restartEmulator(ctx context.Context) error {
	if err := c.emu.Start(); err != nil {
		return err
	}
	starts := c.emu.starts
	return waitFor(ctx, 30*time.Second, 50*time.Millisecond, "the emulator to listen", func(context.Context) (bool, error) {
		b, err := os.ReadFile(c.emu.logPath)
		if err != nil {
			return false, err
		}
		// Only this start's output counts.
		marker := fmt.Sprintf("start #%d:", starts)
		i := strings.LastIndex(string(b), marker)
		if i < 0 {
			return false, nil
		}
		out := string(b[i:])
		if !c.emu.Running() {
			return false, permanent(fmt.Errorf("emulator exited: %s", c.emu.tail(5)))
		}
		m := listeningRE.FindStringSubmatch(out)
		f := fingerprintRE.FindStringSubmatch(out)
		if m == nil || f == nil {
			return false, nil
		}
		if m[1] != c.emuAddr {
			return false, fmt.Errorf("emulator listens on %s, want %s", m[1], c.emuAddr)
		}
		c.emuFingerprnt = f[1]
		return true, nil
	})
}

// newReplica defines controller replica i: rds-csi and the sidecars, each with
// its own kubeconfig identity, on the replica's socket.
func (c *cluster) newReplica(i int) (*replica, error) {
	name := fmt.Sprintf("rds-csi-controller-%d", i)
	dir := filepath.Join(c.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logs := filepath.Join(c.dir, "logs")
	r := &replica{name: name, socket: filepath.Join(dir, "csi.sock")}
	kc := func(container string) (string, error) {
		return c.pki.kubeconfig(name+"-"+container, "e2e:"+name+":"+container, []string{"system:masters"}, c.server)
	}
	driverKC, err := kc("rds-csi")
	if err != nil {
		return nil, err
	}
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	r.driver = c.procs.add(newProc(logs, name+"-rds-csi", c.bins.rdsCSI,
		"--mode=controller", "--endpoint=unix://"+r.socket,
		"--rds-address="+c.emuAddr, "--rds-user=admin", "--rds-key-file="+c.emuKey,
		"--rds-host-key-fingerprint="+c.emuFingerprnt,
		"--base-path=/storage-pool/k8s",
		"--kubeconfig="+driverKC,
		"--leader-election=true", "--leader-election-namespace="+csiNamespace,
		"--leader-election-lease-duration="+controllerLease.String(),
		"--leader-election-renew-deadline=4s", "--leader-election-retry-period=1s",
		"--reconcile-interval=10s",
		"--grace-period="+driverGracePeriod.String(),
		"--rds-connect-timeout=5s",
		"--metrics-address=127.0.0.1:"+strconv.Itoa(metricsPort),
		"--v=4"))
	r.driver.env = []string{"POD_NAME=" + name, "POD_NAMESPACE=" + csiNamespace}
	r.driver.supervised = true

	common := func(container string) ([]string, error) {
		k, err := kc(container)
		if err != nil {
			return nil, err
		}
		return []string{"--csi-address=" + r.socket, "--kubeconfig=" + k, "--v=4",
			"--leader-election", "--leader-election-namespace=" + csiNamespace,
			"--leader-election-lease-duration=" + sidecarLease.String(),
			"--leader-election-renew-deadline=5s", "--leader-election-retry-period=1s",
			"--kube-api-qps=200", "--kube-api-burst=400",
			"--timeout=30s"}, nil
	}
	type car struct {
		name, bin string
		extra     []string
	}
	cars := []car{
		{"csi-provisioner", c.bins.provisioner, []string{"--retry-interval-start=500ms", "--retry-interval-max=5s",
			"--extra-create-metadata", "--default-fstype=ext4", "--worker-threads=50"}},
		// The attacher at its default retry (1s doubling to 5m), as users run
		// it: recovery after an outage must not depend on a short cap.
		{"csi-attacher", c.bins.attacher, []string{"--worker-threads=50", "--reconcile-sync=5s"}},
	}
	if c.bins.resizer != "" {
		cars = append(cars, car{"csi-resizer", c.bins.resizer, []string{"--retry-interval-start=500ms", "--retry-interval-max=5s",
			"--handle-volume-inuse-error=false"}})
	}
	if c.bins.snapshotter != "" && c.bins.snapshotCRDs != "" {
		cars = append(cars, car{"csi-snapshotter", c.bins.snapshotter, []string{"--retry-interval-start=500ms", "--retry-interval-max=5s"}})
	}
	for _, s := range cars {
		args, err := common(s.name)
		if err != nil {
			return nil, err
		}
		p := c.procs.add(newProc(logs, name+"-"+s.name, s.bin, append(args, s.extra...)...))
		p.env = []string{"POD_NAME=" + name, "POD_NAMESPACE=" + csiNamespace, "NODE_NAME=controller-host"}
		p.supervised = true
		r.cars = append(r.cars, p)
	}
	return r, nil
}

// installSnapshotCRDs applies the external-snapshotter CRDs shipped with the
// snapshotter's module source, so csi-snapshotter (and the kind overlay's
// VolumeSnapshotClass, if any) have their kinds.
func (c *cluster) installSnapshotCRDs(ctx context.Context) error {
	if c.bins.snapshotCRDs == "" || c.bins.kubectl == "" {
		c.bins.snapshotter = ""
		return nil
	}
	files, _ := filepath.Glob(filepath.Join(c.bins.snapshotCRDs, "*.yaml"))
	if len(files) == 0 {
		c.bins.snapshotter = ""
		return nil
	}
	args := []string{"--kubeconfig=" + c.adminKubeconfig, "apply", "--server-side"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	out, err := exec.CommandContext(ctx, c.bins.kubectl, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("install snapshot CRDs: %v: %s", err, out)
	}
	return waitFor(ctx, 30*time.Second, 200*time.Millisecond, "snapshot CRDs established", func(ctx context.Context) (bool, error) {
		out, err := exec.CommandContext(ctx, c.bins.kubectl, "--kubeconfig="+c.adminKubeconfig,
			"wait", "--for=condition=Established", "--timeout=5s",
			"crd/volumesnapshotclasses.snapshot.storage.k8s.io", "crd/volumesnapshotcontents.snapshot.storage.k8s.io",
			"crd/volumesnapshots.snapshot.storage.k8s.io").CombinedOutput()
		if err != nil {
			return false, fmt.Errorf("%v: %s", err, out)
		}
		return true, nil
	})
}

// leader returns the holder of the rds-csi controller's Lease ("" if none).
func (c *cluster) leader(ctx context.Context) (string, error) {
	l, err := c.admin.CoordinationV1().Leases(csiNamespace).Get(ctx, "rds-csi-controller", metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return ptr.Deref(l.Spec.HolderIdentity, ""), nil
}

// replicaNamed returns the replica whose POD_NAME is name.
func (c *cluster) replicaNamed(name string) *replica {
	for _, r := range c.replicas {
		if r.name == name {
			return r
		}
	}
	return nil
}

// stop ends every process: the driver first, the control plane last.
func (c *cluster) stop() {
	if c.stopInformers != nil {
		close(c.stopInformers)
	}
	for _, r := range c.replicas {
		for _, p := range r.procs() {
			p.Stop(3 * time.Second)
		}
	}
	if c.emu != nil {
		c.emu.Stop(3 * time.Second)
	}
	for _, p := range []*proc{c.kcm, c.apiserver, c.etcd} {
		if p != nil {
			p.Stop(5 * time.Second)
		}
	}
	// etcd's data may live on tmpfs, outside dir.
	if c.etcd != nil {
		for _, a := range c.etcd.args {
			if d, ok := strings.CutPrefix(a, "--data-dir="); ok && strings.HasPrefix(d, "/dev/shm/") {
				os.RemoveAll(d)
			}
		}
	}
}

// routeros runs one RouterOS command on the emulator over SSH (512 columns, so
// nothing wraps) and returns what it printed.
func (c *cluster) routeros(cmd string) (string, error) {
	keyPEM, err := os.ReadFile(c.emuKey)
	if err != nil {
		return "", err
	}
	signer, err := gossh.ParsePrivateKey(keyPEM)
	if err != nil {
		return "", err
	}
	cfg := &gossh.ClientConfig{
		User: "admin+ct512w",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if fp := gossh.FingerprintSHA256(key); fp != c.emuFingerprnt {
				return fmt.Errorf("emulator host key %s, want %s", fp, c.emuFingerprnt)
			}
			return nil
		},
		Timeout: 10 * time.Second,
	}
	cl, err := gossh.Dial("tcp", c.emuAddr, cfg)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	s, err := cl.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// routeros is cluster.routeros failing the test on a transport error (a
// RouterOS error is text, and is returned).
func (e *testEnv) routeros(cmd string) string {
	e.t.Helper()
	out, err := e.c.routeros(cmd)
	var exit *gossh.ExitError
	if err != nil && !errors.As(err, &exit) {
		e.t.Fatalf("RouterOS %q: %v", cmd, err)
	}
	return out
}
