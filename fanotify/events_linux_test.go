package fanotify_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/testutil"
)

// The test binary doubles as a helper process (see TestMain): with
// helperEnv set it does what the mode says to the path in helperPathEnv,
// prints "ok" or the errno number, and exits.
const (
	helperEnv     = "FANOTIFY_TEST_HELPER"
	helperPathEnv = "FANOTIFY_TEST_HELPER_PATH"
)

// helper runs one helper mode: "open" opens path read-only, "read" also
// reads a byte from it, "mount" waits for a line on standard input, then
// mounts a tmpfs on path and unmounts it.
func helper(mode, path string) int {
	report := func(err error) int {
		var errno syscall.Errno
		switch {
		case err == nil:
			fmt.Print("ok")
		case errors.As(err, &errno):
			fmt.Print(int(errno))
		default:
			fmt.Print(err)
		}
		return 0
	}
	switch mode {
	case "open", "read":
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return report(err)
		}
		defer unix.Close(fd)
		if mode == "read" {
			_, err = unix.Read(fd, make([]byte, 1))
		}
		return report(err)
	case "mount":
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return report(err)
		}
		if err := unix.Mount("fanotify-helper", path, "tmpfs", 0, "size=1m"); err != nil {
			return report(err)
		}
		return report(unix.Unmount(path, 0))
	}
	fmt.Print("unknown helper mode ", mode)
	return 2
}

// helperCmd returns the test binary as a helper in mode on path.
func helperCmd(t *testing.T, mode, path string) *exec.Cmd {
	cmd := testutil.HelperCommand(t, 30*time.Second, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path)
	return cmd
}

// startHelper starts a helper and returns a function waiting for what it
// printed.
func startHelper(t *testing.T, mode, path string) (*exec.Cmd, func() string) {
	t.Helper()
	cmd := helperCmd(t, mode, path)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, func() string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper %s %s: %v (printed %q)", mode, path, err, out.String())
		}
		return out.String()
	}
}

