package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"runtime/debug"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/klog/v2"

	"github.com/rds-csi/rds-csi/internal/clock"
)

func wrapInt64(v int64) *wrapperspb.Int64Value { return wrapperspb.Int64(v) }

// rpcMetrics count and time every CSI call by method and result code.
type rpcMetrics struct {
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rds_csi_operations_total",
			Help: "CSI calls served, by method and gRPC code.",
		}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rds_csi_operation_duration_seconds",
			Help:    "Time to serve a CSI call, by method.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.total, m.duration)
	}
	return m
}

// interceptor logs and measures each call. Method labels are the short CSI
// method names, a bounded set. Secrets in requests are never logged: only the
// method and the outcome are.
func (m *rpcMetrics) interceptor(clk clock.Clock) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		method := path.Base(info.FullMethod)
		start := clk.Now()
		resp, err := handler(ctx, req)
		elapsed := clk.Since(start)
		code := status.Code(err)
		m.total.WithLabelValues(method, code.String()).Inc()
		m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
		if err != nil {
			klog.ErrorS(err, "CSI call failed", "method", method, "code", code.String(), "duration", elapsed)
		} else {
			klog.V(4).InfoS("CSI call", "method", method, "duration", elapsed)
		}
		return resp, err
	}
}

// recoverPanics turns a panic in a handler into INTERNAL with the stack in
// the log. A bug tickled by one malformed RDS reply must cost one call, not
// the process: the health monitor and the sidecars call in loops, and a
// crashing controller is an outage of every volume's attach and detach.
func recoverPanics(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			method := path.Base(info.FullMethod)
			klog.ErrorS(nil, "CSI call panicked; answering INTERNAL", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "%s: internal error (a bug: the driver recovered from a panic, see its log)", method)
		}
	}()
	return handler(ctx, req)
}

// Services are the CSI services one process serves; Controller and Node may be
// nil (a node DaemonSet has no controller, a controller Deployment no node).
type Services struct {
	Identity   csi.IdentityServer
	Controller csi.ControllerServer
	Node       csi.NodeServer
}

// Server serves a Driver over gRPC on a unix socket.
type Server struct {
	grpc *grpc.Server
	lis  net.Listener
}

// Listen prepares a gRPC server for the services on endpoint
// ("unix:///csi/csi.sock" or "unix:/csi/csi.sock"). A stale socket file left by
// a previous process is removed first. reg may be nil; clk times calls.
func Listen(endpoint string, svc Services, reg prometheus.Registerer, clk clock.Clock) (*Server, error) {
	sock, err := unixSocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", sock, err)
	}
	if err := os.MkdirAll(path.Dir(sock), 0o750); err != nil {
		return nil, err
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.New()
	}
	// Metrics outside, recovery inside: a recovered panic is counted as the
	// INTERNAL it became.
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(newRPCMetrics(reg).interceptor(clk), recoverPanics))
	csi.RegisterIdentityServer(srv, svc.Identity)
	if svc.Controller != nil {
		csi.RegisterControllerServer(srv, svc.Controller)
	}
	if svc.Node != nil {
		csi.RegisterNodeServer(srv, svc.Node)
	}
	return &Server{grpc: srv, lis: lis}, nil
}

// Serve blocks serving requests until Stop.
func (s *Server) Serve() error { return s.grpc.Serve(s.lis) }

// Stop stops the server, letting calls in flight finish.
func (s *Server) Stop() { s.grpc.GracefulStop() }

// Addr is the socket path.
func (s *Server) Addr() string { return s.lis.Addr().String() }

func unixSocketPath(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "unix" {
		return "", fmt.Errorf("endpoint %q: want unix:///path/to/csi.sock", endpoint)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("endpoint %q: socket path must be absolute", endpoint)
	}
	return p, nil
}
