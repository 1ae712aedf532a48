package watch

// Real device failures. ext4, XFS and btrfs each sit on a device-mapper
// device over a loop device, and the device starts failing at the moment
// the test wants it to (dm-flakey, its table reloaded with dmsetup): every
// I/O of the device, every I/O of the sectors under a file's first block,
// or writes of the sectors under a file (the error_writes feature). Each test asserts the event the
// watcher reports: the errno (EIO), the device as the mount registry names
// it ("/dev/dm-N"), the mount points, the source, and for data errors the
// file's inode where the source gives one.
//
// Where they run: see internal/testutil/dm.go. In short, on a kernel with
// no device-mapper at all (this project's own VM and CI host) they skip,
// also under CI=true, because nothing on the host can make them run; the
// kernel matrix runs them inside Debian's 6.1, 6.12, 6.18 and 7.x kernels,
// where a missing device-mapper fails them.
//
// What a kernel cannot report is a skip with its reason, never a pass: a
// data read error on a device-mapper device is reported by no source
// before Linux 7.0 for ext4 and XFS (device-mapper logs nothing, and the
// file systems neither), so those tests check that nothing is reported
// and skip; the matrix declares them Since 7.0 (fserror), so that a skip
// on a newer kernel fails.

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
)

// devFailFS makes a scratch file system of type fstype on a device-mapper
// device with table, mounted with errors=continue where the file system
// has it, and checks that nothing is left behind. btrfs is mounted
// nodatacow for the write tests (extra), so that overwriting a file writes
// in place.
func devFailFS(t *testing.T, fstype string, table func(string, int64) string, targets []string, extraOptions string) *testutil.DMFilesystem {
	t.Helper()
	testutil.CheckNoLeaks(t)
	testutil.RequireDeviceMapper(t, targets...)
	size, options := int64(64<<20), ""
	switch fstype {
	case "ext4":
		options = "errors=continue"
	case "xfs":
		size = xfsSize
	case "btrfs":
		size = 256 << 20
	}
	if extraOptions != "" {
		if options != "" {
			options += ","
		}
		options += extraOptions
	}
	return testutil.NewDMFilesystem(t, fstype, size, options, table)
}

// watchDM starts a watcher of f's file system, with the kernel log.
func watchDM(t *testing.T, f *testutil.DMFilesystem) *collector {
	t.Helper()
	return startConfig(t, Config{Paths: []string{f.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)
}

// devEvent returns the first event that want accepts. Every event on the
// way must be about f's file system, named as the registry names it: the
// dm device, its type, its one mount point.
func (c *collector) devEvent(f *testutil.DMFilesystem, what string, want func(event.Event) bool) event.Event {
	c.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-c.events:
			c.t.Logf("event: %s", event.AppendText(nil, &e))
			if !onDM(e, f) {
				c.t.Errorf("event not about %s (%s, %s at %s): %s", f.Dev, f.Name, f.FSType, f.Mountpoint, event.AppendText(nil, &e))
				continue
			}
			if want(e) {
				return e
			}
		case <-deadline:
			logKernelRecords(c.t, f.KernelName)
			c.t.Fatalf("no event for the %s within %v", what, waitTimeout)
		}
	}
}

// kmsgNote writes a record to the kernel log (as user space: fshealth
// never takes such records for errors).
func kmsgNote(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile("/dev/kmsg", []byte(text+"\n"), 0); err != nil {
		t.Fatal(err)
	}
}

// logKernelRecords logs the kernel log's records that mention name, raw,
// to show what the watcher was given when an event did not come.
func logKernelRecords(t *testing.T, name string) {
	t.Helper()
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Logf("reading the kernel log: %v", err)
		return
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EPIPE) {
			continue // overwritten records
		}
		if err != nil || n <= 0 {
			return
		}
		if rec := string(buf[:n]); strings.Contains(rec, name) {
			t.Logf("kernel log: %q", rec)
		}
	}
}

// onDM reports whether e is an error event about f's file system.
func onDM(e event.Event, f *testutil.DMFilesystem) bool {
	return e.Kind == event.KindError && e.Device == f.Dev && e.FSType == f.FSType &&
		fmt.Sprint(e.Mountpoints) == fmt.Sprint([]string{f.Mountpoint}) && e.FSID != "" && e.DeviceNumber != ""
}

