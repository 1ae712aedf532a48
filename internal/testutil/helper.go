package testutil

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// HelperCommand returns a command running name with args — often the test
// binary itself (os.Args[0]) re-executed as a helper — that cannot outlive
// the test: it runs in a process group of its own, killed whole when the
// command's context ends (after max, or a few seconds before the test's
// own deadline, go test -timeout, if that comes first) and when the test
// ends; Wait returns at most 5 s later even if something in the group holds
// its output open. A helper that loops forever (a mutant in its package's
// initialisation, say) therefore ends with the test instead of running on
// after it.
func HelperCommand(t testing.TB, max time.Duration, name string, args ...string) *exec.Cmd {
	t.Helper()
	deadline := time.Now().Add(max)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Add(-5*time.Second).Before(deadline) {
			deadline = td.Add(-5 * time.Second)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	t.Cleanup(func() {
		cancel()
		if cmd.Process != nil {
			// Whatever of the group is left (the helper if it was never
			// waited for, or what it started).
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	return cmd
}