// tmpfs mounts a fresh tmpfs on a temporary directory and returns it.
func tmpfs(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("fanotify-test", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// newGroupWith creates a group with c, skipping the test (as the kernel
// lacking it) when the kernel lacks a feature c uses.
func newGroupWith(t *testing.T, c fanotify.Config) *fanotify.Group {
	t.Helper()
	testutil.RequireRoot(t)
	g, err := fanotify.New(c)
	skipUnsupported(t, err)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// skipUnsupported skips the test if err says the kernel lacks a feature.
func skipUnsupported(t *testing.T, err error) {
	t.Helper()
	var ue *fanotify.UnsupportedError
	if errors.As(err, &ue) {
		if ue.Feature == "" || ue.MinVersion == "" {
			t.Fatalf("UnsupportedError without feature or version: %+v", ue)
		}
		testutil.Skip(t, testutil.KernelLacks, "%v", err)
	}
}

// readUntil reads events until done says it has what it waits for, or
// fails the test after 10 s. It returns every event read.
func readUntil(t *testing.T, g *fanotify.Group, done func([]fanotify.Event) bool) []fanotify.Event {
	t.Helper()
	var all []fanotify.Event
	buf := make([]byte, fanotify.ReadBufferSize)
	deadline := time.Now().Add(10 * time.Second)
	for !done(all) {
		g.SetReadDeadline(deadline)
		var err error
		all, err = g.ReadEvents(buf, all)
		if err != nil {
			t.Fatalf("after %d events %v: %v", len(all), all, err)
		}
	}
	return all
}

// fileID returns what a FID record about path must hold: its file system's
// fsid and name_to_handle_at(2)'s handle.
func fileID(t *testing.T, path string) fanotify.FileID {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return fanotify.FileID{
		FSID:   fanotify.FSID{st.Fsid.Val[0], st.Fsid.Val[1]},
		Handle: fanotify.Handle{Type: h.Type(), Bytes: h.Bytes()},
	}
}

func sameFID(a, b fanotify.FileID) bool {
	return a.FSID == b.FSID && a.Handle.Type == b.Handle.Type && bytes.Equal(a.Handle.Bytes, b.Handle.Bytes)
}

// masksOf ors the masks of the events that match.
func masksOf(evs []fanotify.Event, match func(*fanotify.Event) bool) fanotify.Mask {
	var m fanotify.Mask
	for i := range evs {
		if match(&evs[i]) {
			m |= evs[i].Mask
		}
	}
	return m
}

// TestDirectoryEntryEvents creates, modifies, renames and deletes entries on
// a tmpfs marked as a whole, in a group reporting file identifiers and
// names, and checks every record against name_to_handle_at(2).
func TestDirectoryEntryEvents(t *testing.T) {
	testutil.CheckNoLeaks(t)
	root := tmpfs(t)
	g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportDFIDNameTarget})
	mask := fanotify.Create | fanotify.Delete | fanotify.Move | fanotify.Rename | fanotify.Modify |
		fanotify.Attrib | fanotify.CloseWrite | fanotify.DeleteSelf | fanotify.OnDir
	if err := g.Mark(fanotify.TargetFilesystem, root, mask, 0); err != nil {
		t.Fatal(err)
	}
	rootID := fileID(t, root)

	// mkdir: a create event on a directory, named in root.
	sub := filepath.Join(root, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	subID := fileID(t, sub)
	named := func(dir fanotify.FileID, name string) func(*fanotify.Event) bool {
		return func(e *fanotify.Event) bool {
			return e.Records&fanotify.HasDirFID != 0 && e.Name == name && sameFID(e.DirFID, dir)
		}
	}
	evs := readUntil(t, g, func(evs []fanotify.Event) bool { return masksOf(evs, named(rootID, "sub")) != 0 })
	if m := masksOf(evs, named(rootID, "sub")); m != fanotify.Create|fanotify.OnDir {
		t.Errorf("mkdir: mask %v, want create|ondir", m)
	}
	for _, e := range evs {
		if e.FD != fanotify.NoFD || e.FDError != 0 || e.PID != int32(os.Getpid()) || e.Records != fanotify.HasFID|fanotify.HasDirFID ||
			!sameFID(e.FID, subID) {
			t.Errorf("mkdir: event %+v, want fd -1, our pid, the FID of sub", e)
		}
	}

	// A file written and closed, then chmod'ed.
	f := filepath.Join(sub, "f")
	if err := os.WriteFile(f, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, 0o600); err != nil {
		t.Fatal(err)
	}
	fID := fileID(t, f)
	want := fanotify.Create | fanotify.Modify | fanotify.CloseWrite | fanotify.Attrib
	evs = readUntil(t, g, func(evs []fanotify.Event) bool { return masksOf(evs, named(subID, "f")) == want })
	for _, e := range evs {
		if !named(subID, "f")(&e) || !sameFID(e.FID, fID) || e.Mask&fanotify.OnDir != 0 {
			t.Errorf("file: event %+v (%v), want events about sub/f", e, e.Mask)
		}
	}

	// rename sub/f to root/g: moved_from, moved_to and rename.
	g2 := filepath.Join(root, "g")
	if err := os.Rename(f, g2); err != nil {
		t.Fatal(err)
	}
	isRename := func(e *fanotify.Event) bool { return e.Mask.Has(fanotify.Rename) }
	evs = readUntil(t, g, func(evs []fanotify.Event) bool {
		return masksOf(evs, named(subID, "f")).Has(fanotify.MovedFrom) &&
			masksOf(evs, named(rootID, "g")).Has(fanotify.MovedTo) && masksOf(evs, isRename) != 0
	})
	for _, e := range evs {
		if !sameFID(e.FID, fID) {
			t.Errorf("rename: event %+v has the FID of another object", e)
		}
		if !isRename(&e) {
			continue
		}
		if e.Records != fanotify.HasFID|fanotify.HasOldName|fanotify.HasNewName || e.Mask != fanotify.Rename ||
			e.OldName != "f" || !sameFID(e.OldDirFID, subID) || e.NewName != "g" || !sameFID(e.NewDirFID, rootID) {
			t.Errorf("rename event %+v, want old sub/f, new g", e)
		}
	}

	// rmdir sub, rm g.
	if err := os.Remove(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g2); err != nil {
		t.Fatal(err)
	}
	evs = readUntil(t, g, func(evs []fanotify.Event) bool {
		return masksOf(evs, named(rootID, "g")).Has(fanotify.Delete) && masksOf(evs, named(rootID, "sub")).Has(fanotify.Delete|fanotify.OnDir)
	})
	// The directory's own delete_self names it as a DFID_NAME record with
	// the name "."; the file's carries its FID only.
	if m := masksOf(evs, named(subID, ".")); m != fanotify.DeleteSelf|fanotify.OnDir {
		t.Errorf("rmdir: delete_self events %v, want delete_self|ondir", m)
	}
	if m := masksOf(evs, func(e *fanotify.Event) bool { return e.Records == fanotify.HasFID && sameFID(e.FID, fID) }); !m.Has(fanotify.DeleteSelf) {
		t.Errorf("rm: events about the file alone %v, want delete_self", m)
	}
}

// TestIgnoreMarks checks that an ignore mark (FAN_MARK_IGNORE) silences a
// directory's entry events while a file system mark reports the others, the
// old ignored mask does the same for one file, and Flush removes marks.
func TestIgnoreMarks(t *testing.T) {
	testutil.CheckNoLeaks(t)
	root := tmpfs(t)
	quiet, loud := filepath.Join(root, "quiet"), filepath.Join(root, "loud")
	for _, d := range []string{quiet, loud} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportDFIDName})
	if err := g.Mark(fanotify.TargetFilesystem, root, fanotify.Create|fanotify.Modify, 0); err != nil {
		t.Fatal(err)
	}
	err := g.Mark(fanotify.TargetInode, quiet, fanotify.Create, fanotify.Ignore)
	if !errors.Is(err, fanotify.ErrIgnoreDir) || !errors.Is(err, syscall.EISDIR) {
		var me *fanotify.MarkError
		if errors.As(err, &me) {
			skipUnsupported(t, me.Reason)
		}
		t.Errorf("ignore mark on a directory without IgnoredSurviveModify: %v, want ErrIgnoreDir", err)
	}
	// Create is an event of the directory, Modify one of its children.
	if err := g.Mark(fanotify.TargetInode, quiet, fanotify.Create|fanotify.Modify|fanotify.EventOnChild, fanotify.Ignore|fanotify.IgnoredSurviveModify); err != nil {
		t.Fatal(err)
	}
	// The old form, on one file, kept across modifications.
	hush := filepath.Join(loud, "hush")
	if err := os.WriteFile(hush, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Mark(fanotify.TargetInode, hush, fanotify.Modify, fanotify.IgnoredMask|fanotify.IgnoredSurviveModify); err != nil {
		t.Fatal(err)
	}
	readUntil(t, g, func(evs []fanotify.Event) bool {
		return masksOf(evs, func(e *fanotify.Event) bool { return e.Name == "hush" }) != 0
	})

	for _, p := range []string{filepath.Join(quiet, "a"), hush, filepath.Join(loud, "b")} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Events are queued in order: once b is seen, a and hush would have been.
	evs := readUntil(t, g, func(evs []fanotify.Event) bool {
		return masksOf(evs, func(e *fanotify.Event) bool { return e.Name == "b" }) == fanotify.Create|fanotify.Modify
	})
	for _, e := range evs {
		if e.Name != "b" {
			t.Errorf("ignored event reported: %+v (%v)", e, e.Mask)
		}
	}

	// Unmark of an object without a mark, then Flush of the inode marks:
	// the ignore mark goes, the file system mark stays.
	if err := g.Unmark(fanotify.TargetInode, loud, fanotify.Create, 0); !errors.Is(err, fanotify.ErrNotMarked) {
		t.Errorf("Unmark of an unmarked directory: %v, want ErrNotMarked", err)
	}
	if err := g.Flush(fanotify.TargetInode); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(quiet, "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 && evs[0].Name == "c" })
	if err := g.Flush(fanotify.TargetFilesystem); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(loud, "d"), nil, 0o644)
	if n, err := g.Queued(); n != 0 || err != nil {
		t.Errorf("events queued after Flush: %d, %v", n, err)
	}
}

// permissionGroup creates a group of class c with an OpenPerm (or mask)
// mark on a new file and returns the group and the file.
func permissionGroup(t *testing.T, class fanotify.Class, mask fanotify.Mask, dir string) (*fanotify.Group, string) {
	t.Helper()
	g := newGroupWith(t, fanotify.Config{Class: class})
	file := filepath.Join(dir, "guarded")
	if err := os.WriteFile(file, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := g.Mark(fanotify.TargetInode, file, mask, 0)
	var me *fanotify.MarkError
	if errors.As(err, &me) {
		skipUnsupported(t, me.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	return g, file
}

// answer reads the permission event the helper cmd caused and answers r.
func answer(t *testing.T, g *fanotify.Group, cmd *exec.Cmd, file string, r fanotify.Response) (fanotify.Event, error) {
	t.Helper()
	evs := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 })
	if len(evs) != 1 {
		t.Fatalf("%d events %v, want one", len(evs), evs)
	}
	ev := evs[0]
	defer ev.Close()
	if ev.PID != int32(cmd.Process.Pid) || ev.FD < 0 || ev.FDError != 0 {
		t.Errorf("permission event %+v, want the helper's pid %d and a descriptor", ev, cmd.Process.Pid)
	}
	var st1, st2 unix.Stat_t
	if err := unix.Fstat(int(ev.FD), &st1); err != nil || unix.Stat(file, &st2) != nil || st1.Ino != st2.Ino {
		t.Errorf("event fd %d is not %s: %v", ev.FD, file, err)
	}
	return ev, g.Respond(&ev, r)
}

// TestPermissionEvents denies a helper's open, then allows the next one.
func TestPermissionEvents(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g, file := permissionGroup(t, fanotify.ClassContent, fanotify.OpenPerm, tmpfs(t))

	cmd, wait := startHelper(t, "open", file)
	ev, err := answer(t, g, cmd, file, fanotify.Deny)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Mask != fanotify.OpenPerm {
		t.Errorf("mask %v, want open_perm", ev.Mask)
	}
	if out := wait(); out != strconv.Itoa(int(syscall.EPERM)) {
		t.Errorf("denied open: helper printed %q, want EPERM", out)
	}
	if err := g.Respond(&ev, fanotify.Allow); err == nil || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("second answer to one event: %v, want ENOENT", err)
	}

	// Refused answers leave the event waiting: no response bit, and an
	// errno from a content (not pre-content) group.
	cmd, wait = startHelper(t, "open", file)
	ev, err = answer(t, g, cmd, file, 0)
	if err == nil || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "refuses response 0x0") {
		t.Errorf("response 0: %v, want EINVAL", err)
	}
	err = g.Respond(&ev, fanotify.DenyErrno(syscall.EIO))
	var ue *fanotify.UnsupportedError
	if !errors.Is(err, syscall.EINVAL) || errors.As(err, &ue) != kernelOlderThan(t, 6, 13) {
		t.Errorf("DenyErrno from a content group: %v, want EINVAL, an UnsupportedError before 6.14", err)
	}
	if err := g.Respond(&ev, fanotify.Allow); err != nil {
		t.Fatal(err)
	}
	if out := wait(); out != "ok" {
		t.Errorf("allowed open: helper printed %q, want ok", out)
	}
}

