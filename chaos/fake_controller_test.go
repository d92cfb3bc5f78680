package chaos

import (
	"errors"
	"time"
)

// fakeDeployment records what the controller and kubevirt faults asked for.
type fakeDeployment struct {
	calls []string
	fail  error
}

func (f *fakeDeployment) do(call string) error {
	f.calls = append(f.calls, call)
	return f.fail
}

func (f *fakeDeployment) CrashController() error   { return f.do("crash") }
func (f *fakeDeployment) RestartController() error { return f.do("restart") }
func (f *fakeDeployment) LoseLeadership() error    { return f.do("lose") }
func (f *fakeDeployment) Migrate(vm, to, order string, delay time.Duration) error {
	return f.do("migrate " + vm + " " + to + " " + order + " " + delay.String())
}

var errRefused = errors.New("refused")
