// Command rds-csi is the rds-csi CSI driver: the controller, the node plugin, or
// both in one process (--mode=all, as csi-sanity and small test setups use).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	gossh "golang.org/x/crypto/ssh"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/driver"
	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/controlplane"
	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/dataplane/loop"
	"github.com/rds-csi/rds-csi/driver/dataplane/nvme"
	"github.com/rds-csi/rds-csi/driver/exportacl"
	"github.com/rds-csi/rds-csi/driver/rds"
	"github.com/rds-csi/rds-csi/driver/reconciler"
)

type config struct {
	mode, endpoint, nodeID                             string
	rdsAddress, rdsUser, rdsKeyFile, rdsKnownHosts     string
	rdsFingerprint                                     string
	metricsAddress                                     string
	dataPlane, loopBackingDir                          string
	basePath, allowedBasePaths, nvmeAddress, nqnPrefix string
	standaloneNodes, nodeStateDir, kubeletDir          string
	kubeconfig, leaseNamespace, leaseName              string
	leaderElection, restrictHosts                      bool
	leaseDuration, renewDeadline, retryPeriod          time.Duration
	reconcileInterval, notReadyTimeout                 time.Duration
	maxVolumesPerNode                                  int64
	nvmePort                                           int
	gracePeriod, migrationWindow, rdsConnectTimeout    time.Duration
	operationTimeout, rdsCommandTimeout                time.Duration
}