// isEIO accepts an EIO event.
func isEIO(e event.Event) bool { return e.Error == "EIO" && e.Errno == int(syscall.EIO) }

// drain logs, for a while, the events still coming, which must all be
// about f's file system (a failing device makes more than one error), and
// returns them.
func (c *collector) drain(f *testutil.DMFilesystem) []event.Event {
	c.t.Helper()
	var later []event.Event
	for {
		select {
		case e := <-c.events:
			c.t.Logf("later event: %s", event.AppendText(nil, &e))
			if !onDM(e, f) {
				c.t.Errorf("event not about %s: %s", f.Dev, event.AppendText(nil, &e))
			}
			later = append(later, e)
		case <-time.After(testHold + time.Second):
			return later
		}
	}
}

// notTwice fails t if a later event reports e's error about the same
// inode again, from another source.
func notTwice(t *testing.T, e event.Event, later []event.Event) {
	t.Helper()
	for _, l := range later {
		if e.Inode != nil && l.Inode != nil && *l.Inode == *e.Inode && l.Error == e.Error && l.Source != e.Source {
			t.Errorf("the error was reported twice, by %s and by %s: %s", e.Source, l.Source, event.AppendText(nil, &l))
		}
	}
}

// checkSource fails t unless e came from one of the sources allowed.
func checkSource(t *testing.T, e event.Event, allowed ...string) {
	t.Helper()
	for _, s := range allowed {
		if e.Source == s {
			return
		}
	}
	t.Errorf("source %q, want one of %q: %s", e.Source, allowed, event.AppendText(nil, &e))
}

// --- metadata read errors: every I/O of the device fails ---