// kernelOlderThan reports whether the running kernel is older than
// major.minor.
func kernelOlderThan(t *testing.T, major, minor int) bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma < major || ma == major && mi < minor
}

// TestDenyErrno denies an open with EIO from a pre-content group.
func TestDenyErrno(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g, file := permissionGroup(t, fanotify.ClassPreContent, fanotify.OpenPerm, tmpfs(t))
	cmd, wait := startHelper(t, "open", file)
	ev, err := answer(t, g, cmd, file, fanotify.DenyErrno(syscall.EIO))
	if err != nil {
		g.Respond(&ev, fanotify.Deny) // release the helper
		wait()
		skipUnsupported(t, err)
		t.Fatal(err)
	}
	if out := wait(); out != strconv.Itoa(int(syscall.EIO)) {
		t.Errorf("open denied with EIO: helper printed %q", out)
	}
}

// TestPreAccess answers a FAN_PRE_ACCESS event, which carries the range
// the helper's read asks for, on ext4 (tmpfs has no pre-content hooks).
func TestPreAccess(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireRoot(t)
	im := testutil.NewExt4(t, 0)
	g, file := permissionGroup(t, fanotify.ClassPreContent, fanotify.PreAccess, im.Mountpoint)
	cmd, wait := startHelper(t, "read", file)
	ev, err := answer(t, g, cmd, file, fanotify.Allow)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Mask != fanotify.PreAccess || ev.Records != fanotify.HasRange || ev.RangeOffset != 0 || ev.RangeCount == 0 {
		t.Errorf("pre-access event %+v, want a range from 0", ev)
	}
	if out := wait(); out != "ok" {
		t.Errorf("allowed read: helper printed %q", out)
	}
}

