package actions

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/cgroup"
	"github.com/fshealth/fshealth/internal/testutil"
)

// noClone3Env runs TestProgramWithoutClone3's child part.
const noClone3Env = "FSHEALTH_TEST_NO_CLONE3"

// TestProgramWithoutClone3: where clone3 is refused with ENOSYS, as
// systemd's seccomp filter does in a unit with RestrictNamespaces= (the
// shipped unit), an action's program still runs (with its process group
// only), and that is logged once. The child process installs such a filter
// (seccomp, all threads) and runs a program.
func TestProgramWithoutClone3(t *testing.T) {
	if os.Getenv(noClone3Env) == "1" {
		noClone3Child(t)
		return
	}
	testutil.RequireRoot(t) // cgroups
	if _, err := cgroup.Default(); err != nil {
		testutil.Skip(t, testutil.Missing, "no usable cgroup v2: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProgramWithoutClone3$", "-test.v")
	cmd.Env = append(os.Environ(), noClone3Env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestProgramWithoutClone3") {
		t.Fatalf("the child under the clone3 filter: %v\n%s", err, out)
	}
}

func noClone3Child(t *testing.T) {
	if err := testutil.RefuseSyscalls(unix.ENOSYS, unix.SYS_CLONE3); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	for i := 0; i < 2; i++ {
		p := runProgram(context.Background(), []string{"/bin/echo", "ran"}, nil, log)
		if p.startErr != nil || p.exitCode != 0 || p.output != "ran\n" {
			t.Fatalf("the program: start %v, exit %d, output %q\n%s", p.startErr, p.exitCode, p.output, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "clone3 is refused"); n != 1 {
		t.Errorf("the refusal is logged %d times, want once:\n%s", n, logs.String())
	}
}
