package engine

import (
	"context"

	"google.golang.org/grpc/status"
)

// Call runs one controller RPC on the driver (a plain method call, no gRPC)
// and traces its name, the request's key and the gRPC code it returned.
// The RPC runs on the engine's goroutine: one that waits on virtual time
// would never return, because only this goroutine moves the clock.
func (w *World) Call(method, key string, fn func(ctx context.Context) error) error {
	err := fn(w.ctx)
	w.record("rpc", map[string]any{"method": method, "key": key, "code": status.Code(err).String()})
	if aerr := w.Advance(w.Now()); aerr != nil && err == nil {
		return aerr
	}
	return err
}