// TestPIDFD checks the pidfd record: a descriptor of the process while it
// runs, FAN_NOPIDFD once it has gone, and with FAN_REPORT_FD_ERROR the
// errno instead.
func TestPIDFD(t *testing.T) {
	testutil.CheckNoLeaks(t)
	root := tmpfs(t)
	file := filepath.Join(root, "f")
	os.WriteFile(file, nil, 0o644)

	t.Run("running", func(t *testing.T) {
		g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportPIDFD})
		if err := g.Mark(fanotify.TargetInode, file, fanotify.Open, 0); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		ev := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 })[0]
		defer ev.Close()
		if ev.Records != fanotify.HasPIDFD || ev.PIDFD < 0 || ev.PIDFDError() != nil || ev.PID != int32(os.Getpid()) {
			t.Fatalf("event %+v, want a pidfd of this process", ev)
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", ev.PIDFD))
		if want := fmt.Sprintf("\nPid:\t%d\n", os.Getpid()); err != nil || !strings.Contains(string(info), want) {
			t.Errorf("pidfd %d fdinfo %q (%v), want %q", ev.PIDFD, info, err, want)
		}
		fd = int(ev.PIDFD)
		if err := ev.Close(); err != nil || ev.PIDFD != fanotify.NoPIDFD || ev.FD != fanotify.NoFD {
			t.Errorf("Close: %v, event %+v", err, ev)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("pidfd %d still open after Close: %v", fd, err)
		}
	})
	t.Run("exited", func(t *testing.T) {
		ev := pidfdOfExited(t, file, fanotify.Config{Report: fanotify.ReportPIDFD})
		if ev.PIDFD != fanotify.NoPIDFD || !errors.Is(ev.PIDFDError(), fanotify.ErrNoPIDFD) {
			t.Errorf("event %+v, want FAN_NOPIDFD", ev)
		}
	})
}

