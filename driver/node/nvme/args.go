package nvme

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"

	"github.com/rds-csi/rds-csi/driver/node"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// ErrInvalidTarget: a Target field or an option failed validation. Nothing
// was run.
var ErrInvalidTarget = errors.New("nvme: invalid target")

const maxHostLen = 253

var (
	// A DNS name: dot-separated labels of letters, digits and inner hyphens.
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
	// The scope of a link-local IPv6 address: an interface name or index.
	zoneRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`)
	// Decimal seconds as nvme-cli takes them; the sign only for ctrl-loss-tmo=-1.
	secondsRE = regexp.MustCompile(`^-?[0-9]{1,9}$`)
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidTarget}, args...)...)
}

func validateNQN(field, nqn string) error {
	if err := rds.ValidateNQN(nqn); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidTarget, field, err)
	}
	return nil
}

// validateAddress accepts an IPv4 or IPv6 address or a DNS name.
func validateAddress(a string) error {
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

// seconds validates an nvme-cli timeout and returns it in canonical form;
// "" stays "" (nvme-cli's default).
func seconds(name, v string, min int) (string, error) {
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

// connectArgs validates everything nvme connect will see and returns its
// argv (without the program name). defaultHostNQN applies when the Target
// has none.
func connectArgs(t node.Target, defaultHostNQN string) ([]string, error) {
	if err := validateNQN("NQN", t.NQN); err != nil {
		return nil, err
	}
	if err := validateAddress(t.Address); err != nil {
		return nil, err
	}
	if err := rds.ValidatePort(t.Port); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidTarget, err)
	}
	args := []string{"connect", "-t", "tcp", "-a", t.Address, "-s", strconv.Itoa(t.Port), "-n", t.NQN}
	for _, o := range []struct {
		flag, value string
		min         int
	}{
		{"--ctrl-loss-tmo", t.CtrlLossTmo, -1}, // -1: reconnect forever
		{"--reconnect-delay", t.ReconnectDelay, 1},
		{"--keep-alive-tmo", t.KeepAliveTmo, 0},
	} {
		v, err := seconds(o.flag, o.value, o.min)
		if err != nil {
			return nil, err
		}
		if v != "" {
			// One argument with "=": even a value starting with '-' cannot
			// be read as an option.
			args = append(args, o.flag+"="+v)
		}
	}
	hostNQN := t.HostNQN
	if hostNQN == "" {
		hostNQN = defaultHostNQN
	}
	if hostNQN != "" {
		if err := validateNQN("host NQN", hostNQN); err != nil {
			return nil, err
		}
		args = append(args, "--hostnqn="+hostNQN)
	}
	return args, nil
}
