package nvme

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/rds-csi/rds-csi/driver/dataplane"
	"github.com/rds-csi/rds-csi/driver/rds"
)

// ErrInvalidTarget: a Target field or an option failed validation. Nothing
// was run.
var ErrInvalidTarget = errors.New("nvme: invalid target")

// hostIDRE is a UUID as driver/hostnqn prints it.
var hostIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidTarget}, args...)...)
}

func validateNQN(field, nqn string) error {
	if err := rds.ValidateNQN(nqn); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidTarget, field, err)
	}
	return nil
}

// validateAddress and seconds are the shared rules of driver/dataplane, reported
// as ErrInvalidTarget.
func validateAddress(a string) error {
	if err := dataplane.ValidateAddress(a); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidTarget, err)
	}
	return nil
}

func seconds(name, v string, min int) (string, error) {
	s, err := dataplane.Seconds(name, v, min)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidTarget, err)
	}
	return s, nil
}

// connectArgs validates everything nvme connect will see and returns its
// argv (without the program name). defaultHostNQN applies when the Target
// has none.
func connectArgs(t dataplane.Target, defaultHostNQN string) ([]string, error) {
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
		{"--ctrl-loss-tmo", t.CtrlLossTmo, dataplane.MinCtrlLossTmo},
		{"--reconnect-delay", t.ReconnectDelay, dataplane.MinReconnectDelay},
		{"--keep-alive-tmo", t.KeepAliveTmo, dataplane.MinKeepAliveTmo},
		// nvme-cli spells this one option with underscores.
		{"--fast_io_fail_tmo", t.FastIOFailTmo, dataplane.MinFastIOFailTmo},
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
	if t.HostID != "" {
		if !hostIDRE.MatchString(t.HostID) {
			return nil, invalidf("host ID %q is not a lower-case UUID", truncate(t.HostID, 64))
		}
		args = append(args, "--hostid="+t.HostID)
	}
	return args, nil
}