// pidfdOfExited returns the event of a helper's open of file, read after
// the helper has exited and been reaped, from a group created with c.
func pidfdOfExited(t *testing.T, file string, c fanotify.Config) fanotify.Event {
	t.Helper()
	g := newGroupWith(t, c)
	if err := g.Mark(fanotify.TargetInode, file, fanotify.Open, 0); err != nil {
		t.Fatal(err)
	}
	cmd, wait := startHelper(t, "open", file)
	if out := wait(); out != "ok" {
		t.Fatalf("helper printed %q", out)
	}
	ev := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 })[0]
	ev.Close()
	if ev.PID != int32(cmd.Process.Pid) || ev.Records != fanotify.HasPIDFD {
		t.Errorf("event %+v, want the helper's pid %d and a pidfd record", ev, cmd.Process.Pid)
	}
	return ev
}

// TestPIDFDFDError: with FAN_REPORT_FD_ERROR (6.13), the pidfd record of a
// process that has gone holds -ESRCH (Linux 6.18) or FAN_NOPIDFD (7.3,
// which reports FAN_NOPIDFD for that case whatever the flags), and
// PIDFDError says which.
func TestPIDFDFDError(t *testing.T) {
	testutil.CheckNoLeaks(t)
	file := filepath.Join(tmpfs(t), "f")
	os.WriteFile(file, nil, 0o644)
	ev := pidfdOfExited(t, file, fanotify.Config{Report: fanotify.ReportPIDFD | fanotify.ReportFDError})
	err := ev.PIDFDError()
	esrch := err == syscall.ESRCH && ev.PIDFD == -int32(syscall.ESRCH)
	nopidfd := err == fanotify.ErrNoPIDFD && ev.PIDFD == fanotify.NoPIDFD
	if !esrch && !nopidfd {
		t.Errorf("event %+v, PIDFDError %v, want ESRCH or FAN_NOPIDFD", ev, err)
	}
}

