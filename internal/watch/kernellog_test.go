package watch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/testutil"
)

// testHold is the kernel log hold of these tests: long enough for the
// kernel's FAN_FS_ERROR to follow its message, short enough to keep the
// tests quick.
const testHold = 500 * time.Millisecond

// --- the correlator, without a kernel ---

func testFS(name string) *enrich.Filesystem {
	return &enrich.Filesystem{Info: &mounts.Info{Filesystem: &mounts.Filesystem{Major: 7, Minor: 3, FSType: "xfs",
		Mountpoints: []string{"/srv"}}, FSID: fanotify.FSID{1, 2}, Device: "/dev/" + name, KernelName: name, UUID: "u-" + name}}
}

func classified(t *testing.T, line string) kmsg.Message {
	t.Helper()
	rec, err := kmsg.ParseRecord([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	m, ok := kmsg.Classify(rec)
	if !ok {
		t.Fatalf("not classified: %s", line)
	}
	return m
}

func TestCorrelatorAttachesAndDrops(t *testing.T) {
	fs, other := testFS("loop3"), testFS("loop4")
	c := newCorrelator(time.Second)
	t0 := time.Unix(1000, 0)
	ioErr := classified(t, "3,1,1,-;I/O error, dev loop3, sector 17410 op 0x0:(READ) flags 0x8800 phys_seg 1 prio class 2")
	sd := classified(t, "1,2,2,-;XFS (loop3): User initiated shutdown received.")
	c.message(kernelMsg{Message: ioErr, fs: fs, at: t0})
	c.message(kernelMsg{Message: sd, fs: fs, at: t0})
	c.message(kernelMsg{Message: sd, fs: other, at: t0})

	ev := event.Event{Errno: int(syscall.ESHUTDOWN)}
	c.claim(&ev, fs, t0.Add(10*time.Millisecond))
	if ev.KernelMessage != sd.Text {
		t.Errorf("attached %q, want the shutdown message (same kind) %q", ev.KernelMessage, sd.Text)
	}
	if len(c.pending) != 2 {
		t.Errorf("pending after the claim: %+v, want the I/O error and the other file system's message", c.pending)
	}
	// A message of fs right after the event is part of it, too.
	c.message(kernelMsg{Message: sd, fs: fs, at: t0.Add(900 * time.Millisecond)})

	out, next := c.due(t0.Add(500*time.Millisecond), nil)
	if len(out) != 0 || !next.Equal(t0.Add(time.Second)) {
		t.Errorf("due before the hold ended: %d events, next %v", len(out), next)
	}
	out, next = c.due(t0.Add(time.Second), nil)
	if len(out) != 1 || !next.Equal(t0.Add(1900*time.Millisecond)) {
		t.Fatalf("due after the hold: %+v, next %v; want only the other file system's event", out, next)
	}
	e := out[0]
	if e.Source != event.SourceKmsg || e.Device != "/dev/loop4" || e.Error != "ESHUTDOWN" || e.ErrorCount != 1 ||
		e.KernelMessage != sd.Text || e.FSType != "xfs" || e.Kind != event.KindError || !e.Time.Equal(t0) {
		t.Errorf("kmsg event: %+v", e)
	}
	if out, next := c.due(t0.Add(2*time.Second), nil); len(out) != 0 || !next.IsZero() || len(c.pending) != 0 {
		t.Errorf("the message after the event: %+v, next %v, pending %d; want it dropped", out, next, len(c.pending))
	}
	// Long after the event, a message of fs is an event again.
	c.message(kernelMsg{Message: sd, fs: fs, at: t0.Add(5 * time.Second)})
	if out, _ := c.due(t0.Add(6*time.Second), nil); len(out) != 1 || out[0].Device != "/dev/loop3" {
		t.Errorf("a message long after the event: %+v", out)
	}
}

// TestCorrelatorOneMessagePerEvent: events read in one batch each take
// their own message.
func TestCorrelatorOneMessagePerEvent(t *testing.T) {
	fs := testFS("loop2")
	fs.FSType = "ext4"
	c := newCorrelator(time.Second)
	t0 := time.Unix(1000, 0)
	first := classified(t, "2,1,1,-;EXT4-fs error (device loop2): ext4_lookup:1787: inode #14: comm ls: iget: bogus i_mode (377)")
	second := classified(t, "2,2,2,-;EXT4-fs error (device loop2): ext4_nfs_get_inode:1542: inode #14: comm fshealth: iget: bogus i_mode (377)")
	abort := classified(t, "2,3,3,-;EXT4-fs error (device loop2): __ext4_remount:6843: comm mount: Abort forced by user")
	for _, m := range []kmsg.Message{first, second, abort} {
		c.message(kernelMsg{Message: m, fs: fs, at: t0})
	}
	ino := uint64(14)
	evs := []event.Event{{Errno: int(syscall.EUCLEAN), Inode: &ino}, {Errno: int(syscall.EUCLEAN), Inode: &ino}, {Errno: int(syscall.ESHUTDOWN)}}
	for i := range evs {
		c.claim(&evs[i], fs, t0)
	}
	for i, want := range []string{first.Text, second.Text, abort.Text} {
		if evs[i].KernelMessage != want {
			t.Errorf("event %d has %q, want %q", i, evs[i].KernelMessage, want)
		}
	}
}

func TestCorrelatorGroupsAndPrefersTheInode(t *testing.T) {
	fs := testFS("loop2")
	fs.FSType = "ext4"
	c := newCorrelator(time.Second)
	t0 := time.Unix(1000, 0)
	w1 := classified(t, "4,1,1,-;EXT4-fs warning (device loop2): ext4_end_bio:368: I/O error 10 writing to inode 314 starting block 9345)")
	w2 := classified(t, "4,2,2,-;EXT4-fs warning (device loop2): ext4_end_bio:368: I/O error 10 writing to inode 315 starting block 9346)")
	own := classified(t, "2,3,3,-;EXT4-fs error (device loop2): ext4_lookup:1859: inode #12: comm ls: iget: bogus i_mode (377)")
	for _, m := range []kmsg.Message{w1, w2, own} {
		c.message(kernelMsg{Message: m, fs: fs, at: t0})
	}
	out, _ := c.due(t0.Add(time.Second), nil)
	if len(out) != 1 {
		t.Fatalf("%d events, want one for both I/O errors and none for ext4's own error: %+v", len(out), out)
	}
	if e := out[0]; e.ErrorCount != 2 || e.Error != "EIO" || e.Inode == nil || *e.Inode != 314 || e.KernelMessage != w1.Text ||
		!strings.HasPrefix(e.Message, "2 I/O error message(s) in the kernel log") {
		t.Errorf("grouped event: %+v", e)
	}

	// A message of the same kind read later goes with the first one's
	// event; one of another kind waits for its own time.
	c.message(kernelMsg{Message: w1, fs: fs, at: t0.Add(2 * time.Second)})
	c.message(kernelMsg{Message: w2, fs: fs, at: t0.Add(2500 * time.Millisecond)})
	c.message(kernelMsg{Message: classified(t, "2,4,4,-;EXT4-fs (loop2): Remounting filesystem read-only"), fs: fs, at: t0.Add(2500 * time.Millisecond)})
	out, next := c.due(t0.Add(3*time.Second), nil)
	if len(out) != 1 || out[0].ErrorCount != 2 || !next.Equal(t0.Add(3500*time.Millisecond)) {
		t.Fatalf("later messages of the same kind: %+v, next %v", out, next)
	}
	out, _ = c.due(t0.Add(4*time.Second), nil)
	if len(out) != 1 || out[0].ErrorCount != 1 || out[0].Error != "ESHUTDOWN" {
		t.Fatalf("the shutdown message: %+v", out)
	}

	for _, m := range []kmsg.Message{w1, own} {
		c.message(kernelMsg{Message: m, fs: fs, at: t0.Add(5 * time.Second)})
	}
	ino := uint64(12)
	ev := event.Event{Errno: int(syscall.EUCLEAN), Inode: &ino}
	c.claim(&ev, fs, t0.Add(5*time.Second))
	if ev.KernelMessage != own.Text {
		t.Errorf("attached %q, want the message naming inode 12", ev.KernelMessage)
	}
	if out, next := c.due(t0.Add(time.Minute), nil); len(out) != 0 || !next.IsZero() || len(c.lastEvent) != 0 || len(c.pending) != 0 {
		t.Errorf("after the claim: %+v, next %v, %d remembered, %d pending", out, next, len(c.lastEvent), len(c.pending))
	}
}

// --- the watcher reading a kernel log, on real file systems ---

// onFS checks that e names im's file system, of type fstype, mounted at
// its mount point only. (checkFS needs the file system to answer stat,
// which a shut down one does not.)
func onFS(t *testing.T, e event.Event, im *loopfs.Image, fstype string) {
	t.Helper()
	if e.Device != im.Dev || e.FSType != fstype || fmt.Sprint(e.Mountpoints) != fmt.Sprint([]string{im.Mountpoint}) ||
		e.FSID == "" || e.DeviceNumber == "" {
		t.Errorf("event of the wrong file system: %s, want %s %s at %s", event.AppendText(nil, &e), im.Dev, fstype, im.Mountpoint)
	}
}

// fakeKernelLog makes a FIFO for Config.KernelLogPath and returns a
// function that writes records to it, one write each.
func fakeKernelLog(t *testing.T) (string, func(format string, args ...any)) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kmsg")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened for reading and writing, so it neither blocks nor leaves the
	// watcher's end without a writer.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, func(format string, args ...any) {
		t.Helper()
		if _, err := fmt.Fprintf(f, format+"\n", args...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKernelLogOnlyErrorBecomesEvent(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	path, write := fakeKernelLog(t)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogPath: path, KernelLogHold: testHold}, false)

	write("4,100,1,-;EXT4-fs warning (device %s): ext4_end_bio:368: I/O error 10 writing to inode 12 starting block 9345)", im.Name)
	write("4,101,2,-;EXT4-fs warning (device %s): ext4_end_bio:368: I/O error 10 writing to inode 12 starting block 9346)", im.Name)
	// ext4's own error lines come with FAN_FS_ERROR: alone (the event was
	// lost, or this one is made up), they never become events.
	write("2,102,3,-;EXT4-fs error (device %s): ext4_lookup:1859: inode #12: comm ls: iget: bogus i_mode (377)", im.Name)
	// Another device's messages are not about a watched file system.
	write("4,103,4,-;EXT4-fs warning (device nosuchdev9): ext4_end_bio:368: I/O error 10 writing to inode 12 starting block 1)")
	e := c.next()
	onFS(t, e, im, "ext4")
	if e.Source != event.SourceKmsg || e.Error != "EIO" || e.ErrorCount != 2 || e.Inode == nil || *e.Inode != 12 ||
		!strings.Contains(e.KernelMessage, "I/O error 10 writing to inode 12") || e.PID != 0 {
		t.Errorf("kernel-log event: %s", event.AppendText(nil, &e))
	}
	// ext4 has recorded no error: nothing but the log says there was one.
	if e.CorroboratedBy != "" {
		t.Errorf("kernel-log event on an ext4 that recorded no error is corroborated by %q", e.CorroboratedBy)
	}

	// A FAN_FS_ERROR report the kernel could not deliver (Linux 7.0+) is
	// an event at once, which takes the messages around it.
	write("4,104,5,-;EXT4-fs warning (device %s): ext4_end_bio:368: I/O error 10 writing to inode 13 starting block 9347)", im.Name)
	write("3,105,6,-;%s: lost file I/O error report for ino 13 type 1 pos 0x0 len 0x1000 error -5", im.Name)
	e = c.next()
	onFS(t, e, im, "ext4")
	if e.Source != event.SourceKmsg || !e.LostReport || e.Error != "EIO" || e.ErrorCount != 1 || e.Inode == nil || *e.Inode != 13 ||
		!strings.Contains(e.KernelMessage, "lost file I/O error report") {
		t.Errorf("lost report event: %+v", e)
	}
	select {
	case e := <-c.events:
		t.Errorf("the message before the lost report was reported too: %s", event.AppendText(nil, &e))
	case <-time.After(testHold + 300*time.Millisecond):
	}

	// A gap in the sequence numbers: records were lost.
	write("4,110,7,-;unrelated")
	e = c.next()
	if e.Kind != event.KindOverflow || e.Source != event.SourceKmsg || !strings.Contains(e.Message, "lost 4 kernel log records (106 to 109)") {
		t.Errorf("gap event: %+v", e)
	}
	c.none()
}

func TestKernelMessageAttachedToFanotifyEvent(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)
	msg := fmt.Sprintf("fshealth kernel log test %d", os.Getpid())
	if err := im.TriggerError(msg); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkFS(t, e, im)
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	if e.Source != event.SourceFanotify {
		t.Errorf("source %q, want fanotify", e.Source)
	}
	want := fmt.Sprintf("EXT4-fs error (device %s): trigger_test_error:", im.Name)
	if !strings.HasPrefix(e.KernelMessage, want) || !strings.HasSuffix(e.KernelMessage, msg) {
		t.Errorf("kernel_message %q, want %q...%q", e.KernelMessage, want, msg)
	}
	// The message is not reported again on its own.
	select {
	case e := <-c.events:
		t.Errorf("second event: %s", event.AppendText(nil, &e))
	case <-time.After(testHold + time.Second):
	}
}

