// Package mountns runs the current program again in a private mount
// namespace, so that every mount it makes disappears when it exits, however
// it exits. fshealth's demo and benchmarks use it.
package mountns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// marker is the environment variable set in the re-executed child.
const marker = "FSHEALTH_PRIVATE_MOUNTNS"

// Inside reports whether this process is the re-executed child.
func Inside() bool { return os.Getenv(marker) == "1" }

// Reexec runs this executable again with the same arguments in a new mount
// namespace whose mounts are all private (nothing propagates back to the
// host), forwarding stdio, SIGINT and SIGTERM, and returns the child's exit
// status. Call it only when Inside is false.
func Reexec() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("finding own executable: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), marker+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// With CLONE_NEWNS, Go's fork path also remounts / recursively private
	// in the child before exec.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("starting %s in a private mount namespace: %w", exe, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
