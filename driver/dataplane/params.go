package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
)

// ErrInvalidParameter: a connection parameter failed validation. The
// controller checks StorageClass parameters with these functions at
// CreateVolume, and the data planes check them again before anything reaches
// a command line, since a volume context can be edited on its way.
var ErrInvalidParameter = errors.New("invalid connection parameter")

const maxHostLen = 253

var (
	// A DNS name: dot-separated labels of letters, digits and inner hyphens.
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// The scope of a link-local IPv6 address: an interface name or index.
	zoneRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
	// Decimal seconds as nvme-cli takes them: no sign but "-" (for
	// ctrl-loss-tmo=-1), no leading zeros, at most 9 digits.
	secondsRE = regexp.MustCompile(`^(-?[1-9][0-9]{0,8}|0)$`)
)

// Lower bounds of the nvme connect timeouts, in seconds.
const (
	MinCtrlLossTmo    = -1 // -1: reconnect forever
	MinReconnectDelay = 1
	MinKeepAliveTmo   = 0
	MinFastIOFailTmo  = -1 // -1: I/O waits for the reconnect (the kernel's default)
)

// DefaultCtrlLossTmo is what the node connects with when the volume does not
// say: reconnect forever, so that a volume mounted on a node that stays up
// survives an RDS outage of any length and resumes where it stopped.
const DefaultCtrlLossTmo = "-1"

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidParameter}, args...)...)
}

// ValidateAddress accepts an IPv4 or IPv6 address or a DNS name, nothing a
// shell or nvme-cli could read as more than one argument.
func ValidateAddress(a string) error {
	if ip, err := netip.ParseAddr(a); err == nil {
		if z := ip.Zone(); z != "" && !zoneRE.MatchString(z) {
			return invalidf("address %q has a bad IPv6 zone", a)
		}
		return nil
	}
	if len(a) > maxHostLen || !hostnameRE.MatchString(a) {
		return invalidf("address %.64q is neither an IP address nor a host name", a)
	}
	return nil
}

// Seconds validates a timeout in whole seconds of at least min and returns
// it in canonical form; "" stays "" (nvme-cli's default).
func Seconds(name, v string, min int) (string, error) {
	if v == "" {
		return "", nil
	}
	if !secondsRE.MatchString(v) {
		return "", invalidf("%s %.32q is not a whole number of seconds", name, v)
	}
	n, _ := strconv.Atoi(v) // cannot fail: at most 9 digits
	if n < min {
		return "", invalidf("%s %d is below %d", name, n, min)
	}
	return strconv.Itoa(n), nil
}
