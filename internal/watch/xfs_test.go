package watch

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/pathfind"
	"github.com/fshealth/fshealth/internal/testutil"
)

// XFS reports errors through FAN_FS_ERROR from Linux 7.0: metadata
// corruption, shutdowns and media errors go to the kernel's generic error
// reporting ("fserror", fs/fserror.c), which hands them to fanotify from a
// workqueue, in the same records as ext4's. Before 7.0 XFS reports nothing
// through fanotify: it only logs.
//
// Nothing in user space says whether a kernel has this, short of raising
// an error and waiting. The tests below do that, and use the kernel's symbol
// table to tell a missing feature from a broken one: a kernel with
// fserror_report (the function every fserror report goes through) must
// deliver the event, and the test fails without it; a kernel without it
// skips the test with the reason. If the symbol table cannot be read, a
// missing event is a skip too; the kernel matrix, which knows from which
// version the feature is expected, turns such a skip on 7.x into a failure.

// xfsSize is the size of the scratch XFS images: mkfs.xfs refuses file
// systems smaller than 300 MiB. The images are sparse.
const xfsSize = 300 << 20

// fsErrorSymbol is the kernel function through which every fserror report
// (Linux 7.0+) goes.
const fsErrorSymbol = "fserror_report"

// absentWait is how long a test waits for an event when the kernel has no
// fserror_report: there, the event is not expected, and the wait only
// catches a kernel that delivers it all the same (which then is checked).
const absentWait = 2 * time.Second

// fsErrorProbe says whether the running kernel has fserror reporting.
type fsErrorProbe struct {
	has bool
	err error // the symbol table could not be read: has means nothing
}

func probeFSError() fsErrorProbe {
	has, err := testutil.KernelHasSymbol(fsErrorSymbol)
	return fsErrorProbe{has: has, err: err}
}

// xfsEvent returns the first event after an XFS error was raised (what),
// waiting generously when the kernel is expected to report it, and true.
// On a kernel without fserror reporting no event may come: it checks that
// none does, says so, and returns false (the test has passed). On a kernel
// that has it, no event fails the test; where it cannot be told, the test
// is skipped with the reason.
func (c *collector) xfsEvent(what string, p fsErrorProbe) (event.Event, bool) {
	c.t.Helper()
	wait := waitTimeout
	if p.err == nil && !p.has {
		wait = absentWait
	}
	select {
	case e := <-c.events:
		if p.err == nil && !p.has {
			c.t.Errorf("%s raised a FAN_FS_ERROR event on a kernel without %s: %s", what, fsErrorSymbol, event.AppendText(nil, &e))
		}
		return e, true
	case <-time.After(wait):
	}
	switch {
	case p.err != nil:
		testutil.Skip(c.t, testutil.Missing, "kernel did not report %s through FAN_FS_ERROR within %v, and whether it should cannot be told (%v): XFS reports errors through fanotify from Linux 7.0", what, wait, p.err)
	case !p.has:
		c.t.Logf("as expected, no FAN_FS_ERROR event within %v of %s: this kernel has no %s (/proc/kallsyms); XFS reports errors through fanotify from Linux 7.0", wait, what, fsErrorSymbol)
	default:
		c.t.Fatalf("no FAN_FS_ERROR event within %v of %s, although the kernel has %s, through which XFS reports errors from Linux 7.0", wait, what, fsErrorSymbol)
	}
	return event.Event{}, false
}

// checkXFS checks that e is a fanotify error event about the XFS file
// system id, reported as XFS reports errors: from a kernel worker, with no
// ext4 state.
func checkXFS(t *testing.T, e event.Event, id fsIdentity) {
	t.Helper()
	id.check(t, e)
	if e.Ext4 != nil {
		t.Errorf("an XFS event carries ext4 state: %+v", e.Ext4)
	}
	// fserror hands every report to fanotify from a workqueue, so the pid
	// is a kernel worker's, never the task that hit the error.
	if _, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", e.PID)); e.PID <= 0 || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid %d, want a kernel worker's (XFS errors are reported from a workqueue)", e.PID)
	}
}

