// Command rds-emulator runs an emulated MikroTik ROSE Data Server: an SSH server
// speaking the RouterOS /disk and /file dialect, with persistent state and a
// control endpoint for injecting faults.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/emulator"
	"github.com/rds-csi/rds-csi/emulator/console"
	"github.com/rds-csi/rds-csi/emulator/control"
)

func main() {
	klog.InitFlags(nil)
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		if err := demo(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "rds-emulator demo:", err)
			os.Exit(1)
		}
		return
	}
	var (
		listen          = flag.String("listen", "127.0.0.1:2222", "SSH listen address (port 0 picks one)")
		stateDir        = flag.String("state-dir", "", "directory for disks, backing files and the host key (required)")
		hostKey         = flag.String("host-key", "", "OpenSSH private host key file to serve with (default: STATE-DIR/ssh_host_ed25519_key, created on first start)")
		authorizedKeys  = flag.String("authorized-keys", "", "OpenSSH authorized_keys file of keys that may log in (required)")
		users           = flag.String("users", "admin", "comma-separated user names the keys may log in as")
		identity        = flag.String("identity", "rds", "/system identity name, shown in the prompt")
		version         = flag.String("routeros-version", "7.16 (stable)", "RouterOS version to emulate (before 7.16 /file prints creation-time=)")
		pool            = flag.String("pool", "storage-pool", "storage pool name (its mount point)")
		poolSize        = flag.String("pool-size", "8T", "storage pool size: bytes or with K/M/G/T suffix")
		controlListen   = flag.String("control-listen", "", "address of the HTTP fault-injection endpoint (off when empty)")
		metricsListen   = flag.String("metrics-listen", "", "address serving /metrics (off when empty)")
		fsync           = flag.Bool("fsync", true, "flush every change to disk before acknowledging it (survives machine crashes, not only kill -9)")
		errorExitStatus = flag.Int("error-exit-status", 1, "exec exit status when a command prints an error (real RouterOS's is undocumented)")
		commandLog      = flag.String("command-log", "", "JSON-lines command log file (default STATE-DIR/commands.log, '-' for stderr, 'off' to disable)")
	)
	flag.Parse()
	if err := run(options{
		listen: *listen, stateDir: *stateDir, hostKey: *hostKey, authorizedKeys: *authorizedKeys, users: *users,
		identity: *identity, version: *version, pool: *pool, poolSize: *poolSize,
		controlListen: *controlListen, metricsListen: *metricsListen, fsync: *fsync,
		errorExitStatus: *errorExitStatus, commandLog: *commandLog,
	}); err != nil {
		fmt.Fprintln(os.Stderr, "rds-emulator:", err)
		os.Exit(1)
	}
}

type options struct {
	listen, stateDir, hostKey, authorizedKeys, users, identity, version, pool string
	poolSize                                                                  string
	controlListen, metricsListen, commandLog                                  string
	fsync                                                                     bool
	errorExitStatus                                                           int
}

