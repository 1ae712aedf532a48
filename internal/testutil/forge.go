package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// NobodyUID is the uid (and gid) forged kernel log records are made as: an
// unprivileged user, Debian's "nobody".
const NobodyUID = 65534

// faulterSource is a program that names itself argv[1] (prctl PR_SET_NAME:
// the task's comm, 15 bytes at most, which any user may set) and then
// dereferences NULL, so that the kernel logs the segfault report
// "COMM[PID]: segfault at 0 ... in FILE[...]" with COMM and FILE (the base
// name of the program file) both chosen by the user who runs it.
const faulterSource = `#include <sys/prctl.h>
int main(int argc, char **argv) {
	if (argc > 1)
		prctl(PR_SET_NAME, argv[1], 0, 0, 0);
	*(volatile int *)0 = 0;
	return 0;
}
`

// Segfaulter makes the kernel write segfault reports whose text an
// unprivileged user chose, as a hostile local user would to forge kernel
// log messages.
type Segfaulter struct {
	t   testing.TB
	dir string
	bin string
}

// NewSegfaulter compiles the faulting program (gcc) into a directory that
// uid NobodyUID can reach. It skips the test (fails it under CI) without
// root or gcc, or when the kernel does not report unhandled segfaults
// (sysctl debug.exception-trace).
func NewSegfaulter(t testing.TB) *Segfaulter {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "gcc", "gcc")
	if b, err := os.ReadFile("/proc/sys/debug/exception-trace"); err == nil && len(b) > 0 && b[0] == '0' {
		require(t, "the kernel does not log segfaults (sysctl debug.exception-trace = 0)")
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
	src := filepath.Join(dir, "faulter.c")
	if err := os.WriteFile(src, []byte(faulterSource), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "faulter")
	if out, err := exec.Command("gcc", "-O0", "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling the faulting program: %v\n%s", err, out)
	}
	return &Segfaulter{t: t, dir: dir, bin: bin}
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
	if err := os.Chmod(path, 0o755); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(path, comm)
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