// TestFDError: with FAN_REPORT_FD_ERROR, an event whose file cannot be
// opened as asked (read-write on a read-only mount) carries the errno.
func TestFDError(t *testing.T) {
	testutil.CheckNoLeaks(t)
	root := tmpfs(t)
	file := filepath.Join(root, "f")
	os.WriteFile(file, nil, 0o644)
	if err := unix.Mount("", root, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportFDError, EventFlags: unix.O_RDWR})
	if err := g.Mark(fanotify.TargetInode, file, fanotify.Open, 0); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	ev := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 })[0]
	if ev.Mask != fanotify.Open || ev.FD != -int32(syscall.EROFS) || ev.FDError != syscall.EROFS {
		ev.Close()
		t.Errorf("event %+v, want fd -EROFS", ev)
	}
}

// TestMountNamespaceEvents marks the mount namespace of a helper process
// (a new one, not the test's) and sees the helper's mount and unmount.
func TestMountNamespaceEvents(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportMount})
	dir := t.TempDir()
	cmd := helperCmd(t, "mount", dir)
	cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)
	if err := g.Mark(fanotify.TargetMountNamespace, ns, fanotify.MountAttach|fanotify.MountDetach, 0); err != nil {
		in.Close()
		cmd.Wait()
		t.Fatal(err)
	}
	in.Write([]byte("go\n"))
	in.Close()
	if err := cmd.Wait(); err != nil || out.String() != "ok" {
		t.Fatalf("helper: %v, printed %q", err, out.String())
	}
	// The helper's exit tears its namespace down, which detaches its other
	// mounts; the first two events are about the tmpfs.
	evs := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) >= 2 })
	if evs[0].Mask != fanotify.MountAttach || evs[1].Mask != fanotify.MountDetach ||
		evs[0].MountID == 0 || evs[0].MountID != evs[1].MountID || evs[0].Records != fanotify.HasMount ||
		evs[0].PID != int32(cmd.Process.Pid) {
		t.Errorf("events %+v, want attach and detach of one mount by the helper", evs)
	}
}

// fdinfo returns the "fanotify flags:... event-flags:..." line the kernel
// shows for the group's descriptor.
func fdinfo(t *testing.T, g *fanotify.Group) string {
	t.Helper()
	rc, err := g.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	rc.Control(func(fd uintptr) { b, err = os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd)) })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "fanotify flags:") {
			return l
		}
	}
	t.Fatalf("no fanotify line in fdinfo %q", b)
	return ""
}

