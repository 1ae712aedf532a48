package kmsg

// Privileged tests: they make real file system errors on scratch images and
// check what the kernel logs about them. Other tests (and other test
// binaries) may log at the same time, so every expectation names the device.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// collector reads the kernel log from the moment it is made and keeps the
// classified messages, so that expectations can be checked in any order.
type collector struct {
	t    *testing.T
	r    *Reader
	msgs []Message
	raw  []string // every kernel record read, for failure reports
	gaps []Gap
}

// newCollector opens /dev/kmsg at its end.
func newCollector(t *testing.T) *collector {
	t.Helper()
	r, err := Open(DefaultPath, Options{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &collector{t: t, r: r}
}

// waitFor returns the first classified message for which match is true,
// reading the kernel log for up to 20 seconds. While waiting it calls poke,
// if not nil, about every second: the kernel rate-limits some messages
// (block layer errors: 10 per 5 seconds for the whole system), so a test
// may need to cause its error again.
func (c *collector) waitFor(desc string, poke func(), match func(Message) bool) Message {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	checked := 0
	nextPoke := time.Now().Add(time.Second)
	for {
		for ; checked < len(c.msgs); checked++ {
			if match(c.msgs[checked]) {
				m := c.msgs[checked]
				c.t.Logf("%s: %s", desc, m.Record.String())
				return m
			}
		}
		now := time.Now()
		if now.After(deadline) {
			c.t.Fatalf("no kernel log message %s within 20s; kernel records read:\n%s", desc, strings.Join(c.raw, ""))
		}
		until := deadline
		if poke != nil {
			if !now.Before(nextPoke) {
				poke()
				nextPoke = time.Now().Add(time.Second)
			}
			until = nextPoke
		}
		c.r.SetReadDeadline(until)
		it, err := c.r.Next()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			c.t.Fatalf("reading %s: %v", DefaultPath, err)
		}
		switch it := it.(type) {
		case Gap:
			c.t.Logf("kernel log gap: %v", it)
			c.gaps = append(c.gaps, it)
		case Record:
			if !it.Kernel() {
				continue
			}
			c.raw = append(c.raw, it.String())
			if m, ok := Classify(it); ok {
				c.msgs = append(c.msgs, m)
			}
		}
	}
}

// is returns a predicate matching messages of the given type, device and
// kind.
func is(fstype, dev string, kind Kind) func(Message) bool {
	return func(m Message) bool { return m.FSType == fstype && m.Device == dev && m.Kind == kind }
}

// and combines predicates.
func and(ps ...func(Message) bool) func(Message) bool {
	return func(m Message) bool {
		for _, p := range ps {
			if !p(m) {
				return false
			}
		}
		return true
	}
}

// run runs an external program and fails the test if it fails.
func run(t *testing.T, prog string, args ...string) string {
	t.Helper()
	out, err := runErr(prog, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr runs an external program found with loopfs.FindTool.
func runErr(prog string, args ...string) (string, error) {
	p, err := loopfs.FindTool(prog)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(p, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// writeFile writes data to path and fsyncs it, returning its inode number.
func writeFile(t *testing.T, path string, data []byte) uint64 {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return inode(t, path)
}

// inode returns the inode number of path.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// syncfs flushes the file system mounted at dir, ignoring errors (the
// tests expect it to fail).
func syncfs(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	unix.Syncfs(fd)
	unix.Close(fd)
}

// uncachedRead drops the cached pages of path (POSIX_FADV_DONTNEED) and
// reads it, so that the read reaches the device; it returns the error.
func uncachedRead(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, f)
	return err
}

// shutdownXFS shuts the XFS file system mounted at dir down with xfs_io.
func shutdownXFS(t *testing.T, dir string, flush bool) {
	t.Helper()
	cmd := "shutdown"
	if flush {
		cmd = "shutdown -f"
	}
	run(t, "xfs_io", "-x", "-c", cmd, dir)
}

// nestedImage creates a file system image of fstype inside the mounted
// outer image and mounts it. Shutting the outer XFS file system down then
// makes every I/O of the inner image's loop device fail with EIO: loop
// devices are the only block devices here, and there is no device mapper.
func nestedImage(t *testing.T, outer *loopfs.Image, fstype string, size int64, options string) *loopfs.Image {
	t.Helper()
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	inner, err := loopfs.Create(outer.Mountpoint, fstype, size)
	if err != nil {
		t.Fatal(err)
	}
	// The image file goes with the outer image; it cannot be removed once
	// the outer file system is shut down.
	t.Cleanup(func() {
		if err := inner.Unmount(); err != nil {
			t.Errorf("unmounting the inner %s image: %v", fstype, err)
		}
	})
	if err := inner.Mount(filepath.Join(t.TempDir(), "inner"), options); err != nil {
		t.Fatal(err)
	}
	return inner
}

func TestRealXFSShutdown(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	for _, flush := range []bool{false, true} {
		t.Run(fmt.Sprintf("flush=%v", flush), func(t *testing.T) {
			im := testutil.NewImage(t, "xfs", 300<<20, "")
			writeFile(t, filepath.Join(im.Mountpoint, "f"), []byte("hello\n"))
			c := newCollector(t)
			shutdownXFS(t, im.Mountpoint, flush)
			if _, err := os.ReadDir(im.Mountpoint); !errors.Is(err, syscall.EIO) {
				t.Errorf("reading the shut down file system: %v, want EIO", err)
			}
			m := c.waitFor("XFS user shutdown", nil, and(is(FSXFS, im.Name, KindShutdown), func(m Message) bool {
				return strings.Contains(m.Text, "User initiated shutdown")
			}))
			if m.Errno != 0 || m.Inode != 0 || m.Record.Level != LevelAlert {
				t.Errorf("unexpected fields: %+v", m)
			}
			c.waitFor("XFS shutdown cause", nil, and(is(FSXFS, im.Name, KindShutdown), func(m Message) bool {
				return m.Function == "xfs_fs_goingdown"
			}))
		})
	}
}

func TestRealXFSCorruption(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_db", "xfsprogs")
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	mp := im.Mountpoint
	bad := writeFile(t, filepath.Join(mp, "d", "bad"), []byte("hi\n"))
	for i := range 200 {
		writeFile(t, filepath.Join(mp, "big", fmt.Sprintf("file_with_a_longish_name_%d", i)), nil)
	}
	dir := inode(t, filepath.Join(mp, "big"))
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	// An invalid file type in the inode's mode; xfs_db updates the CRC,
	// so the inode verifier (not the CRC check) catches it.
	run(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", bad), "-c", "write core.mode 0170644", im.File)
	// A bad magic number in the first directory data block, CRC left stale.
	run(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", dir), "-c", "dblock 0", "-c", "fuzz -d dhdr.hdr.magic ones", im.File)
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t)

	if _, err := os.ReadFile(filepath.Join(mp, "d", "bad")); !errors.Is(err, syscall.EUCLEAN) {
		t.Errorf("reading the corrupted inode: %v, want EUCLEAN", err)
	}
	m := c.waitFor("XFS inode corruption", nil, and(is(FSXFS, im.Name, KindCorruption), func(m Message) bool { return m.Inode == bad }))
	if !strings.HasPrefix(m.Function, "xfs_dinode_verify") {
		t.Errorf("function %q, want xfs_dinode_verify...", m.Function)
	}

	if _, err := os.ReadDir(filepath.Join(mp, "big")); !errors.Is(err, syscall.EUCLEAN) && !errors.Is(err, syscall.EBADMSG) {
		t.Errorf("reading the corrupted directory: %v, want EUCLEAN", err)
	}
	c.waitFor("XFS directory block CRC error", nil, is(FSXFS, im.Name, KindChecksum))
	c.waitFor("XFS metadata read error", nil, and(is(FSXFS, im.Name, KindChecksum), func(m Message) bool {
		return m.Errno == syscall.EBADMSG && m.Function == "xfs_da_read_buf"
	}))
}

func TestRealXFSIOErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer := testutil.NewImage(t, "xfs", 512<<20, "")
	inner := nestedImage(t, outer, "xfs", 300<<20, "")
	for i := range 50 {
		writeFile(t, filepath.Join(inner.Mountpoint, "d", fmt.Sprint(i)), []byte("data\n"))
	}
	c := newCollector(t)
	shutdownXFS(t, outer.Mountpoint, false)
	poke := func() {
		os.WriteFile(filepath.Join(inner.Mountpoint, fmt.Sprintf("new-%d", time.Now().UnixNano())), []byte("x"), 0o644)
		syncfs(inner.Mountpoint)
	}
	poke()
	c.waitFor("XFS metadata or log I/O error on the inner file system", poke, and(is(FSXFS, inner.Name, KindIOError), func(m Message) bool {
		return m.Errno == syscall.EIO || strings.Contains(m.Text, "Failing async write")
	}))
	c.waitFor("XFS shutdown of the inner file system", poke, is(FSXFS, inner.Name, KindShutdown))
	// The outer file system's own messages name the outer device.
	c.waitFor("XFS shutdown of the outer file system", nil, is(FSXFS, outer.Name, KindShutdown))
}

// findAll returns the offsets of pattern in the file at path.
func findAll(t *testing.T, path string, pattern []byte) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var offs []int64
	buf := make([]byte, 1<<20+len(pattern))
	var base int64
	keep := 0
	for {
		n, err := io.ReadFull(f, buf[keep:])
		n += keep
		for i := 0; ; {
			j := bytes.Index(buf[i:n], pattern)
			if j < 0 {
				break
			}
			offs = append(offs, base+int64(i+j))
			i += j + 1
		}
		if err != nil {
			break
		}
		keep = len(pattern) - 1
		copy(buf, buf[n-keep:n])
		base += int64(n - keep)
	}
	return offs
}

func TestRealBtrfsChecksum(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "btrfs", 256<<20, "")
	mp := im.Mountpoint
	head := []byte(fmt.Sprintf("KMSGTEST-%d-%d-HEAD", os.Getpid(), time.Now().UnixNano()))
	data := append(append([]byte{}, head...), bytes.Repeat([]byte("fshealth kmsg btrfs checksum test "), 300)...)[:8192]
	ino := writeFile(t, filepath.Join(mp, "f"), data) // too big to be inlined in metadata
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	offs := findAll(t, im.File, head)
	if len(offs) != 1 {
		t.Fatalf("found the file's data %d times in the image, want once", len(offs))
	}
	img, err := os.OpenFile(im.File, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = img.WriteAt([]byte("XXXX"), offs[0]+100)
	if cerr := img.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	c := newCollector(t)
	path := filepath.Join(mp, "f")
	poke := func() { uncachedRead(path) }
	if _, err := os.ReadFile(path); !errors.Is(err, syscall.EIO) {
		t.Errorf("reading the corrupted file: %v, want EIO", err)
	}
	c.waitFor("btrfs data checksum failure", poke, and(is(FSBtrfs, im.Name, KindChecksum), func(m Message) bool { return m.Inode == ino }))
	c.waitFor("btrfs device error counters", poke, and(is(FSBtrfs, im.Name, KindDeviceError), func(m Message) bool {
		return m.DevicePath == im.Dev && strings.Contains(m.Text, "corrupt ")
	}))
	if _, err := loopfs.FindTool("btrfs"); err != nil {
		t.Logf("no scrub test: %v", err)
		return
	}
	// scrub exits with status 3 for uncorrectable errors.
	runErr("btrfs", "scrub", "start", "-B", mp)
	c.waitFor("btrfs scrub checksum error", nil, and(is(FSBtrfs, im.Name, KindChecksum), func(m Message) bool {
		// "scrub: " starts the message from Linux 6.4.
		return m.Inode == ino && m.DevicePath == im.Dev && strings.Contains(m.Text, "checksum error at logical ")
	}))
}

func TestRealBtrfsIOErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer := testutil.NewImage(t, "xfs", 512<<20, "")
	inner := nestedImage(t, outer, "btrfs", 256<<20, "")
	old := filepath.Join(inner.Mountpoint, "old")
	writeFile(t, old, bytes.Repeat([]byte("old data "), 10000))
	syncfs(inner.Mountpoint)
	c := newCollector(t)
	shutdownXFS(t, outer.Mountpoint, false)
	// Reads first: once a write has failed, btrfs aborts its transaction
	// and turns read-only.
	read := func() { uncachedRead(old) }
	read()
	c.waitFor("btrfs read error counter", read, and(is(FSBtrfs, inner.Name, KindDeviceError), func(m Message) bool {
		return m.DevicePath == inner.Dev && !strings.Contains(m.Text, "rd 0,")
	}))
	write := func() {
		os.WriteFile(filepath.Join(inner.Mountpoint, fmt.Sprintf("new-%d", time.Now().UnixNano())), bytes.Repeat([]byte("x"), 1<<20), 0o644)
		syncfs(inner.Mountpoint)
	}
	write()
	// The first failed write may abort the transaction before btrfs logs
	// its write error counter (seen under load): either comes first.
	c.waitFor("btrfs write error counter or transaction abort", write, func(m Message) bool {
		return is(FSBtrfs, inner.Name, KindDeviceError)(m) && m.DevicePath == inner.Dev && !strings.Contains(m.Text, "wr 0,") ||
			is(FSBtrfs, inner.Name, KindIOError)(m) && m.Errno == syscall.EIO
	})
	c.waitFor("btrfs transaction abort", write, and(is(FSBtrfs, inner.Name, KindIOError), func(m Message) bool {
		return m.Errno == syscall.EIO && strings.Contains(m.Text, "IO failure")
	}))
	c.waitFor("btrfs forced read-only", write, is(FSBtrfs, inner.Name, KindShutdown))
}

func TestRealExt4(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	mp := im.Mountpoint
	bad := writeFile(t, filepath.Join(mp, "dir", "bad"), []byte("hi\n"))
	c := newCollector(t)

	msg := fmt.Sprintf("fshealth kmsg test %d", os.Getpid())
	if err := im.TriggerError(msg); err != nil {
		t.Fatal(err)
	}
	c.waitFor("ext4 triggered error", nil, and(is(FSExt4, im.Name, KindError), func(m Message) bool {
		return m.Function == "trigger_test_error" && strings.HasSuffix(m.Text, msg)
	}))

	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Debugfs("sif dir/bad mode 0xff"); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mp, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mp, "dir", "bad")); !errors.Is(err, syscall.EUCLEAN) {
		t.Errorf("stat of the corrupted inode: %v, want EUCLEAN", err)
	}
	c.waitFor("ext4 bogus i_mode", nil, and(is(FSExt4, im.Name, KindCorruption), func(m Message) bool {
		return m.Inode == bad && m.Function == "ext4_lookup" && strings.Contains(m.Text, "bogus i_mode")
	}))

	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	c.waitFor("ext4 abort", nil, and(is(FSExt4, im.Name, KindShutdown), func(m Message) bool { return strings.Contains(m.Text, "Abort forced by user") }))
	// Before Linux 6.13 or so a remount with "abort" neither aborts the
	// journal nor remounts read-only on its own (seen on 6.1 and 6.12 in
	// the kernel matrix); 6.18 and 7.x log both.
	if !kernelAtLeast(t, 6, 18) {
		t.Logf("Linux %s logs no journal abort for a remount abort: not checked", uname(t))
		return
	}
	c.waitFor("jbd2 abort", nil, and(is(FSExt4, im.Name, KindShutdown), func(m Message) bool { return strings.HasPrefix(m.Text, "Aborting journal on device "+im.Name+"-") }))
	c.waitFor("ext4 read-only", nil, and(is(FSExt4, im.Name, KindShutdown), func(m Message) bool { return strings.Contains(m.Text, "Remounting filesystem read-only") }))
}

