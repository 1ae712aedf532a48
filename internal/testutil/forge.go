package testutil

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// NobodyUID is the uid (and gid) forged kernel log records are made as: an
// unprivileged user, Debian's "nobody".
const NobodyUID = 65534

// faultEnv, set in the environment of a test binary, makes
// MainInMountNamespace fault instead of running tests (see Segfaulter); its
// value is the process name to take first.
const faultEnv = "FSHEALTH_TESTUTIL_SEGFAULT_AS"

// faultIfAsked is called first by MainInMountNamespace: in a process started
// by Segfaulter.Fault it names the thread as asked (prctl PR_SET_NAME: the
// task's comm, 15 bytes at most, which any user may set), gives SIGSEGV its
// default action back from the Go runtime, and dereferences nil. The kernel
// then kills the process and logs "COMM[PID]: segfault at 0 ... in
// FILE[...]", FILE being the base name of the program file.
func faultIfAsked() {
	comm, ok := os.LookupEnv(faultEnv)
	if !ok {
		return
	}
	runtime.LockOSThread()
	name := append([]byte(comm), 0)
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	// struct kernel_sigaction on amd64: handler, flags, restorer, mask.
	var act struct{ handler, flags, restorer, mask uint64 } // handler 0: SIG_DFL
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(unix.SIGSEGV), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	var p *int
	*p = 0
	os.Exit(111) // not reached
}

// Segfaulter makes the kernel write segfault reports whose text an
// unprivileged user chose, as a hostile local user would to forge kernel
// log messages.
type Segfaulter struct {
	t   testing.TB
	dir string
	bin string
}

// NewSegfaulter copies the running test binary (whose TestMain must call
// MainInMountNamespace) into a directory that uid NobodyUID can reach. It
// skips the test (fails it under CI) without root, or when the kernel does
// not report unhandled segfaults (sysctl debug.exception-trace).
func NewSegfaulter(t testing.TB) *Segfaulter {
	t.Helper()
	RequireRoot(t)
	if b, err := os.ReadFile("/proc/sys/debug/exception-trace"); err == nil && len(b) > 0 && b[0] == '0' {
		require(t, "the kernel does not log segfaults (sysctl debug.exception-trace = 0)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// t.TempDir's directories are private to root: open the path.
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o055); err != nil {
				t.Fatal(err)
			}
		}
	}
	bin := filepath.Join(dir, "faulter")
	if err := copyExecutable(self, bin); err != nil {
		t.Fatal(err)
	}
	return &Segfaulter{t: t, dir: dir, bin: bin}
}

// copyExecutable copies the program at from to a new file to, mode 0755.
func copyExecutable(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// Fault runs the program, under the file name file (a base name: it may
// hold spaces, colons, parentheses), as uid and gid NobodyUID with process
// name comm, and returns its pid once it has died of SIGSEGV. The kernel
// then logs "COMM[PID]: segfault at ... in FILE[...]" at KERN_INFO.
func (s *Segfaulter) Fault(comm, file string) int {
	s.t.Helper()
	sub, err := os.MkdirTemp(s.dir, "f")
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		s.t.Fatal(err)
	}
	path := filepath.Join(sub, file)
	if err := os.Link(s.bin, path); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(path)
	cmd.Env = []string{faultEnv + "=" + comm}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: NobodyUID, Gid: NobodyUID}}
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		s.t.Fatalf("running %q as uid %d: %v (want death by SIGSEGV)", path, NobodyUID, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		s.t.Fatalf("%q as uid %d: %v, want death by SIGSEGV", path, NobodyUID, err)
	}
	return ee.Pid()
}
