package watch

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

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
	return testutil.RefuseSyscalls(unix.EPERM, unix.SYS_LISTMOUNT, unix.SYS_STATMOUNT)
}