// runTool runs one of the xfsprogs programs and returns its standard output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	testutil.RequireCommand(t, name, "xfsprogs")
	prog, err := loopfs.FindTool(name)
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := exec.Command(prog, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// inodeNumber returns the inode number of path.
func inodeNumber(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// xfsGeneration reads inode ino's generation from the unmounted image.
func xfsGeneration(t *testing.T, im *loopfs.Image, ino uint64) uint32 {
	t.Helper()
	out := runTool(t, "xfs_db", "-r", "-c", fmt.Sprintf("inode %d", ino), "-c", "print core.gen", im.File)
	m := regexp.MustCompile(`core\.gen = (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no generation of inode %d in xfs_db's output: %q", ino, out)
	}
	g, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(g)
}

// TestXFSShutdown: shutting XFS down (as a failing disk or log would) is
// reported as ESHUTDOWN, about the file system as a whole.
func TestXFSShutdown(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	probe := probeFSError()
	im := testutil.NewImage(t, "xfs", xfsSize, "")
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "f"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := identify(t, im, "xfs")
	c := start(t, []string{im.Mountpoint}, false)

	runTool(t, "xfs_io", "-x", "-c", "shutdown", im.Mountpoint)
	if _, err := os.ReadDir(im.Mountpoint); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the shut down file system: %v, want EIO", err)
	}
	// On 7.3.4 the shutdown is one event, whatever the I/O on the file
	// system after it: fserror_report_shutdown reports ESHUTDOWN ("cannot
	// send after transport endpoint shutdown"), for the file system and no
	// inode, and later failures of the dead file system report nothing.
	e, ok := c.xfsEvent("an XFS shutdown (xfs_io -x -c shutdown)", probe)
	if !ok {
		return
	}
	checkErr(t, e, syscall.ESHUTDOWN, "ESHUTDOWN", 1)
	checkXFS(t, e, id)
	noInode(t, e)
	c.none()
}

// TestXFSCorruption: metadata corruption that XFS detects when it reads it
// is reported as EUCLEAN (XFS's EFSCORRUPTED): a corrupt directory block
// against the directory, which can still be opened and so gets its path; a
// corrupt inode against the file system, since the inode never loaded.
func TestXFSCorruption(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_db", "xfsprogs")
	probe := probeFSError()
	im := testutil.NewImage(t, "xfs", xfsSize, "")
	mp := im.Mountpoint
	// Enough long names that the directory's entries leave the inode for
	// data blocks of their own.
	dir := filepath.Join(mp, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("entry_with_a_longish_name_%03d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(mp, "file")
	if err := os.WriteFile(file, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirIno, fileIno := inodeNumber(t, dir), inodeNumber(t, file)
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	dirGen := xfsGeneration(t, im, dirIno)
	// Both corruptions keep the checksums right (write -d recomputes
	// them), so it is XFS's structure checks that catch them, with
	// EFSCORRUPTED, not a checksum error (EFSBADCRC, EBADMSG): the first
	// data block of the directory claims to be at another disk address,
	// and the file's mode has no valid file type.
	runTool(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", dirIno), "-c", "dblock 0", "-c", "write -d dhdr.hdr.bno 8", im.File)
	runTool(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", fileIno), "-c", "write -d core.mode 0170644", im.File)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	id := identify(t, im, "xfs")
	c := startConfig(t, Config{Paths: []string{mp}, OnPath: wantPaths}, false)

	if _, err := os.ReadDir(dir); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("reading the corrupt directory: %v, want EUCLEAN", err)
	}
	e, ok := c.xfsEvent("reading a corrupt XFS directory block", probe)
	if !ok {
		return
	}
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkXFS(t, e, id)
	if e.Inode == nil || *e.Inode != dirIno || e.Generation == nil || *e.Generation != dirGen {
		t.Errorf("inode %v generation %v, want the directory's %d %d", e.Inode, e.Generation, dirIno, dirGen)
	}
	// The path is looked up from parent pointers on the device, off the
	// event's way (nothing is opened by handle); this file system, made
	// by a mkfs.xfs that makes none, has none: the lookup says so.
	if e.Path != "" || !e.PathPending || e.PathError != "" || e.Message != "" {
		t.Errorf("path %q pending %v path_error %q message %q, want the path pending", e.Path, e.PathPending, e.PathError, e.Message)
	}
	if p := c.nextPath(); p.Inode == nil || *p.Inode != dirIno || p.Path != "" || !parentPointersMissing(p.PathError) {
		t.Errorf("path event: inode %v path %q path_error %q, want no parent pointers", p.Inode, p.Path, p.PathError)
	}
	c.none()

	if _, err := os.ReadFile(file); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("reading the corrupt inode: %v, want EUCLEAN", err)
	}
	e = c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkXFS(t, e, id)
	// XFS found the inode corrupt while reading it in: it never became
	// an inode the kernel can name in a file handle, and XFS reports the
	// corruption against the file system (seen on 7.3.4). Should a later
	// kernel name it, it must be the corrupt one.
	if e.Inode != nil {
		if *e.Inode != fileIno {
			t.Errorf("inode %d, want the corrupt inode %d or none", *e.Inode, fileIno)
		}
	} else {
		noInode(t, e)
	}
	c.none()
	select {
	case p := <-c.paths:
		t.Errorf("a second path event: %s", event.AppendText(nil, &p))
	default:
	}
}

// parentPointersMissing reports whether pathError says the file system
// has no parent pointers, or that the xfs_db at hand is too old to read
// them.
func parentPointersMissing(pathError string) bool {
	return pathError == pathfind.ErrNoParentPointers.Error() || strings.Contains(pathError, "cannot read parent pointers")
}