// TestNewFlags checks the fanotify_init(2) flags New passes, as the kernel
// shows them in /proc/self/fdinfo (FAN_CLOEXEC|FAN_NONBLOCK = 3 always,
// event flags with O_LARGEFILE|O_CLOEXEC = 0x88000 always).
func TestNewFlags(t *testing.T) {
	for _, tt := range []struct {
		c    fanotify.Config
		want string
	}{
		{fanotify.Config{}, "fanotify flags:3 event-flags:88000"},
		{fanotify.Config{UnlimitedQueue: true}, "fanotify flags:13 event-flags:88000"},
		{fanotify.Config{UnlimitedMarks: true, Class: fanotify.ClassContent, EventFlags: unix.O_RDWR}, "fanotify flags:27 event-flags:88002"},
		{fanotify.Config{Class: fanotify.ClassPreContent, EventFlags: unix.O_NOATIME}, "fanotify flags:b event-flags:c8000"},
		{fanotify.Config{Report: fanotify.ReportDFIDNameTarget | fanotify.ReportPIDFD}, "fanotify flags:1e83 event-flags:88000"},
	} {
		g := newGroupWith(t, tt.c)
		if got := fdinfo(t, g); got != tt.want {
			t.Errorf("New(%+v): fdinfo %q, want %q", tt.c, got, tt.want)
		}
		g.Close()
	}
}

// TestFDErrorNoFD: in a group reporting FAN_REPORT_FD_ERROR and file
// identifiers, events carry -EBADF in place of FAN_NOFD.
func TestFDErrorNoFD(t *testing.T) {
	testutil.CheckNoLeaks(t)
	file := filepath.Join(tmpfs(t), "f")
	os.WriteFile(file, nil, 0o644)
	g := newGroupWith(t, fanotify.Config{Report: fanotify.ReportFDError | fanotify.ReportFID})
	if err := g.Mark(fanotify.TargetInode, file, fanotify.CloseNoWrite, 0); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	ev := readUntil(t, g, func(evs []fanotify.Event) bool { return len(evs) > 0 })[0]
	if ev.FD != -int32(syscall.EBADF) || ev.FDError != syscall.EBADF || ev.Records != fanotify.HasFID {
		t.Errorf("event %+v, want fd -EBADF", ev)
	}
}

// TestInodeOfTmpfsHandle: tmpfs gives its handles type 1, the generic
// 32-bit type, with a 12-byte layout of its own (the generation first):
// Inode must refuse them rather than read the generation as the inode.
// A handle of the generic layout, built from the same file's inode and
// generation, decodes to them.
func TestInodeOfTmpfsHandle(t *testing.T) {
	dir := tmpfs(t)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fh, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := fanotify.Handle{Type: fh.Type(), Bytes: fh.Bytes()}
	if h.Type != fanotify.HandleIno32Gen || len(h.Bytes) != 12 {
		t.Fatalf("tmpfs handle of type %d, %d bytes: this kernel's tmpfs lays its handles out otherwise", h.Type, len(h.Bytes))
	}
	if ino, gen, ok := h.Inode(); ok {
		t.Errorf("Inode() of tmpfs's own layout = %d, %#x, true; want false", ino, gen)
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	// tmpfs's layout: generation, inode number (64 bits, low word first).
	b := h.Bytes
	if got := uint64(binary.NativeEndian.Uint32(b[4:])) | uint64(binary.NativeEndian.Uint32(b[8:]))<<32; got != st.Ino {
		t.Errorf("tmpfs handle names inode %d, stat says %d", got, st.Ino)
	}
	generic := fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint64(nil, st.Ino), binary.NativeEndian.Uint32(b))}
	if ino, gen, ok := generic.Inode(); !ok || ino != st.Ino || gen != binary.NativeEndian.Uint32(b) {
		t.Errorf("Inode() of the generic layout = %d, %#x, %v; want %d, %#x, true", ino, gen, ok, st.Ino, binary.NativeEndian.Uint32(b))
	}
}
