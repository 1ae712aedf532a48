package cli_test

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersion: --version prints the version, commit and build date the
// build stamped (as the Makefile does, with -ldflags -X), and without a
// stamp says "dev" and "unknown" rather than inventing them.
func TestVersion(t *testing.T) {
	stamped := filepath.Join(t.TempDir(), "fshealth")
	const pkg = "github.com/fshealth/fshealth/internal/cli"
	ldflags := "-X " + pkg + ".Version=1.2.3~rc1 -X " + pkg + ".Commit=0123456789ab -X " + pkg + ".Date=2026-12-06T10:00:00Z"
	if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", stamped, "github.com/fshealth/fshealth/cmd/fshealth").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "--version").CombinedOutput()
	want := "fshealth 1.2.3~rc1\ncommit: 0123456789ab\nbuilt: 2026-12-06T10:00:00Z\ngo: " + runtime.Version() + " linux/" + runtime.GOARCH + "\n"
	if err != nil || string(out) != want {
		t.Errorf("stamped --version: %v\n%q\nwant\n%q", err, out, want)
	}
	out, err = exec.Command(binary, "--version").CombinedOutput()
	if err != nil || !regexp.MustCompile(`^fshealth (dev|v[0-9][^\n]*)\ncommit: ([0-9a-f]+(-dirty)?|unknown)\nbuilt: [^\n]+\ngo: go`).Match(out) {
		t.Errorf("unstamped --version: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "1.2.3") {
		t.Errorf("unstamped --version: %s", out)
	}
}