func TestRealExt4ShutdownIoctl(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	im := testutil.NewExt4(t, 0)
	c := newCollector(t)
	shutdownXFS(t, im.Mountpoint, false) // EXT4_IOC_SHUTDOWN is XFS_IOC_GOINGDOWN
	c.waitFor("ext4 shutdown request", nil, and(is(FSExt4, im.Name, KindShutdown), func(m Message) bool { return strings.Contains(m.Text, "shut down requested") }))
}

func TestRealBlockAndExt4IOErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer := testutil.NewImage(t, "xfs", 512<<20, "")
	inner := nestedImage(t, outer, "ext4", 64<<20, "errors=continue")
	old := filepath.Join(inner.Mountpoint, "old")
	writeFile(t, old, bytes.Repeat([]byte("old data "), 1000))
	syncfs(inner.Mountpoint)
	// Written now, flushed after the failure: once the device fails, the
	// kernel's own reads may abort the journal at any moment, and ext4 then
	// refuses new writes (EROFS) before the test could make them.
	newFile := filepath.Join(inner.Mountpoint, "new")
	if err := os.WriteFile(newFile, bytes.Repeat([]byte("new data "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, newFile)
	c := newCollector(t)
	shutdownXFS(t, outer.Mountpoint, false)

	// Reads: every O_DIRECT read reaches the loop device and fails.
	read := func() { testutil.DirectRead(old) }
	if err := testutil.DirectRead(old); !errors.Is(err, syscall.EIO) {
		t.Errorf("O_DIRECT read on the inner file system: %v, want EIO", err)
	}
	m := c.waitFor("block read error", read, and(is(FSBlock, inner.Name, KindIOError), func(m Message) bool {
		return m.Op == "READ" && m.Errno == syscall.EIO && strings.HasPrefix(m.Text, "I/O error, dev ")
	}))
	if p, err := PartitionOf(DefaultSysRoot, m.Device, m.Sector); err != nil || p != inner.Name {
		t.Errorf("PartitionOf(%s, %d) = %q, %v", m.Device, m.Sector, p, err)
	}

	// Buffered reads of the block device itself go through buffer heads:
	// "Buffer I/O error on dev ..., async page read".
	bdevRead := func() { uncachedRead(inner.Dev) }
	bdevRead()
	c.waitFor("buffer I/O error", bdevRead, and(is(FSBlock, inner.Name, KindIOError), func(m Message) bool {
		return strings.HasPrefix(m.Text, "Buffer I/O error on dev") && m.Op == "READ"
	}))

	// Writes: data writeback fails, then the journal.
	syncfs(inner.Mountpoint)
	// Which write fails first is the kernel's choice: the file's data
	// ("I/O error 10 writing to inode N") or the journal, after which
	// the data's delayed allocation fails instead ("Delayed block
	// allocation failed for inode N ... with error 30") or writeback
	// cannot start ("ext4_do_writepages: jbd2_start: ... ino N; err
	// -30"). Each of these names the file's inode.
	c.waitFor("ext4 error naming the written inode", nil, func(m Message) bool {
		return m.FSType == FSExt4 && m.Device == inner.Name && m.Inode == ino
	})
	c.waitFor("jbd2 abort", func() { syncfs(inner.Mountpoint) }, is(FSExt4, inner.Name, KindShutdown))
}
