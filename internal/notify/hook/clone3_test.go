package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
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
	if err := testutil.RefuseSyscalls(unix.ENOSYS, unix.SYS_CLONE3); err != nil {
		t.Fatal(err)
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
