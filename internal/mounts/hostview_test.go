package mounts

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

// TestHostViewFixture: in a systemd sandbox's mount namespace the root file
// system is also at /tmp, /var/tmp and /var/lib/fshealth; the host's view
// has it at / only. A file system the host has not mounted keeps this
// namespace's mount points; Mounts never change.
func TestHostViewFixture(t *testing.T) {
	h, err := OpenHostView("testdata/hostview")
	if err != nil || h == nil {
		t.Fatalf("OpenHostView: %v, %v", h, err)
	}
	ms, err := ReadMountinfo("testdata/hostview/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fss := Group(ms)
	want := map[string][]string{
		"259:1": {"/"},
		"259:2": {"/srv/data", "/mnt/backup"},
		"7:3":   {"/var/lib/fshealth/scratch"}, // mounted in the sandbox only
		"0:21":  {"/proc"},
	}
	for _, f := range fss {
		own := slices.Clone(f.Mountpoints)
		got := h.Apply(f)
		if !reflect.DeepEqual(got.Mountpoints, want[f.Dev()]) {
			t.Errorf("%s: host mount points %q, want %q", f.Dev(), got.Mountpoints, want[f.Dev()])
		}
		if !reflect.DeepEqual(f.Mountpoints, own) || !reflect.DeepEqual(got.Mounts, f.Mounts) || got.MarkPath() != f.MarkPath() {
			t.Errorf("%s: Apply changed the file system's own mounts: %q → %q, mark path %s → %s",
				f.Dev(), own, f.Mountpoints, f.MarkPath(), got.MarkPath())
		}
	}
	var none *HostView
	if got := none.Apply(fss[0]); got != fss[0] || none.Refresh() != nil {
		t.Errorf("a nil HostView changed %v", got)
	}

	// PID 1's mount namespace is this one's: nothing to translate.
	same := t.TempDir()
	for _, d := range []string{"self/ns", "1/ns"} {
		if err := os.MkdirAll(filepath.Join(same, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(same, "self/ns/mnt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../self/ns/mnt", filepath.Join(same, "1/ns/mnt")); err != nil {
		t.Fatal(err)
	}
	if h, err := OpenHostView(same); h != nil || err != nil {
		t.Errorf("in PID 1's namespace: %v, %v; want nil, nil", h, err)
	}
	// An unreadable host table is an error naming it.
	if _, err := OpenHostView(t.TempDir()); err == nil || !strings.Contains(err.Error(), "1/mountinfo") {
		t.Errorf("no host table: %v", err)
	}
}

// hostViewChildEnv runs TestHostViewReal's child part.
const (
	hostViewChildEnv = "FSHEALTH_TEST_HOSTVIEW_DIR"
	hostViewPIDEnv   = "FSHEALTH_TEST_HOSTVIEW_PID"
)

// TestHostViewReal: a process in a mount namespace of its own (made with
// unshare, slave propagation, as systemd makes a service's) bind-mounts a
// directory, as systemd does for a sandbox: its own view has the new mount
// point, the host view does not; a bind mount the host makes afterwards
// appears in the host view once refreshed. The host is the test's own mount namespace
// (PID 1's may not be enterable, as in containers).
func TestHostViewReal(t *testing.T) {
	if dir := os.Getenv(hostViewChildEnv); dir != "" {
		hostViewChild(t, dir)
		return
	}
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "unshare", "util-linux")
	dir := t.TempDir()
	for _, d := range []string{"a", "sandbox", "host"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", os.Args[0], "-test.run", "^TestHostViewReal$", "-test.v")
	cmd.Env = append(os.Environ(), hostViewChildEnv+"="+dir, hostViewPIDEnv+"="+strconv.Itoa(os.Getpid()))
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// The child has checked its first view: the host bind-mounts a
	// directory (in PID 1's namespace), for the child to see.
	waitFile(t, filepath.Join(dir, "first-done"), &out)
	host := filepath.Join(dir, "host")
	if err := unix.Mount(filepath.Join(dir, "a"), host, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(host, 0); err != nil {
			t.Errorf("unmounting %s: %v", host, err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "host-mounted"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child: %v\n%s", err, out.String())
	}
	t.Logf("child:\n%s", out.String())
}

// hostViewChild is TestHostViewReal's part in the child's namespace.
func hostViewChild(t *testing.T, dir string) {
	sandbox := filepath.Join(dir, "sandbox")
	if err := unix.Mount(filepath.Join(dir, "a"), sandbox, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	h, err := openHostView("/proc", os.Getenv(hostViewPIDEnv))
	if err != nil || h == nil {
		t.Fatalf("OpenHostView in a namespace of its own: %v, %v", h, err)
	}
	own := ownFilesystem(t, sandbox)
	if !slices.Contains(own.Mountpoints, sandbox) {
		t.Fatalf("own mount points %q lack %s", own.Mountpoints, sandbox)
	}
	got := h.Apply(own).Mountpoints
	if slices.Contains(got, sandbox) || len(got) == 0 {
		t.Fatalf("host mount points %q (own %q): want the host's, without %s", got, own.Mountpoints, sandbox)
	}
	if err := os.WriteFile(filepath.Join(dir, "first-done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(dir, "host-mounted"), nil)
	host := filepath.Join(dir, "host")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := h.Refresh(); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(h.Apply(ownFilesystem(t, sandbox)).Mountpoints, host) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host's new mount point %s is not in the host view: %q", host, h.Apply(ownFilesystem(t, sandbox)).Mountpoints)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ownFilesystem is the file system that path is on, in this namespace's
// mount table.
func ownFilesystem(t *testing.T, path string) *Filesystem {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	ms, err := ReadMountinfo("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range Group(ms) {
		if f.Major == unix.Major(st.Dev) && f.Minor == unix.Minor(st.Dev) {
			return f
		}
	}
	t.Fatalf("%s: device %d:%d not in the mount table", path, unix.Major(st.Dev), unix.Minor(st.Dev))
	return nil
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			if out != nil {
				t.Fatalf("%s did not appear; the child:\n%s", path, out.String())
			}
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
