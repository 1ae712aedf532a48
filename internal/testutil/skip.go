package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Why says why a test cannot run on this machine, which decides what
// CI=true makes of it.
type Why int

const (
	// Missing is something this machine could provide and does not: root,
	// a program, a kernel module that is installed but not loaded, cgroup
	// v2, an opt-in setting. Under CI=true the test fails instead of
	// skipping: a skip there would hide a broken test environment.
	Missing Why = iota
	// KernelLacks is a feature the running kernel does not have (too old,
	// or built without it): no setting of the host can provide it. The
	// test skips under CI=true too; the kernel matrix (go run ./matrix)
	// runs it on kernels that have the feature and, for a feature of a
	// kernel version, matrix/testset.go declares it (Needs), so that a
	// skip on a kernel that has it fails there.
	KernelLacks
	// NotApplicable is a test about something this machine is not (another
	// architecture or byte order). The test skips under CI=true too.
	NotApplicable
)

// String names w for skip messages.
func (w Why) String() string {
	switch w {
	case Missing:
		return "missing"
	case KernelLacks:
		return "kernel lacks it"
	case NotApplicable:
		return "not applicable"
	}
	return fmt.Sprintf("Why(%d)", int(w))
}

// Skip skips t with the reason (format and args, as for t.Skipf), saying
// why; under CI=true a Missing reason fails the test instead. It is the one
// place fshealth's tests skip: TestSkipsGoThroughSkip fails on any other
// call of Skip, Skipf or SkipNow in the tree.
func Skip(t testing.TB, why Why, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	switch why {
	case KernelLacks, NotApplicable:
		t.Skipf("%s (%s)", reason, why)
	default:
		if InCI() {
			t.Fatal(reason + " (CI=true: failing instead of skipping)")
			return
		}
		t.Skip(reason)
	}
}

// RequireModule skips or fails t unless the kernel module (as modprobe
// names it: "scsi_debug") is loaded, which the caller tells (loaded): in a
// kernel matrix guest, which loads the modules the tests need, it fails;
// when the running kernel has the module installed but not loaded it is
// Missing (modprobe it); when the kernel has no such module, KernelLacks.
func RequireModule(t testing.TB, module string, loaded bool) {
	t.Helper()
	if loaded {
		return
	}
	release := kernelRelease()
	switch {
	case InMatrixGuest():
		t.Fatalf("kernel %s in the kernel matrix guest has no %s loaded: matrix/testset.go should load it", release, module)
	case moduleAvailable(release, module):
		Skip(t, Missing, "needs kernel module %s: kernel %s has it, not loaded (modprobe %s)", module, release, module)
	default:
		Skip(t, KernelLacks, "needs kernel module %s, which kernel %s lacks (none under /lib/modules/%s); the kernel matrix guests load it", module, release, release)
	}
}

// moduleAvailable reports whether kernel release has module, as a file
// (modules.dep) or built in (modules.builtin); "_" and "-" are the same.
func moduleAvailable(release, module string) bool {
	norm := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	want := norm(module)
	for _, list := range []string{"modules.dep", "modules.builtin"} {
		b, err := os.ReadFile(filepath.Join("/lib/modules", release, list))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			p, _, _ := strings.Cut(line, ":")
			base, _, _ := strings.Cut(filepath.Base(p), ".ko")
			if base != "" && norm(base) == want {
				return true
			}
		}
	}
	return false
}
