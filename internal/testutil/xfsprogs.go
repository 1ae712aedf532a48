package testutil

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// XFSProgs is a newer xfsprogs than Debian 12's 6.1, which can neither
// make nor read parent pointers: Debian 13's (6.13), in a minimal Debian
// root made once with debootstrap and cached in /var/cache/fshealth-test
// ($FSHEALTH_TEST_CACHE), like internal/debtest's roots. Its programs run
// on the host through the root's own dynamic loader and libraries; nothing
// is mounted or chrooted.
type XFSProgs struct {
	root string
	// loader is the dynamic loader and its arguments, to go before a
	// program of the root.
	loader []string
}

// Command returns the command line of the root's program prog (e.g.
// "xfs_db") with args.
func (x *XFSProgs) Command(prog string, args ...string) []string {
	return append(append(append([]string{}, x.loader...), filepath.Join(x.root, "usr/sbin", prog)), args...)
}

// Run runs the root's program prog and fails the test if it fails.
func (x *XFSProgs) Run(t testing.TB, prog string, args ...string) string {
	t.Helper()
	c := x.Command(prog, args...)
	out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// NewXFSProgs returns Debian 13's xfsprogs, making its root the first time.
func NewXFSProgs(t testing.TB) *XFSProgs {
	t.Helper()
	RequireRoot(t)
	var triplet, loader string
	switch runtime.GOARCH {
	case "amd64":
		triplet, loader = "x86_64-linux-gnu", "ld-linux-x86-64.so.2"
	case "arm64":
		triplet, loader = "aarch64-linux-gnu", "ld-linux-aarch64.so.1"
	default:
		Skip(t, NotApplicable, "no Debian loader name known for %s", runtime.GOARCH)
	}
	_, mirror := HostDebian(t)
	root := DebianRoot(t, "trixie", mirror, "xfsprogs", "xfsprogs", "usr/sbin/xfs_db")
	lib := filepath.Join(root, "usr/lib", triplet)
	x := &XFSProgs{root: root, loader: []string{filepath.Join(lib, loader), "--library-path", lib}}
	if v := x.Run(t, "xfs_db", "-V"); !regexp.MustCompile(`^xfs_db version 6\.(1[0-9]|[2-9][0-9])\.`).MatchString(v) {
		t.Fatalf("the Debian 13 root's xfs_db is %q, not 6.10 or later", v)
	}
	return x
}

// RequireXFSParentPointers skips the test on a kernel older than 6.12, which
// cannot mount an XFS file system with parent pointers.
func RequireXFSParentPointers(t testing.TB) {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(rel, "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	if major < 6 || major == 6 && minor < 12 {
		Skip(t, KernelLacks, "Linux %s cannot mount XFS with parent pointers (6.12 or later)", rel)
	}
}