func run(o options) error {
	if o.stateDir == "" || o.authorizedKeys == "" {
		return errors.New("--state-dir and --authorized-keys are required")
	}
	if o.errorExitStatus != 0 && o.errorExitStatus != 1 {
		return errors.New("--error-exit-status must be 0 or 1")
	}
	size, err := console.ParseSize(o.poolSize)
	if err != nil || size <= 0 {
		return fmt.Errorf("--pool-size %q: want bytes or a K/M/G/T suffix", o.poolSize)
	}
	keyText, err := os.ReadFile(o.authorizedKeys)
	if err != nil {
		return err
	}
	keys, err := emulator.ParseAuthorizedKeys(keyText)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("%s holds no keys: nobody could log in", o.authorizedKeys)
	}
	var hostKey gossh.Signer
	firstStart := false
	if o.hostKey != "" {
		if hostKey, err = readHostKey(o.hostKey); err != nil {
			return err
		}
	} else {
		_, statErr := os.Stat(filepath.Join(o.stateDir, "ssh_host_ed25519_key"))
		firstStart = errors.Is(statErr, os.ErrNotExist)
	}

	logFn, closeLog, err := openCommandLog(o.commandLog, o.stateDir)
	if err != nil {
		return err
	}
	defer closeLog()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	emu, err := emulator.New(emulator.Config{
		Listen: o.listen, StateDir: o.stateDir, HostKey: hostKey, AuthorizedKeys: keys,
		Users: strings.Split(o.users, ","), Identity: o.identity, Version: o.version,
		Pool: o.pool, PoolSize: size, Fsync: o.fsync, ZeroExitOnError: o.errorExitStatus == 0,
		Registerer: reg, CommandLog: logFn,
	})
	if err != nil {
		return err
	}
	defer emu.Close()

	servers := []*http.Server{}
	if o.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv, addr, err := serveHTTP(o.metricsListen, mux)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		servers = append(servers, srv)
		fmt.Printf("metrics on http://%s/metrics\n", addr)
	}
	if o.controlListen != "" {
		srv, addr, err := serveHTTP(o.controlListen, control.Handler(emu))
		if err != nil {
			return fmt.Errorf("control: %w", err)
		}
		servers = append(servers, srv)
		fmt.Printf("control on http://%s\n", addr)
		if host, _, err := net.SplitHostPort(addr); err == nil {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				fmt.Fprintf(os.Stderr, "warning: the control endpoint %s is unauthenticated (anyone reaching it can crash this emulator); bind it to 127.0.0.1\n", addr)
			}
		}
	}
	if err := emu.Start(); err != nil {
		return err
	}
	addr := emu.Addr()
	if firstStart {
		fmt.Printf("created host key in %s\n", o.stateDir)
	}
	fmt.Printf("host key fingerprint: %s\n", gossh.FingerprintSHA256(emu.HostKey()))
	fmt.Printf("known_hosts: %s\n", knownhosts.Line([]string{knownhosts.Normalize(addr)}, emu.HostKey()))
	fmt.Printf("listening on %s\n", addr)
	klog.InfoS("RouterOS emulator serving", "addr", addr, "stateDir", o.stateDir, "pool", o.pool, "poolSize", size)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	sig := <-stop
	klog.InfoS("Shutting down", "signal", sig.String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(ctx)
	}
	return nil
}

func serveHTTP(addr string, h http.Handler) (*http.Server, string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "HTTP server stopped", "addr", l.Addr().String())
		}
	}()
	return srv, l.Addr().String(), nil
}

// openCommandLog returns a function that appends JSON lines to the command log.
func openCommandLog(spec, stateDir string) (func(emulator.CommandRecord), func(), error) {
	switch spec {
	case "off":
		return nil, func() {}, nil
	case "":
		spec = filepath.Join(stateDir, "commands.log")
	}
	var w *os.File
	if spec == "-" {
		w = os.Stderr
	} else {
		if err := os.MkdirAll(filepath.Dir(spec), 0o700); err != nil {
			return nil, nil, err
		}
		f, err := os.OpenFile(spec, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("command log: %w", err)
		}
		w = f
	}
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	log := func(r emulator.CommandRecord) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(r); err != nil {
			klog.ErrorS(err, "Command log write failed")
		}
	}
	return log, func() {
		if w != os.Stderr {
			_ = w.Close()
		}
	}, nil
}

// readHostKey loads an unencrypted OpenSSH (or PEM) private key to serve as
// the host key, so a test bed can keep one pinned key across fresh state
// directories.
func readHostKey(path string) (gossh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--host-key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	var missing *gossh.PassphraseMissingError
	switch {
	case errors.As(err, &missing):
		return nil, fmt.Errorf("--host-key %s is passphrase-protected; the emulator needs an unencrypted key", path)
	case err != nil:
		return nil, fmt.Errorf("--host-key %s: %w", path, err)
	}
	return signer, nil
}