// TestEachEventHasItsOwnKernelMessage: errors one after another, each read
// before the next is raised, each get their own kernel message, never
// another's and never none. The reader must see a message the kernel
// logged before reporting the error when it sees the error, though printk
// wakes the log's readers later than the error's report wakes the group's.
// (Eight errors: ext4 logs at most ten in five seconds per file system.)
func TestEachEventHasItsOwnKernelMessage(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)
	for i := range 8 {
		msg := fmt.Sprintf("fshealth own message %d of %d", i, os.Getpid())
		if err := im.TriggerError(msg); err != nil {
			t.Fatal(err)
		}
		e := c.next()
		checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
		if !strings.HasSuffix(e.KernelMessage, msg) {
			t.Errorf("error %d: kernel_message %q, want one ending %q", i, e.KernelMessage, msg)
		}
	}
	c.none()
}

// TestXFSShutdownReportedOnce: an XFS shutdown is one event. Before Linux
// 7.0 XFS sends no FAN_FS_ERROR, and the kernel log reports it (source
// "kmsg"); from 7.0 FAN_FS_ERROR reports it and the kernel log only adds
// its message. Either way it is reported exactly once.
func TestXFSShutdownReportedOnce(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)
	xfsIO(t, "-x", "-c", "shutdown", im.Mountpoint)
	e := c.next()
	onFS(t, e, im, "xfs")
	if e.Kind != event.KindError {
		t.Errorf("event: %s", event.AppendText(nil, &e))
	}
	// Whether FAN_FS_ERROR must report it (see TestXFSShutdown).
	viaFanotify, err := testutil.KernelHasSymbol(fsErrorSymbol)
	if err != nil {
		t.Logf("cannot tell whether XFS reports through FAN_FS_ERROR: %v", err)
	}
	switch e.Source {
	case event.SourceKmsg:
		if viaFanotify {
			t.Errorf("this kernel has %s, but the shutdown came from the kernel log only", fsErrorSymbol)
		}
		if e.Error != "ESHUTDOWN" || !strings.Contains(e.KernelMessage, "shutdown") {
			t.Errorf("kernel-log shutdown event: %s", event.AppendText(nil, &e))
		}
		// The shut down XFS refuses I/O: the log is not the only evidence.
		if e.CorroboratedBy != event.CorroboratedXFSShutdown {
			t.Errorf("kernel-log shutdown event corroborated by %q, want %q", e.CorroboratedBy, event.CorroboratedXFSShutdown)
		}
	case event.SourceFanotify:
		if !strings.HasPrefix(e.KernelMessage, "XFS ("+im.Name+"): ") {
			t.Errorf("the FAN_FS_ERROR event lacks XFS's message: %s", event.AppendText(nil, &e))
		}
		t.Logf("this kernel reports XFS shutdowns through FAN_FS_ERROR: %s", event.AppendText(nil, &e))
	default:
		t.Errorf("source %q", e.Source)
	}
	select {
	case e := <-c.events:
		t.Errorf("the shutdown was reported twice; second event: %s", event.AppendText(nil, &e))
	case <-time.After(testHold + 2*time.Second):
	}
}

