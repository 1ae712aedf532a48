package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/loopfs"
)

func TestMain(m *testing.M) { MainInMountNamespace(m) }

// fakeTB records Skip and Fatal instead of stopping the goroutine.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...) }

func TestRequireSkipsOrFailsInCI(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"", false}, {"false", false}, {"true", true}, {"1", true}} {
		t.Setenv("CI", tc.ci)
		f := &fakeTB{}
		RequireCommand(f, "no-such-program-fshealth", "no-such-package")
		if f.failed != tc.wantFail || f.skipped == tc.wantFail {
			t.Errorf("CI=%q: skipped %v failed %v, want failed %v", tc.ci, f.skipped, f.failed, tc.wantFail)
		}
		for _, want := range []string{"no-such-program-fshealth", "Debian package no-such-package"} {
			if !strings.Contains(f.msg, want) {
				t.Errorf("CI=%q: message %q does not mention %q", tc.ci, f.msg, want)
			}
		}
	}
	f := &fakeTB{}
	RequireCommand(f, "sh", "dash")
	if f.skipped || f.failed {
		t.Errorf("RequireCommand sh: %s", f.msg)
	}
}

// TestHelperRequireRoot is run by TestRequireRootAsNonRoot as an
// unprivileged user.
func TestHelperRequireRoot(t *testing.T) {
	if os.Getenv("TESTUTIL_HELPER") == "" {
		return // only meaningful when run by TestRequireRootAsNonRoot
	}
	if os.Getenv(ReexecEnv) != "" {
		t.Errorf("re-executed in a mount namespace although not root")
	}
	RequireRoot(t)
	t.Log("RequireRoot returned")
}

func TestRequireRootAsNonRoot(t *testing.T) {
	RequireRoot(t)
	// Copy the test binary where user nobody can run it.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "testutil.test")
	copyFile(t, exe, bin)
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(bin, "-test.run=^TestHelperRequireRoot$", "-test.v")
		cmd.Dir = dir
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, ReexecEnv+"=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(env, "TESTUTIL_HELPER=1", "CI="+ci)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		t.Logf("CI=%q: %v\n%s", ci, err, out)
		if !strings.Contains(string(out), "needs root: mounts loop devices and uses fanotify") {
			t.Errorf("CI=%q: output does not say why root is needed", ci)
		}
		if strings.Contains(string(out), "RequireRoot returned") {
			t.Errorf("CI=%q: RequireRoot let an unprivileged test run on", ci)
		}
		if ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP")) {
			t.Errorf("CI unset: got %v, want a skipped test and success", err)
		}
		if ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL")) {
			t.Errorf("CI=true: got %v, want a failed test", err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInPrivateMountNamespace(t *testing.T) {
	RequireRoot(t)
	outer := os.Getenv(ReexecEnv)
	if outer == "" {
		t.Fatalf("%s not set: the tests were not re-executed", ReexecEnv)
	}
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if own == outer {
		t.Errorf("mount namespace %s is the outer one", own)
	}
	parent, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	if parent != outer {
		t.Errorf("parent's mount namespace %s, want %s", parent, outer)
	}
	// No mount may propagate out: none is shared with a peer group.
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), " shared:") {
			t.Errorf("shared mount in the test namespace: %s", sc.Text())
		}
	}
}

func TestNewExt4(t *testing.T) {
	CheckNoLeaks(t)
	im := NewExt4(t, 0)
	if !im.Mounted() || im.FSType != "ext4" || filepath.Base(im.Mountpoint) != "mnt" || filepath.Dir(im.Mountpoint) != filepath.Dir(im.File) {
		t.Fatalf("NewExt4: %+v", im)
	}
	if st, err := os.Stat(im.File); err != nil || st.Size() != 64<<20 {
		t.Errorf("image %s: %v, want 64 MiB", im.File, err)
	}
	if _, err := os.Stat(filepath.Join(im.SysfsDir(), "errors_count")); err != nil {
		t.Error(err)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == im.Mountpoint {
			found = true
		}
	}
	if !found {
		t.Errorf("%s not in /proc/self/mountinfo", im.Mountpoint)
	}
	// mountinfo leaves out default options; /proc/fs/ext4 shows them all.
	opts, err := os.ReadFile("/proc/fs/ext4/" + im.Name + "/options")
	if err != nil || !strings.Contains(string(opts), "errors=continue") {
		t.Errorf("mount options %q (%v), want errors=continue", opts, err)
	}
	// The mount is invisible outside the test's mount namespace.
	outside, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(outside), im.Mountpoint) {
		t.Errorf("%s visible in the parent's mount namespace", im.Mountpoint)
	}
}

func TestNewImageOtherTypes(t *testing.T) {
	for _, fstype := range []string{"xfs", "btrfs"} {
		t.Run(fstype, func(t *testing.T) {
			CheckNoLeaks(t)
			im := NewImage(t, fstype, 512<<20, "")
			if err := os.WriteFile(filepath.Join(im.Mountpoint, "x"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLeaks(t *testing.T) {
	RequireRoot(t)
	RequireCommand(t, "mkfs.ext4", "e2fsprogs")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	im, err := loopfs.Create(dir, "ext4", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Remove()
	if l := Leaks(dir); len(l) != 0 {
		t.Errorf("leaks before mounting: %q", l)
	}
	if err := im.Mount(filepath.Join(dir, "mnt with space"), ""); err != nil {
		t.Fatal(err)
	}
	l := Leaks(dir)
	if len(l) != 2 || !strings.Contains(strings.Join(l, "\n"), "mount on "+dir+"/mnt with space") || !strings.Contains(strings.Join(l, "\n"), im.Dev+" attached to "+im.File) {
		t.Errorf("leaks while mounted: %q, want the mount and the loop device", l)
	}
	if err := im.Remove(); err != nil {
		t.Fatal(err)
	}
	if l := Leaks(dir); len(l) != 0 {
		t.Errorf("leaks after Remove: %q", l)
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`/a/b`:               "/a/b",
		`/mnt\040with\040sp`: "/mnt with sp",
		`/t\011ab\134x`:      "/t\tab\\x",
		`/odd\04`:            `/odd\04`,
		`/end\`:              `/end\`,
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}
