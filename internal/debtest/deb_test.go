// Package debtest_test tests the Debian package `make deb` builds: lintian
// finds no error in it, and installed with dpkg into a fresh minimal Debian
// root (debootstrap --variant=minbase, plus systemd to verify the unit, of
// the machine's own Debian release from the mirror its apt uses) it runs,
// its unit verifies, its conffile changes nothing, and purging it leaves
// nothing behind.
//
// The root is made once and cached in /var/cache/fshealth-test
// ($FSHEALTH_TEST_CACHE); each run installs into an overlay of it that goes
// with the test.
package debtest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// command runs name with args and returns its combined output and error.
func command(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// mustCommand runs a command and fails the test if it fails.
func mustCommand(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := command(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// buildDeb runs `make deb` and returns the package's path.
func buildDeb(t *testing.T) string {
	t.Helper()
	testutil.RequireCommand(t, "make", "make")
	out := mustCommand(t, "make", "-s", "-C", "../..", "deb")
	m := regexp.MustCompile(`(?m)^(build/fshealth_[^/\s]+_[a-z0-9]+\.deb)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("make deb did not name the package it wrote:\n%s", out)
	}
	return filepath.Join("../..", m[1])
}

// cachedRoot returns a minimal Debian root of the host's release with
// systemd, making it with debootstrap the first time.
func cachedRoot(t *testing.T) string {
	t.Helper()
	suite, mirror := testutil.HostDebian(t)
	return testutil.DebianRoot(t, suite, mirror, "minbase-systemd", "systemd", "usr/bin/systemd-analyze")
}

// overlayRoot mounts a writable overlay of the cached root, with /proc, for
// this test only.
func overlayRoot(t *testing.T, lower string) string {
	t.Helper()
	dir := t.TempDir()
	upper, work, root := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	for _, d := range []string{upper, work, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", root, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatalf("mounting an overlay of %s: %v", lower, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", root, err)
		}
	})
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(root, "proc"), unix.MNT_DETACH) })
	return root
}

func TestDebianPackage(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "dpkg-deb", "dpkg")
	testutil.RequireCommand(t, "lintian", "lintian")
	deb := buildDeb(t)
	version := strings.TrimSpace(mustCommand(t, "dpkg-deb", "-f", deb, "Version"))
	arch := strings.TrimSpace(mustCommand(t, "dpkg", "--print-architecture"))
	if want := "fshealth_" + version + "_" + arch + ".deb"; filepath.Base(deb) != want {
		t.Errorf("package file %s, want %s", filepath.Base(deb), want)
	}

	// lintian: no error (warnings are shown in the log). Its manual page
	// check runs man(1), which leaves a database (mldbm-elf-*) in $TMPDIR:
	// the test's own, removed with it.
	lint := exec.Command("lintian", "--fail-on", "error", deb)
	lint.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	outb, err := lint.CombinedOutput()
	out := string(outb)
	t.Logf("lintian:\n%s", out)
	if err != nil || regexp.MustCompile(`(?m)^E: `).MatchString(out) {
		t.Errorf("lintian finds errors (%v):\n%s", err, out)
	}

	// The package's contents, as dpkg-deb lists them.
	list := mustCommand(t, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"-rwxr-xr-x root/root .* ./usr/bin/fshealth\n",
		"-rw-r--r-- root/root .* ./lib/systemd/system/fshealth.service\n",
		"-rw-r--r-- root/root .* ./etc/fshealth/fshealth.toml\n",
		"drwx------ root/root .* ./var/lib/fshealth/\n",
		"./usr/share/man/man8/fshealth.8.gz\n", "./usr/share/man/man8/fshealth-check.8.gz\n",
		"./usr/share/man/man5/fshealth.toml.5.gz\n",
		"./usr/share/bash-completion/completions/fshealth\n", "./usr/share/zsh/vendor-completions/_fshealth\n",
		"./usr/share/fish/vendor_completions.d/fshealth.fish\n",
		"-rw-r--r-- root/root .* ./usr/lib/systemd/catalog/fshealth.catalog\n",
	} {
		if !regexp.MustCompile(want).MatchString(list) {
			t.Errorf("the package lacks %q:\n%s", want, list)
		}
	}
	ctrl := t.TempDir()
	mustCommand(t, "dpkg-deb", "-e", deb, ctrl)
	if b, err := os.ReadFile(filepath.Join(ctrl, "conffiles")); err != nil || string(b) != "/etc/fshealth/fshealth.toml\n" {
		t.Errorf("conffiles: %q %v", b, err)
	}

	root := overlayRoot(t, cachedRoot(t))
	out = mustCommand(t, "dpkg", "--root="+root, "-i", deb)
	t.Logf("dpkg -i:\n%s", out)

	// The binary runs in the fresh root: static, stamped.
	got := mustCommand(t, "chroot", root, "/usr/bin/fshealth", "--version")
	if !regexp.MustCompile(`^fshealth ` + regexp.QuoteMeta(version) + `\ncommit: [0-9a-f]{40}\nbuilt: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n`).MatchString(got) {
		t.Errorf("fshealth --version in the root:\n%s", got)
	}
	// The unit runs /usr/bin/fshealth and verifies with the root's systemd.
	unit, err := os.ReadFile(filepath.Join(root, "lib/systemd/system/fshealth.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("\nExecStart=/usr/bin/fshealth daemon\n")) || bytes.Contains(unit, []byte("/usr/local")) {
		t.Errorf("the installed unit does not run /usr/bin/fshealth:\n%s", unit)
	}
	if out, err := command("chroot", root, "systemd-analyze", "verify", "fshealth.service"); err != nil || strings.Contains(out, "fshealth") {
		t.Errorf("systemd-analyze verify in the root: %v\n%s", err, out)
	}
	// postinst enabled it the Debian way (no systemd runs in the root:
	// nothing was started).
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/fshealth.service")
	if l, err := os.Readlink(wants); err != nil || l != "/lib/systemd/system/fshealth.service" {
		t.Errorf("not enabled: %s -> %q (%v)", wants, l, err)
	}
	// The conffile changes nothing: the same configuration as none.
	if err := os.WriteFile(filepath.Join(root, "tmp/empty.toml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	withConffile := mustCommand(t, "chroot", root, "/usr/bin/fshealth", "check-config", "--config", "/etc/fshealth/fshealth.toml", "--show")
	withNothing := mustCommand(t, "chroot", root, "/usr/bin/fshealth", "check-config", "--config", "/tmp/empty.toml", "--show")
	withNothing = strings.ReplaceAll(withNothing, "/tmp/empty.toml", "/etc/fshealth/fshealth.toml") // the header names the file
	if withConffile != withNothing || !strings.Contains(withConffile, "[[rule]]") {
		t.Errorf("the conffile changes the configuration:\n%s\nwant\n%s", withConffile, withNothing)
	}
	if fi, err := os.Stat(filepath.Join(root, "var/lib/fshealth")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("/var/lib/fshealth: %v %v", fi, err)
	}
	if out := mustCommand(t, "dpkg", "--root="+root, "-S", "/var/lib/fshealth"); strings.TrimSpace(out) != "fshealth: /var/lib/fshealth" {
		t.Errorf("dpkg -S /var/lib/fshealth: %q", out)
	}
	// The man pages render in the root's man (if it has one) and the
	// completion is found by bash's loader's path.
	if _, err := os.Stat(filepath.Join(root, "usr/share/bash-completion/completions/fshealth")); err != nil {
		t.Error(err)
	}

	// systemd's trigger built the journal's catalog with fshealth's
	// entries, which journalctl -x shows below fshealth's messages.
	if out := mustCommand(t, "chroot", root, "journalctl", "--list-catalog", "8d9a4e9cc3304a7c8d6942249e608e0f"); !strings.Contains(out, "fshealth: File system error") {
		t.Errorf("the catalog was not installed: journalctl --list-catalog: %q", out)
	}

	// No daemon has run: fshealth check is UNKNOWN, not OK.
	if out, err := command("chroot", root, "/usr/bin/fshealth", "check"); !strings.HasPrefix(out, "FSHEALTH UNKNOWN - ") || exitCode(err) != 3 {
		t.Errorf("fshealth check in the fresh root: %v: %s", err, out)
	}

	// Reinstalling (an upgrade to the same version) keeps it enabled.
	mustCommand(t, "dpkg", "--root="+root, "-i", deb)
	if _, err := os.Lstat(wants); err != nil {
		t.Errorf("after reinstalling: %v", err)
	}
	// Purging leaves nothing behind.
	mustCommand(t, "chroot", root, "mkdir", "-p", "/var/lib/fshealth/x")
	out = mustCommand(t, "dpkg", "--root="+root, "--purge", "fshealth")
	t.Logf("dpkg --purge:\n%s", out)
	for _, p := range []string{"usr/bin/fshealth", "lib/systemd/system/fshealth.service", "etc/fshealth", "var/lib/fshealth", "etc/systemd/system/multi-user.target.wants/fshealth.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("after purge /%s is still there", p)
		}
	}
}

// exitCode is the exit status in err (0 if nil, -1 if it did not exit).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
