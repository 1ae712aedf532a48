package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// noClone3Env runs TestHookWithoutClone3's child part.
const noClone3Env = "FSHEALTH_TEST_NO_CLONE3"

// TestHookWithoutClone3: where clone3 is refused with ENOSYS, as systemd's
// seccomp filter does in a unit with RestrictNamespaces=, a hook with
// isolation "cgroup" still runs (with its process group only), and that is
// logged once. The child process installs such a filter (seccomp, all
// threads) and runs the hook.
func TestHookWithoutClone3(t *testing.T) {
	if os.Getenv(noClone3Env) == "1" {
		noClone3Child(t)
		return
	}
	requireCgroups(t)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHookWithoutClone3$", "-test.v")
	cmd.Env = append(os.Environ(), noClone3Env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHookWithoutClone3") {
		t.Fatalf("the child under the clone3 filter: %v\n%s", err, out)
	}
}

func noClone3Child(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	// nr == clone3 ? ERRNO(ENOSYS) : ALLOW
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_CLONE3},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog))); e != 0 {
		t.Fatalf("seccomp: %v", e)
	}
	dir := t.TempDir()
	ran := filepath.Join(t.TempDir(), "ran")
	writeHook(t, dir, "h", "#!/bin/sh\necho ran >> "+ran+"\n")
	log, lb := newLogger()
	n := newNotifier(t, Config{Dir: dir, Isolation: IsolationCgroup, Logger: log, Timeout: 10 * time.Second})
	for i := 0; i < 2; i++ {
		if err := n.Send(context.Background(), testAlert("/x")); err != nil {
			t.Fatalf("Send: %v\n%s", err, lb.String())
		}
	}
	if b, _ := os.ReadFile(ran); string(b) != "ran\nran\n" {
		t.Errorf("the hook ran: %q, want twice", b)
	}
	if n := strings.Count(lb.String(), "clone3 is refused"); n != 1 {
		t.Errorf("the refusal is logged %d times, want once:\n%s", n, lb.String())
	}
}