// TestXFSCorruptionReportedOnce: XFS finding a corrupt inode (its mode,
// set with xfs_db, has no valid file type) is one event: from the kernel
// log before Linux 7.0, through FAN_FS_ERROR with XFS's message from 7.0.
func TestXFSCorruptionReportedOnce(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_db", "xfsprogs")
	im := testutil.NewImage(t, "xfs", xfsSize, "")
	mp := im.Mountpoint
	file := filepath.Join(mp, "file")
	if err := os.WriteFile(file, []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := inodeNumber(t, file)
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	runTool(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", ino), "-c", "write -d core.mode 0170644", im.File)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	if _, err := os.ReadFile(file); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("reading the corrupt inode: %v, want EUCLEAN", err)
	}
	e := c.next()
	onFS(t, e, im, "xfs")
	if e.Error != "EUCLEAN" || !strings.HasPrefix(e.KernelMessage, "XFS ("+im.Name+"): ") {
		t.Errorf("corruption event: %s", event.AppendText(nil, &e))
	}
	viaFanotify, _ := testutil.KernelHasSymbol(fsErrorSymbol)
	switch {
	case e.Source == event.SourceKmsg && !viaFanotify:
		if e.Inode == nil || *e.Inode != ino {
			t.Errorf("the kernel-log event names inode %v, want %d: %s", e.Inode, ino, event.AppendText(nil, &e))
		}
	case e.Source == event.SourceFanotify && viaFanotify:
	default:
		t.Errorf("source %q on a kernel that has %s: %v", e.Source, fsErrorSymbol, viaFanotify)
	}
	select {
	case e := <-c.events:
		t.Errorf("the corruption was reported twice; second event: %s", event.AppendText(nil, &e))
	case <-time.After(testHold + 2*time.Second):
	}
}

func xfsIO(t *testing.T, args ...string) {
	t.Helper()
	prog, err := loopfs.FindTool("xfs_io")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("xfs_io %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestBlockIOErrorOnWatchedFilesystem: an I/O error of the block device
// under a watched ext4 file system, which ext4 itself does not report (an
// O_DIRECT read fails in the block layer), is reported from the kernel
// log. From Linux 7.0 iomap reports such errors through FAN_FS_ERROR (EIO,
// with the file's handle): then that event carries the block layer's
// message.
func TestBlockIOErrorOnWatchedFilesystem(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	outer := testutil.NewImage(t, "xfs", 512<<20, "")
	inner, err := loopfs.Create(outer.Mountpoint, "ext4", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inner.Unmount(); err != nil {
			t.Errorf("unmounting the inner image: %v", err)
		}
	})
	if err := inner.Mount(filepath.Join(t.TempDir(), "inner"), "errors=continue"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(inner.Mountpoint, "data")
	if err := os.WriteFile(file, bytes.Repeat([]byte("data "), 2000), 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	ino := inodeNumber(t, file)
	c := startConfig(t, Config{Paths: []string{inner.Mountpoint}, KernelLog: true, KernelLogHold: testHold}, false)
	xfsIO(t, "-x", "-c", "shutdown", outer.Mountpoint) // the inner image's file now fails every I/O
	if err := testutil.DirectRead(file); !errors.Is(err, syscall.EIO) {
		t.Fatalf("O_DIRECT read: %v, want EIO", err)
	}
	e := c.next()
	onFS(t, e, inner, "ext4")
	if e.Error != "EIO" || !strings.Contains(e.KernelMessage, "I/O error, dev "+inner.Name) {
		t.Errorf("block I/O error event: %s", event.AppendText(nil, &e))
	}
	switch e.Source {
	case event.SourceKmsg:
	case event.SourceFanotify:
		// Its path is not looked up here (no Config.OnPath); the
		// device fails every read anyway.
		if e.Inode == nil || *e.Inode != ino {
			t.Errorf("FAN_FS_ERROR of the failed read names inode %v, want %d (%s): %s", e.Inode, ino, file, event.AppendText(nil, &e))
		}
		t.Logf("this kernel reports file I/O errors through FAN_FS_ERROR: %s", event.AppendText(nil, &e))
	default:
		t.Errorf("source %q", e.Source)
	}
}

// TestBtrfsCounterIncreaseReported: btrfs finds corrupted data, logs it
// and counts it in the device's corruption counter; the watcher reports the
// increase, with btrfs's message.
func TestBtrfsCounterIncreaseReported(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im, victim := testutil.NewBtrfsWithCorruptFile(t)
	mp := im.Mountpoint
	c := startConfig(t, Config{Paths: []string{mp}, KernelLog: true, KernelLogHold: testHold}, false)
	if _, err := os.ReadFile(victim); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading the corrupted file: %v, want EIO", err)
	}
	e := c.next()
	onFS(t, e, im, "btrfs")
	if e.Source != event.SourceBtrfs || e.Btrfs == nil || e.Btrfs.Counter != "corruption" ||
		e.Btrfs.From != 0 || e.Btrfs.To == 0 || e.ErrorCount != uint32(e.Btrfs.To) || e.Error != "EBADMSG" ||
		e.UUID == "" || e.Btrfs.FSUUID != e.UUID || !strings.HasPrefix(e.KernelMessage, "BTRFS ") {
		t.Errorf("btrfs counter event: %s", event.AppendText(nil, &e))
	}
}

// TestDeviceFieldMustAgree: a record whose structured DEVICE field names
// another block device than its text is not trusted.
func TestDeviceFieldMustAgree(t *testing.T) {
	testutil.RequireRoot(t)
	im := testutil.NewExt4(t, 0)
	major, minor, err := kmsg.DeviceNumber("/sys", im.Name)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(dev string) *kmsg.Message {
		r, err := kmsg.ParseRecord([]byte(fmt.Sprintf("3,1,1,-;Buffer I/O error on dev %s, logical block 0, async page read\n SUBSYSTEM=block\n DEVICE=%s\n", im.Name, dev)))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := kmsg.Classify(r)
		if !ok {
			t.Fatalf("%q not classified", r.Message)
		}
		return &m
	}
	if !deviceFieldAgrees("/sys", rec(fmt.Sprintf("b%d:%d", major, minor))) {
		t.Errorf("a DEVICE field naming %s is not accepted", im.Name)
	}
	if deviceFieldAgrees("/sys", rec(fmt.Sprintf("b%d:%d", major, minor+1000))) {
		t.Errorf("a DEVICE field naming another device is accepted")
	}
	if !deviceFieldAgrees("/sys", rec("+pci:0000:00:01.0")) {
		t.Errorf("a DEVICE field that names no block device is not ignored")
	}
}

// TestStopDeliversWhatIsHeld: when Run stops, kernel log messages still in
// their hold and fanotify events still queued are delivered before it
// returns, not dropped.
func TestStopDeliversWhatIsHeld(t *testing.T) {
	testutil.CheckNoLeaks(t)
	a := testutil.NewExt4(t, 0)
	b := testutil.NewExt4(t, 0)
	path, write := fakeKernelLog(t)
	c := startConfig(t, Config{Paths: []string{a.Mountpoint, b.Mountpoint}, KernelLog: true, KernelLogPath: path, KernelLogHold: time.Hour}, false)
	for i := range 16 {
		write("4,%d,%d,-;EXT4-fs warning (device %s): ext4_end_bio:368: I/O error 10 writing to inode 12 starting block %d)", 100+i, 1+i, b.Name, 9345+i)
	}
	if err := os.WriteFile("/sys/fs/ext4/"+a.Name+"/trigger_fs_error", []byte("just before the stop\n"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []event.Event
	for len(c.events) > 0 {
		got = append(got, <-c.events)
	}
	var fan, held bool
	for _, e := range got {
		switch {
		case e.Device == a.Dev && e.Source == event.SourceFanotify && e.Error == "EUCLEAN":
			fan = true
		case e.Device == b.Dev && e.Source == event.SourceKmsg && e.ErrorCount == 16:
			held = true
		default:
			t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
		}
	}
	if !fan || !held {
		t.Errorf("after the stop: the queued FAN_FS_ERROR event delivered: %v; the 16 held kernel log messages delivered as one event: %v", fan, held)
	}
}

// TestKernelLogEventCorroboratedByExt4: a kernel-log-only event of an ext4
// that has just recorded an error in its superblock is corroborated by
// that record; the same message on an ext4 with no recent error is not.
func TestKernelLogEventCorroboratedByExt4(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	path, write := fakeKernelLog(t)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, KernelLog: true, KernelLogPath: path, KernelLogHold: testHold}, false)
	// A real error ext4 records (errors_count, last_error_time) and
	// reports through FAN_FS_ERROR.
	if err := im.TriggerError("recorded"); err != nil {
		t.Fatal(err)
	}
	if e := c.next(); e.Source != event.SourceFanotify {
		t.Fatalf("first event: %s", event.AppendText(nil, &e))
	}
	// A message later than the FAN_FS_ERROR event's hold (else it would
	// count as part of that trouble), within ext4's record's second slack.
	time.Sleep(testHold + 100*time.Millisecond)
	write("4,100,1,-;EXT4-fs warning (device %s): ext4_end_bio:368: I/O error 10 writing to inode 12 starting block 9345)", im.Name)
	e := c.next()
	if e.Source != event.SourceKmsg || e.CorroboratedBy != event.CorroboratedExt4Count {
		t.Errorf("kernel-log event right after a recorded ext4 error: source %s, corroborated by %q, want %q: %s",
			e.Source, e.CorroboratedBy, event.CorroboratedExt4Count, event.AppendText(nil, &e))
	}
}
