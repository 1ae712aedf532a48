// Package testutil is the harness for fshealth's privileged tests: it runs a
// test binary in its own mount namespace, skips (or, under CI, fails) tests
// whose privileges or tools are missing, and creates scratch file systems on
// loop devices that are cleaned up with the test.
package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// ReexecEnv is the environment variable MainInMountNamespace sets in the
// re-executed test binary; its value is the outer process's mount namespace
// (the target of its /proc/self/ns/mnt link).
const ReexecEnv = "FSHEALTH_TESTUTIL_MOUNTNS"

// InCI reports whether the CI environment variable is set to a true value
// ("true", "1", ...), as it is on CI runners.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// require skips t with reason, or fails it under CI, where a skipped
// privileged test would hide a broken test environment.
func require(t testing.TB, reason string) {
	t.Helper()
	Skip(t, Missing, "%s", reason)
}

// RequireRoot skips the test when not running as root, saying why ("needs
// root: mounts loop devices and uses fanotify"); under CI=true it fails
// instead of skipping (a skipped privileged test is a failure in CI).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		require(t, "needs root: mounts loop devices and uses fanotify")
	}
}

// RequireCommand skips the test when the external program name is not
// installed (looked up in $PATH and the sbin directories), naming the Debian
// package that provides it; under CI=true it fails instead of skipping.
func RequireCommand(t testing.TB, name, debianPackage string) {
	t.Helper()
	if _, err := loopfs.FindTool(name); err != nil {
		require(t, fmt.Sprintf("needs %s: install Debian package %s (%v)", name, debianPackage, err))
	}
}

// MainInMountNamespace is used as
//
//	func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }
//
// When running as root and not already re-executed, it re-executes the test
// binary (same arguments, same environment plus ReexecEnv) in a new private
// mount namespace, forwards standard input, output and error, forwards
// SIGINT, SIGTERM, SIGQUIT and SIGHUP to it, and exits with its exit status
// (128+N when it is killed by signal N). The child is killed if the parent
// dies. Inside the namespace, or when not root, it runs m.Run and exits.
//
// Every mount a test makes dies with the namespace even if the test binary
// crashes or is killed, and with loop AUTOCLEAR the loop devices go too.
// If the namespace cannot be created, the tests run in the current one.
//
// Each setup runs once, in the process that runs the tests, before them; the
// function it returns runs after them. A setup error ends the run.
func MainInMountNamespace(m *testing.M, setups ...func() (func(), error)) {
	faultIfAsked()
	if os.Getenv(ReexecEnv) != "" || os.Geteuid() != 0 {
		os.Exit(runWithSetups(m, setups))
	}
	code, err := runInMountNamespace()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutil: %v; running tests in the current mount namespace\n", err)
		os.Exit(runWithSetups(m, setups))
	}
	os.Exit(code)
}

// runWithSetups runs the setups, the tests, then the teardowns.
func runWithSetups(m *testing.M, setups []func() (func(), error)) int {
	var teardowns []func()
	defer func() {
		for i := len(teardowns) - 1; i >= 0; i-- {
			teardowns[i]()
		}
	}()
	for _, setup := range setups {
		td, err := setup()
		if err != nil {
			fmt.Fprintf(os.Stderr, "test setup failed: %v\n", err)
			return 1
		}
		if td != nil {
			teardowns = append(teardowns, td)
		}
	}
	return m.Run()
}

// testTimeout returns the -test.timeout among a test binary's arguments,
// 0 if there is none (or it is 0: no timeout).
func testTimeout(args []string) time.Duration {
	for i, a := range args {
		v, ok := strings.CutPrefix(a, "-test.timeout=")
		if !ok && a == "-test.timeout" && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			d, err := time.ParseDuration(v)
			if err == nil && d > 0 {
				return d
			}
			return 0
		}
	}
	return 0
}

