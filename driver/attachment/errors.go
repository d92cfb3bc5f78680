package attachment

import (
	"errors"
	"time"
)

// Sentinels, so the controller can map outcomes to gRPC codes with
// errors.Is without caring which typed error carries the details.
var (
	// ErrInvalidArgument: empty IDs, an unknown Mode, a negative grace or a
	// multi-node filesystem. The request is wrong; retrying will not help.
	ErrInvalidArgument = errors.New("attachment: invalid argument")
	// ErrConflict: another node holds the volume. Always a *ConflictError.
	ErrConflict = errors.New("attachment: volume held by another node")
	// ErrTooManyAttachments: a MultiNodeBlock volume already has its two
	// holders. Always a *TooManyAttachmentsError.
	ErrTooManyAttachments = errors.New("attachment: volume already attached to two nodes")
	// ErrNodeGone: the target node is reported gone. Attaching there would
	// mint a claim that protects nothing but blocks everyone (the outage
	// this package exists for), so it is refused until NodeBack.
	ErrNodeGone = errors.New("attachment: node reported gone")
)

// ConflictError is the refusal of a publish because Holder has the volume.
// The controller maps it to FAILED_PRECONDITION; Message is written for the
// human reading the VolumeAttachment status.
type ConflictError struct {
	Volume string
	// Node is the node that asked.
	Node string
	// Holder is the node that has the volume.
	Holder string
	// LapsesAt is when Holder's claim lapses and a retry can succeed; zero
	// if Holder is healthy, in which case only an unpublish frees the volume.
	LapsesAt time.Time
	Message  string
}

func (e *ConflictError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// TooManyAttachmentsError is the refusal of a third node on a MultiNodeBlock
// volume. A live migration needs two nodes; a third holder means something
// other than a migration is going on.
type TooManyAttachmentsError struct {
	Volume string
	// Node is the node that asked.
	Node string
	// Holders are the current holders, oldest first.
	Holders []string
	Message string
}

func (e *TooManyAttachmentsError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrTooManyAttachments) true.
func (e *TooManyAttachmentsError) Unwrap() error { return ErrTooManyAttachments }
