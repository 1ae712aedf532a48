package watch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/sys"
	"github.com/fshealth/fshealth/internal/testutil"
)

// refuseLookupsEnv makes TestFollowFallsBackWhenLookupsRefused, run again
// as a child with it set, put itself under a seccomp filter first.
const refuseLookupsEnv = "FSHEALTH_TEST_REFUSE_MOUNT_LOOKUPS"

// TestFollowFallsBackWhenLookupsRefused: where listmount(2) and
// statmount(2) are refused with EPERM (a seccomp filter without them, as the
// systemd unit's is on systemd versions that do not know them), the watcher
// follows mounts with mountinfo notifications instead, and does follow. The
// test runs itself again in a child process, which puts itself under such a
// filter (the filter cannot be taken off again).
func TestFollowFallsBackWhenLookupsRefused(t *testing.T) {
	testutil.RequireRoot(t)
	if os.Getenv(refuseLookupsEnv) == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestFollowFallsBackWhenLookupsRefused$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), refuseLookupsEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFollowFallsBackWhenLookupsRefused") {
			t.Fatalf("the test under the seccomp filter: %v\n%s", err, out)
		}
		return
	}
	testutil.CheckNoLeaks(t)
	if err := refuseMountLookups(); err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Listmount(nil); !errors.Is(err, unix.EPERM) {
		t.Fatalf("listmount under the filter: %v, want EPERM", err)
	}
	f := startFollowing(t, FollowAuto)
	if got := f.w.Following(); got != FollowMountinfo {
		t.Fatalf("following with %q, want %q", got, FollowMountinfo)
	}
	im := testutil.NewExt4(t, 0)
	f.change("adding the new file system", func(c Change) bool { return has(c.Added, im.Dev) != nil })
	if err := im.TriggerError("refused lookups"); err != nil {
		t.Fatal(err)
	}
	e := f.nextFor(im.Dev)
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkFS(t, e, im)
}

// refuseMountLookups puts every thread of this process under a seccomp
// filter that makes listmount(2) and statmount(2) fail with EPERM and
// allows everything else.
func refuseMountLookups() error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("the test's seccomp filter is written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	// struct seccomp_data: int nr; __u32 arch; ...
	const (
		offNR   = 0
		offArch = 4
		ld      = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq     = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret     = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		/* 0 */ {Code: ld, K: offArch},
		/* 1 */ {Code: jeq, K: arch, Jf: 3}, // another ABI: allow
		/* 2 */ {Code: ld, K: offNR},
		/* 3 */ {Code: jeq, K: uint32(unix.SYS_LISTMOUNT), Jt: 2},
		/* 4 */ {Code: jeq, K: uint32(unix.SYS_STATMOUNT), Jt: 1},
		/* 5 */ {Code: ret, K: unix.SECCOMP_RET_ALLOW},
		/* 6 */ {Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	// TSYNC: every thread of the process, not only the calling one.
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", errno)
	}
	runtime.KeepAlive(prog)
	return nil
}