// runInMountNamespace re-executes the test binary in a new mount namespace
// and returns its exit code, or an error when it could not be started.
func runInMountNamespace() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the test binary to re-execute: %w", err)
	}
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		ns = "1"
	}
	// Pdeathsig is sent when the thread that started the child exits: keep
	// this goroutine on its thread for the rest of the process's life.
	runtime.LockOSThread()

	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), ReexecEnv+"="+ns)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes / recursively private in the child after unsharing.
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 4)
	forwarded := []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGHUP}
	signal.Notify(sigs, forwarded...)
	if err := cmd.Start(); err != nil {
		signal.Reset(forwarded...)
		return 0, fmt.Errorf("re-executing %s in a new mount namespace: %w", exe, err)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	// The child's own -test.timeout only starts with its tests: one stuck
	// before them (in package initialisation) is killed here.
	if d := testTimeout(os.Args[1:]); d > 0 {
		kill := time.AfterFunc(d+30*time.Second, func() {
			fmt.Fprintf(os.Stderr, "testutil: test binary %s (pid %d) still running 30s after the test timeout %v: killing it\n", exe, cmd.Process.Pid, d)
			cmd.Process.Kill()
		})
		defer kill.Stop()
	}
	err = cmd.Wait()
	signal.Stop(sigs)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "testutil: test binary %s (pid %d) killed by signal %v\n", exe, cmd.Process.Pid, ws.Signal())
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "testutil: waiting for test binary %s: %v\n", exe, err)
		return 1, nil
	}
	return 0, nil
}

// ScratchDir returns a temporary directory removed when the test ends; it is
// t.TempDir.
func ScratchDir(t testing.TB) string {
	t.Helper()
	return t.TempDir()
}

// NewImage creates a scratch file system image of type fstype and size bytes
// in a temporary directory and mounts it at <tmp>/mnt with the data options,
// registering a cleanup that removes it. It skips (or under CI fails) the test
// when not root or when mkfs.<fstype> is missing, and fails it on any error.
func NewImage(t testing.TB, fstype string, size int64, options string, mkfsArgs ...string) *loopfs.Image {
	t.Helper()
	RequireRoot(t)
	prog, pkg := loopfs.MkfsPackage(fstype)
	if prog == "" {
		t.Fatalf("testutil: unsupported file system type %q", fstype)
	}
	RequireCommand(t, prog, pkg)
	dir := t.TempDir()
	im, err := loopfs.Create(dir, fstype, size, mkfsArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Remove(); err != nil {
			t.Errorf("removing scratch %s image: %v", fstype, err)
		}
	})
	if err := im.Mount(filepath.Join(dir, "mnt"), options); err != nil {
		t.Fatal(err)
	}
	return im
}

// NewExt4 creates a mounted scratch ext4 image of size bytes for a test
// (loopfs.Create in t.TempDir(), mounted at <tmp>/mnt with "errors=continue"),
// registering a cleanup that removes it. A size of 0 means 64 MiB.
func NewExt4(t testing.TB, size int64) *loopfs.Image {
	t.Helper()
	if size <= 0 {
		size = 64 << 20
	}
	return NewImage(t, "ext4", size, "errors=continue")
}

// CheckNoLeaks registers a cleanup that fails the test if, when the test
// ends, a mount under the test's temporary directories (t.TempDir) remains or
// a loop device is still backed by a file under them. Call it before creating
// images, so that it runs after their cleanups.
func CheckNoLeaks(t testing.TB) {
	t.Helper()
	// All of a test's t.TempDir directories share one parent.
	root := filepath.Dir(t.TempDir())
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	t.Cleanup(func() {
		for _, l := range Leaks(root) {
			t.Errorf("leak: %s", l)
		}
	})
}

// Leaks lists the mounts below dir and the loop devices backed by files below
// dir, one description each; an unreadable mount table or sysfs is reported
// as a leak too, so that it is not mistaken for a clean state.
func Leaks(dir string) []string {
	var leaks []string
	prefix := strings.TrimSuffix(dir, "/") + "/"
	mps, err := MountPoints()
	if err != nil {
		leaks = append(leaks, err.Error())
	}
	for _, mp := range mps {
		if mp == dir || strings.HasPrefix(mp, prefix) {
			leaks = append(leaks, "mount on "+mp)
		}
	}
	loops, err := loopfs.BackingFiles()
	if err != nil {
		leaks = append(leaks, err.Error())
	}
	for name, file := range loops {
		if strings.HasPrefix(file, prefix) {
			leaks = append(leaks, fmt.Sprintf("/dev/%s attached to %s", name, file))
		}
	}
	return leaks
}

// MountPoints returns the mount points of the calling process's mount
// namespace, read from /proc/self/mountinfo.
func MountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mps = append(mps, unescapeOctal(fields[4]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	return mps, nil
}

// unescapeOctal undoes the \ooo escaping of spaces, tabs, newlines and
// backslashes in /proc/self/mountinfo fields.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
