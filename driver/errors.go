package driver

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/rds-csi/rds-csi/driver/attachment"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// rdsStatus maps an error from the RouterOS client to the gRPC status the CSI
// spec and the sidecars expect. op names the operation for the message.
func rdsStatus(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, rds.ErrUnavailable), errors.Is(err, rds.ErrHostKeyMismatch):
		code = codes.Unavailable
	case errors.Is(err, rds.ErrCapacity):
		code = codes.ResourceExhausted
	case errors.Is(err, rds.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, rds.ErrExists):
		code = codes.AlreadyExists
	case errors.Is(err, rds.ErrInUse):
		code = codes.FailedPrecondition
	case errors.Is(err, rds.ErrInvalidArgument):
		code = codes.InvalidArgument
	case errors.Is(err, rds.ErrRejected), errors.Is(err, rds.ErrFailed):
		// RouterOS refused our own command text or answered something we
		// cannot read: a bug or a firmware difference, not the caller's fault.
		code = codes.Internal
	}
	return status.Error(code, fmt.Sprintf("%s: %v", op, err))
}

// attachmentStatus maps an attachment decision to FAILED_PRECONDITION, which the
// external-attacher retries with backoff, so a claim that lapses after its grace
// period is picked up without anyone's help. A malformed request is
// INVALID_ARGUMENT (the spec's general table): no retry can make it succeed.
func attachmentStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, attachment.ErrInvalidArgument) {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return status.Error(codes.FailedPrecondition, err.Error())
}