// metadataReadFailure fills a file system with directories of files,
// remounts it (nothing cached), makes every I/O of its device fail
// (dm-flakey with no features, always down) and looks the files up: the
// file system must read metadata it does not have, and fails. It returns
// the first EIO event.
func metadataReadFailure(t *testing.T, fstype string, want func(*testutil.DMFilesystem, event.Event) bool) (*testutil.DMFilesystem, event.Event) {
	t.Helper()
	f := devFailFS(t, fstype, testutil.LinearTable, []string{"flakey"}, "")
	// Many entries in several directories: metadata beyond what mounting
	// reads (ext4's root directory block, XFS inode clusters in other
	// allocation groups, btrfs leaves below the tree roots).
	const dirs, files = 8, 60
	for d := range dirs {
		dir := filepath.Join(f.Mountpoint, "d"+strconv.Itoa(d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range files {
			if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	unix.Sync()
	f.Remount(t)
	c := watchDM(t, f)
	f.Reload(t, testutil.FlakeyTable(f.Backing, f.Sectors))
	failed := 0
	for d := range dirs {
		_, err := os.Stat(filepath.Join(f.Mountpoint, "d"+strconv.Itoa(d), "f"+strconv.Itoa(files-1)))
		if errors.Is(err, syscall.EIO) {
			failed++
		} else if err != nil {
			t.Logf("stat: %v", err)
		}
	}
	if failed == 0 {
		t.Fatalf("no lookup failed with EIO on the failing device: everything was cached?")
	}
	e := c.devEvent(f, "metadata read error", func(e event.Event) bool { return isEIO(e) && want(f, e) })
	c.drain(f)
	return f, e
}

// TestDeviceFailureExt4MetadataRead: ext4 cannot read a directory block;
// it reports the error itself (FAN_FS_ERROR, EIO, the directory's inode),
// on every kernel. (Other errors come too: on 6.1 the superblock write when
// the file system is thawed after the table switch fails first, a kernel-log
// event; ext4lazyinit cannot read a block bitmap.)
func TestDeviceFailureExt4MetadataRead(t *testing.T) {
	_, e := metadataReadFailure(t, "ext4", func(_ *testutil.DMFilesystem, e event.Event) bool {
		return e.Source == event.SourceFanotify && e.Inode != nil
	})
	if *e.Inode != 2 {
		t.Errorf("the failed directory read names inode %d, want the root directory's, 2: %s", *e.Inode, event.AppendText(nil, &e))
	}
}

// TestDeviceFailureXFSMetadataRead: XFS cannot read an inode cluster or a
// directory block ("metadata I/O error"): from the kernel log before Linux
// 7.0, through FAN_FS_ERROR (fserror) from 7.0, EIO either way.
func TestDeviceFailureXFSMetadataRead(t *testing.T) {
	_, e := metadataReadFailure(t, "xfs", func(f *testutil.DMFilesystem, e event.Event) bool {
		return strings.HasPrefix(e.KernelMessage, "XFS ("+f.KernelName+"): metadata I/O error")
	})
	checkSource(t, e, event.SourceKmsg, event.SourceFanotify)
}

// TestDeviceFailureBtrfsMetadataRead: btrfs cannot read a tree block
// (neither copy): it counts a read error on the device, which the watcher
// reports from the device's counters, on every kernel.
func TestDeviceFailureBtrfsMetadataRead(t *testing.T) {
	_, e := metadataReadFailure(t, "btrfs", func(_ *testutil.DMFilesystem, e event.Event) bool {
		return e.Source == event.SourceBtrfs && e.Btrfs != nil && e.Btrfs.Counter == "read"
	})
	if e.Btrfs == nil || e.Btrfs.Counter != "read" || e.Btrfs.To <= e.Btrfs.From {
		t.Errorf("btrfs read counter event: %s", event.AppendText(nil, &e))
	}
}

// --- data read errors: the sectors under a file's first block fail ---

// dataReadFailure writes a file, finds its first block on the device, makes
// every I/O of that block fail (dm-flakey over those sectors), and reads it
// with O_DIRECT, after a remount (so that the read reaches the device:
// without it, on 7.3, the O_DIRECT read of the btrfs file just written
// succeeded with its block failing). It returns the file
// system, the file's inode and a collector that has seen nothing yet.
func dataReadFailure(t *testing.T, fstype string) (*testutil.DMFilesystem, uint64, *collector) {
	t.Helper()
	f := devFailFS(t, fstype, testutil.LinearTable, []string{"flakey"}, "")
	file := filepath.Join(f.Mountpoint, "file")
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	off := f.FindInImage(t, data[:64])
	if off%512 != 0 {
		t.Fatalf("the file's data is at byte %d of the device, not at a sector boundary", off)
	}
	ino := inodeNumber(t, file)
	f.Remount(t) // nothing of the file stays in the page cache
	c := watchDM(t, f)
	f.Reload(t, testutil.FlakeyRangeTable(f.Backing, f.Sectors, off/512, 4096/512))
	if err := testutil.DirectRead(file); !errors.Is(err, syscall.EIO) {
		t.Fatalf("O_DIRECT read of the file's failing first block: %v, want EIO", err)
	}
	return f, ino, c
}

// fserrorDataRead checks the event of a data read error on a file system
// that reports it only through fserror (Linux 7.0+): FAN_FS_ERROR, EIO,
// the file's inode. On a kernel without fserror no source can report it:
// the test checks that none does, and skips with the reason.
func fserrorDataRead(t *testing.T, fstype string) {
	f, ino, c := dataReadFailure(t, fstype)
	p := probeFSError()
	if !p.has {
		select {
		case e := <-c.events:
			t.Fatalf("a kernel without %s reported a data read error on a device-mapper device (update docs/sources.md and this test): %s", fsErrorSymbol, event.AppendText(nil, &e))
		case <-time.After(testHold + absentWait):
		}
		reason := "the kernel has no " + fsErrorSymbol
		if p.err != nil {
			reason = p.err.Error()
		}
		testutil.Skip(t, testutil.KernelLacks, "%s data read errors on a device-mapper device are reported by no source before Linux 7.0 (%s): device-mapper logs nothing and %s reports no data read error; checked that no event came", fstype, reason, fstype)
	}
	e := c.devEvent(f, "data read error", isEIO)
	checkSource(t, e, event.SourceFanotify)
	if e.Inode == nil || *e.Inode != ino {
		t.Errorf("the data read error names inode %v, want the file's %d: %s", e.Inode, ino, event.AppendText(nil, &e))
	}
	notTwice(t, e, c.drain(f))
}

// TestDeviceFailureExt4DataRead: a bad block under an ext4 file's data.
func TestDeviceFailureExt4DataRead(t *testing.T) { fserrorDataRead(t, "ext4") }

// TestDeviceFailureXFSDataRead: a bad block under an XFS file's data.
func TestDeviceFailureXFSDataRead(t *testing.T) { fserrorDataRead(t, "xfs") }

// TestDeviceFailureBtrfsDataRead: btrfs counts the failed read of a
// file's data block on the device (its read counter), on every kernel.
func TestDeviceFailureBtrfsDataRead(t *testing.T) {
	f, _, c := dataReadFailure(t, "btrfs")
	e := c.devEvent(f, "data read error", isEIO)
	checkSource(t, e, event.SourceBtrfs)
	if e.Btrfs == nil || e.Btrfs.Counter != "read" || e.Btrfs.To <= e.Btrfs.From {
		t.Errorf("btrfs read counter event: %s", event.AppendText(nil, &e))
	}
	c.drain(f)
}

// --- write errors: a file's blocks refuse writes ---

// writeFailure writes a file, finds its data on the device, makes writes
// to exactly those sectors fail (dm-flakey error_writes over that range,
// table reloaded now), overwrites the file in place and syncs it, which
// must fail with EIO. It returns the first EIO event and the file's inode.
func writeFailure(t *testing.T, fstype, options string) (event.Event, uint64) {
	t.Helper()
	f := devFailFS(t, fstype, testutil.LinearTable, []string{"flakey"}, options)
	file := filepath.Join(f.Mountpoint, "file")
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	off := f.FindInImage(t, data[:64])
	// The file must be in one piece there, for one range to cover it.
	onDisk := make([]byte, len(data))
	f.ReadImageAt(t, onDisk, off)
	if !bytes.Equal(onDisk, data) {
		t.Fatalf("the file's data is not in one piece on the device, from byte %d", off)
	}
	ino := inodeNumber(t, file)
	c := watchDM(t, f)
	f.Reload(t, testutil.FlakeyRangeTable(f.Backing, f.Sectors, off/512, int64(len(data))/512, "error_writes"))
	fd, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	rand.Read(data)
	if _, err := fd.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := fd.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after overwriting the file on sectors that refuse writes: %v, want EIO", err)
	}
	if fstype == "xfs" {
		// Before Linux 7.0 iomap's "writeback error on inode" message is
		// the only report of this error, and it is printed without a
		// newline: the kernel keeps such a record open (unreadable in
		// /dev/kmsg) until the next record is logged. Log one, as any
		// later kernel message would.
		kmsgNote(t, "fshealth devfail test: after the failed XFS write-back")
	}
	e := c.devEvent(f, "write error", isEIO)
	notTwice(t, e, c.drain(f))
	return e, ino
}

// checkInode fails t unless e names inode ino.
func checkInode(t *testing.T, e event.Event, ino uint64) {
	t.Helper()
	if e.Inode == nil || *e.Inode != ino {
		t.Errorf("the write error names inode %v, want the file's %d: %s", e.Inode, ino, event.AppendText(nil, &e))
	}
}

// TestDeviceFailureExt4Write: ext4's write-back of a file's data fails.
func TestDeviceFailureExt4Write(t *testing.T) {
	e, ino := writeFailure(t, "ext4", "")
	checkSource(t, e, event.SourceKmsg, event.SourceFanotify)
	checkInode(t, e, ino)
}

// TestDeviceFailureXFSWrite: XFS's (iomap's) write-back of a file's data
// fails. Before Linux 7.0 only iomap's kernel-log message reports it (seen
// on 6.1, 6.12, 6.18); from 7.0 FAN_FS_ERROR (fserror) does, with that
// message attached (seen on 7.3), and never both.
func TestDeviceFailureXFSWrite(t *testing.T) {
	e, ino := writeFailure(t, "xfs", "")
	if p := probeFSError(); p.err != nil {
		checkSource(t, e, event.SourceKmsg, event.SourceFanotify)
	} else if p.has {
		checkSource(t, e, event.SourceFanotify)
	} else {
		checkSource(t, e, event.SourceKmsg)
	}
	checkInode(t, e, ino)
}

// TestDeviceFailureBtrfsWrite: btrfs (nodatacow, so that the overwrite goes
// to the same blocks) counts the failed data write on the device.
func TestDeviceFailureBtrfsWrite(t *testing.T) {
	e, _ := writeFailure(t, "btrfs", "nodatacow")
	checkSource(t, e, event.SourceBtrfs)
	if e.Btrfs == nil || e.Btrfs.Counter != "write" || e.Btrfs.To <= e.Btrfs.From {
		t.Errorf("btrfs write counter event: %s", event.AppendText(nil, &e))
	}
}