func main() {
	klog.InitFlags(nil)
	var c config
	flag.StringVar(&c.mode, "mode", "all", "which services to run: controller, node or all")
	flag.StringVar(&c.endpoint, "endpoint", "unix:///csi/csi.sock", "CSI endpoint")
	flag.StringVar(&c.nodeID, "node-id", "", "this node's ID (required for node and all modes)")
	flag.StringVar(&c.rdsAddress, "rds-address", "", "RDS SSH address host:port")
	flag.StringVar(&c.rdsUser, "rds-user", "admin", "RDS SSH user")
	flag.StringVar(&c.rdsKeyFile, "rds-key-file", "", "private key for RDS SSH (keys only; no passwords)")
	flag.StringVar(&c.rdsKnownHosts, "rds-known-hosts", "", "file whose first key line pins RDS's SSH host key (known_hosts format)")
	flag.StringVar(&c.rdsFingerprint, "rds-host-key-fingerprint", "", "pin RDS's SSH host key by SHA256 fingerprint instead of --rds-known-hosts")
	flag.DurationVar(&c.rdsConnectTimeout, "rds-connect-timeout", 10*time.Second, "how long start-up waits for the first RDS connection before serving anyway")
	flag.DurationVar(&c.operationTimeout, "operation-timeout", driver.DefaultOperationTimeout, "controller: bound on one CSI call's backend work; keep the sidecars' --timeout above it")
	flag.DurationVar(&c.rdsCommandTimeout, "rds-command-timeout", rds.DefaultCommandTimeout, "bound on one RouterOS command; at most --operation-timeout")
	flag.StringVar(&c.metricsAddress, "metrics-address", "", "address serving /metrics, /healthz and /readyz (off when empty)")
	flag.StringVar(&c.dataPlane, "data-plane", "nvme", "node data plane: nvme (hardware) or loop (emulator's backing files)")
	flag.StringVar(&c.loopBackingDir, "loop-backing-dir", "", "loop data plane: the emulator's state directory as this node sees it")
	flag.StringVar(&c.basePath, "base-path", "/storage-pool/k8s", "default directory on RDS for volume files")
	flag.StringVar(&c.allowedBasePaths, "allowed-base-paths", "", "comma-separated extra base paths StorageClasses may choose")
	flag.StringVar(&c.nvmeAddress, "nvme-address", "", "default NVMe/TCP address nodes connect to (default: the host of --rds-address)")
	flag.IntVar(&c.nvmePort, "nvme-port", 4420, "default NVMe/TCP port")
	flag.StringVar(&c.nqnPrefix, "nqn-prefix", "nqn.2000-02.com.mikrotik:", "prefix of each volume's NQN")
	flag.DurationVar(&c.gracePeriod, "grace-period", driver.DefaultGracePeriod, "default attachment grace period before a gone node's claim lapses")
	flag.DurationVar(&c.migrationWindow, "migration-window", attachment.DefaultMigrationWindow, "how long two nodes may hold a live-migrating (RWX block) volume before it is reported overdue")
	flag.StringVar(&c.standaloneNodes, "standalone-nodes", "", "without Kubernetes: comma-separated node IDs that exist besides --node-id")
	flag.StringVar(&c.nodeStateDir, "node-state-dir", "/var/lib/kubelet/plugins/"+driver.DefaultName+"/volumes", "node: where staged volumes are remembered across plugin restarts")
	flag.StringVar(&c.kubeletDir, "kubelet-dir", driver.DefaultKubeletDir, "node: the kubelet's directory; no staging or target path outside it is ever mounted, unmounted or removed")
	flag.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster config when running in a Pod, else standalone (no Kubernetes)")
	flag.BoolVar(&c.leaderElection, "leader-election", true, "controller: elect one active replica through a Lease (in a cluster)")
	flag.StringVar(&c.leaseNamespace, "leader-election-namespace", "", "namespace of the Lease (default: the Pod's namespace)")
	flag.StringVar(&c.leaseName, "leader-election-lease-name", "rds-csi-controller", "name of the Lease")
	flag.DurationVar(&c.leaseDuration, "leader-election-lease-duration", 15*time.Second, "how long a crashed leader keeps the Lease; bounds failover")
	flag.DurationVar(&c.renewDeadline, "leader-election-renew-deadline", 10*time.Second, "how long the leader retries renewing before giving up")
	flag.DurationVar(&c.retryPeriod, "leader-election-retry-period", 2*time.Second, "how often candidates try for the Lease")
	flag.DurationVar(&c.reconcileInterval, "reconcile-interval", 5*time.Minute, "controller: periodic attachment reconcile")
	flag.DurationVar(&c.notReadyTimeout, "not-ready-timeout", 0, "controller: opt in to treating a node NotReady this long as gone (0: never)")
	flag.Int64Var(&c.maxVolumesPerNode, "max-volumes-per-node", 0, "volumes one node may hold: reported to Kubernetes by the node plugin, enforced by the controller (0: no limit; neither NVMe/TCP nor loop devices have a fixed kernel cap, so set it to what your nodes and RDS can carry)")
	flag.BoolVar(&c.restrictHosts, "restrict-hosts", false, "storage-side access control: each export allows only the host NQNs of the nodes holding a claim on it, and nodes connect with a host NQN derived from --node-id; a node with --loop-backing-dir reads the export's allow-list from the emulator over SSH (the --rds-* flags) and refuses a host it does not allow (set it on controller and nodes alike; unvalidated on hardware, see deploy/README.md)")
	flag.Parse()
	if err := run(c); err != nil {
		klog.ErrorS(err, "rds-csi failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(c config) error {
	switch c.mode {
	case "controller", "node", "all":
	default:
		return fmt.Errorf("--mode %q: want controller, node or all", c.mode)
	}
	if err := checkTimeouts(c); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	svc := driver.Services{Identity: driver.NodeIdentity{Name: driver.DefaultName}}
	ready := func() error { return nil }
	var cp *controlplane.ControlPlane
	if c.mode != "node" {
		var err error
		if cp, err = controller(c, reg); err != nil {
			return err
		}
		defer cp.Close()
		if err := cp.Start(ctx); err != nil {
			klog.ErrorS(err, "RDS not reachable at start-up; serving and retrying in the background", "address", c.rdsAddress)
		}
		svc.Identity, svc.Controller = cp.Driver, cp.Driver
		ready = cp.Ready
	}
	if c.mode != "controller" {
		var exports rds.Transport
		if cp != nil {
			exports = cp.RDS
		}
		ns, err := nodeServer(ctx, c, exports, reg)
		if err != nil {
			return err
		}
		svc.Node = ns
	}
	// Liveness and readiness answer before leadership, so a standby is alive.
	if c.metricsAddress != "" {
		if err := serveMetrics(c.metricsAddress, reg, ready); err != nil {
			return err
		}
	}
	if cp == nil {
		return serve(ctx, c, svc, reg, false)
	}
	// The CSI socket opens only on the leader, after the attachment state is
	// rebuilt. A standby's sidecars keep waiting for the socket, so only the
	// leader's sidecars ever call a driver, and a new leader starts from the
	// state rebuilt from VolumeAttachments, as on start-up.
	return cp.Run(ctx, func(lctx context.Context) error { return serve(lctx, c, svc, reg, cp.Reconciler != nil) })
}

// serve serves CSI until ctx ends.
func serve(ctx context.Context, c config, svc driver.Services, reg *prometheus.Registry, kubernetes bool) error {
	srv, err := driver.Listen(c.endpoint, svc, reg, nil)
	if err != nil {
		return err
	}
	klog.InfoS("rds-csi serving", "driver", driver.DefaultName, "version", driver.Version, "mode", c.mode,
		"endpoint", c.endpoint, "rds", c.rdsAddress, "dataPlane", c.dataPlane, "kubernetes", kubernetes)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		klog.InfoS("Shutting down the CSI server")
		srv.Stop()
		return nil
	}
}

// controller assembles the controller from the flags: the SSH connector to
// RDS, the Kubernetes client (none: standalone) and, in a cluster with
// --leader-election in controller mode, the Lease elector.
func controller(c config, reg *prometheus.Registry) (*controlplane.ControlPlane, error) {
	connector, err := sshConnector(c)
	if err != nil {
		return nil, err
	}
	if c.nvmeAddress == "" {
		host, _, err := net.SplitHostPort(c.rdsAddress)
		if err != nil {
			return nil, fmt.Errorf("--rds-address: %w", err)
		}
		c.nvmeAddress = host
	}
	kube, err := kubeClient(c)
	if err != nil {
		return nil, err
	}
	seams := controlplane.Seams{Kube: kube, Connector: connector, Registerer: reg}
	if kube != nil && c.mode == "controller" && c.leaderElection {
		if seams.Elector, err = elector(c, kube); err != nil {
			return nil, err
		}
	}
	return controlplane.New(seams, controlplane.Options{
		Driver: driver.Options{
			NodeID: c.nodeID, BasePath: c.basePath, AllowedBasePaths: splitList(c.allowedBasePaths),
			NVMeAddress: c.nvmeAddress, NVMePort: c.nvmePort, NQNPrefix: c.nqnPrefix,
			DefaultDataPlane: c.dataPlane, GracePeriod: c.gracePeriod, MaxVolumesPerNode: c.maxVolumesPerNode,
			OperationTimeout: c.operationTimeout, RestrictHosts: c.restrictHosts,
		},
		RDS:             rds.ManagerConfig{InitialConnectTimeout: c.rdsConnectTimeout, CommandTimeout: c.rdsCommandTimeout},
		MigrationWindow: c.migrationWindow,
		Reconciler: reconciler.Options{Interval: c.reconcileInterval, NotReadyTimeout: c.notReadyTimeout,
			Identity: podReference()},
		StandaloneNodes: splitList(c.standaloneNodes),
	})
}

// sshConnector is the SSH connection to RDS the --rds-* flags describe.
func sshConnector(c config) (*rds.SSHConnector, error) {
	if c.rdsAddress == "" || c.rdsKeyFile == "" || (c.rdsKnownHosts == "" && c.rdsFingerprint == "") {
		return nil, errors.New("--rds-address, --rds-key-file and --rds-known-hosts (or --rds-host-key-fingerprint) are required")
	}
	keyPEM, err := os.ReadFile(c.rdsKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--rds-key-file: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--rds-key-file: %w", err)
	}
	knownHosts := ""
	if c.rdsKnownHosts != "" {
		if knownHosts, err = firstKeyLine(c.rdsKnownHosts); err != nil {
			return nil, err
		}
	}
	return rds.NewSSHConnector(nil, rds.SSHConfig{
		Address: c.rdsAddress, User: c.rdsUser, Signer: signer,
		KnownHostsLine: knownHosts, HostKeyFingerprint: c.rdsFingerprint,
	})
}

// checkTimeouts: a command may not outlive the operation it serves (0 keeps
// the driver's default for either).
func checkTimeouts(c config) error {
	op, cmd := c.operationTimeout, c.rdsCommandTimeout
	if op == 0 {
		op = driver.DefaultOperationTimeout
	}
	if cmd == 0 {
		cmd = rds.DefaultCommandTimeout
	}
	if op < 0 || cmd < 0 || cmd > op {
		return fmt.Errorf("--rds-command-timeout %v and --operation-timeout %v: want both positive, the command's at most the operation's", cmd, op)
	}
	return nil
}

// nodeServer builds the node service with the data planes this node can use:
// nvme always (hardware), loop when --loop-backing-dir is set (emulator).
//
// With --restrict-hosts the loop plane refuses a volume whose export does not
// allow this node's host NQN, as RDS refuses the connection on hardware. It
// learns the export's allow-list where the hardware keeps it: from the
// emulator, over SSH, as RouterOS prints it (never from the controller's
// bookkeeping, which is what the rule checks). exports is that connection:
// the controller's in --mode=all; nil makes the node open its own from the
// --rds-* flags.
func nodeServer(ctx context.Context, c config, exports rds.Transport, reg prometheus.Registerer) (*driver.NodeServer, error) {
	if c.nodeID == "" {
		return nil, errors.New("--node-id is required in node and all modes")
	}
	planes := map[string]dataplane.Plane{"nvme": nvme.New(nvme.Options{})}
	if c.loopBackingDir != "" {
		lo := loop.Options{BackingDir: c.loopBackingDir}
		if c.restrictHosts {
			var creg prometheus.Registerer // the controller's client already counts on reg
			if exports == nil {
				mgr, err := nodeRDS(ctx, c, reg)
				if err != nil {
					return nil, fmt.Errorf("--restrict-hosts with --loop-backing-dir reads each export's allow-list from the emulator: %w", err)
				}
				exports, creg = mgr, reg
			}
			client, err := rds.NewClient(exports, rds.ClientOptions{BasePath: c.basePath, Registerer: creg})
			if err != nil {
				return nil, err
			}
			lo.AllowHost = exportacl.AllowList(client)
		}
		lp, err := loop.New(lo)
		if err != nil {
			return nil, err
		}
		planes["loop"] = lp
	} else if c.dataPlane == "loop" {
		return nil, errors.New("--data-plane=loop needs --loop-backing-dir (the emulator's state directory as this node sees it)")
	}
	return driver.NewNodeServer(driver.NodeOptions{
		NodeID: c.nodeID, DataPlanes: planes, DefaultDataPlane: c.dataPlane,
		StateDir: c.nodeStateDir, KubeletDir: c.kubeletDir, MaxVolumesPerNode: c.maxVolumesPerNode,
		RestrictHosts: c.restrictHosts,
	})
}

// serveMetrics exposes /metrics, /healthz (the process is alive: liveness) and
// /readyz (RDS is connected: readiness). Keeping the two apart is what stops an
// RDS outage from turning into a controller restart loop.
func serveMetrics(addr string, reg *prometheus.Registry, ready func() error) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-address: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Metrics server stopped")
		}
	}()
	return nil
}

// firstKeyLine returns the first non-comment line of a known_hosts file.
func firstKeyLine(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--rds-known-hosts: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return l, nil
		}
	}
	return "", fmt.Errorf("--rds-known-hosts %s: no key line", path)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
