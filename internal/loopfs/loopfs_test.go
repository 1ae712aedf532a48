package loopfs_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// newImage creates an unmounted image for a privileged test, removed when the
// test ends, and checks that the test leaves no mount or loop device behind.
func newImage(t *testing.T, fstype string, size int64) *loopfs.Image {
	t.Helper()
	testutil.RequireRoot(t)
	prog, pkg := loopfs.MkfsPackage(fstype)
	testutil.RequireCommand(t, prog, pkg)
	testutil.CheckNoLeaks(t)
	im, err := loopfs.Create(t.TempDir(), fstype, size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Remove(); err != nil {
			t.Errorf("Remove: %v", err)
		}
	})
	return im
}

// loopOf returns the loop device backed by file, or "".
func loopOf(t *testing.T, file string) string {
	t.Helper()
	loops, err := loopfs.BackingFiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range loops {
		if f == file {
			return name
		}
	}
	return ""
}

func mount(t *testing.T, im *loopfs.Image, mp string) {
	t.Helper()
	if err := im.Mount(mp, "errors=continue"); err != nil {
		t.Fatal(err)
	}
}

func unmount(t *testing.T, im *loopfs.Image) {
	t.Helper()
	name := im.Name
	start := time.Now()
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	t.Logf("unmount of %s including loop detach took %v", name, time.Since(start))
	if im.Dev != "" || im.Name != "" || im.Mountpoint != "" {
		t.Errorf("after Unmount: Dev %q Name %q Mountpoint %q, want all empty", im.Dev, im.Name, im.Mountpoint)
	}
	if l := loopOf(t, im.File); l != "" {
		t.Errorf("after Unmount: %s still attached to %s", l, im.File)
	}
}

func TestCreateRejectsBadArguments(t *testing.T) {
	dir := t.TempDir()
	if _, err := loopfs.Create(dir, "vfat", 1<<20); err == nil || !strings.Contains(err.Error(), "vfat") {
		t.Errorf("Create vfat: got %v, want an error naming vfat", err)
	}
	if _, err := loopfs.Create(dir, "ext4", 0); err == nil {
		t.Error("Create with size 0: no error")
	}
	if _, err := loopfs.Create(filepath.Join(dir, "missing"), "ext4", 1<<20); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Create in missing directory: got %v, want an error naming it", err)
	}
	if _, err := loopfs.Create(dir, "ext4", 1<<20, "-O", "no_such_feature"); err == nil || !strings.Contains(err.Error(), "mkfs.ext4") {
		t.Errorf("Create with bad mkfs arguments: got %v, want an error naming mkfs.ext4", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed Create left files behind: %v", ents)
	}
}

func TestExt4Lifecycle(t *testing.T) {
	im := newImage(t, "ext4", 64<<20)
	if st, err := os.Stat(im.File); err != nil {
		t.Fatal(err)
	} else if st.Size() != 64<<20 {
		t.Errorf("image size %d, want %d", st.Size(), 64<<20)
	}
	if !filepath.IsAbs(im.File) || !strings.HasPrefix(filepath.Base(im.File), "ext4-") || !strings.HasSuffix(im.File, ".img") {
		t.Errorf("image file name %q, want absolute dir/ext4-*.img", im.File)
	}
	mp := filepath.Join(t.TempDir(), "a", "mnt") // Mount creates it
	mount(t, im, mp)
	if !strings.HasPrefix(im.Dev, "/dev/loop") || im.Dev != "/dev/"+im.Name || im.Mountpoint != mp {
		t.Fatalf("after Mount: Dev %q Name %q Mountpoint %q", im.Dev, im.Name, im.Mountpoint)
	}
	if l := loopOf(t, im.File); l != im.Name {
		t.Errorf("loop device backed by %s is %q, want %q", im.File, l, im.Name)
	}
	if flags, err := os.ReadFile("/sys/block/" + im.Name + "/loop/autoclear"); err != nil || strings.TrimSpace(string(flags)) != "1" {
		t.Errorf("autoclear of %s: %q %v, want 1", im.Name, flags, err)
	}
	if _, err := os.Stat(filepath.Join(im.SysfsDir(), "errors_count")); err != nil {
		t.Errorf("SysfsDir %s: %v", im.SysfsDir(), err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Errorf("statfs %s: type %#x, %v; want ext4", mp, st.Type, err)
	}
	if err := im.Mount(mp, ""); err == nil {
		t.Error("second Mount of a mounted image: no error")
	}
	if err := os.WriteFile(filepath.Join(mp, "hello"), []byte("hello, world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unmount(t, im)
	if err := im.Unmount(); err != nil {
		t.Errorf("Unmount of an unmounted image: %v", err)
	}

	mp2 := filepath.Join(t.TempDir(), "mnt2")
	mount(t, im, mp2)
	b, err := os.ReadFile(filepath.Join(mp2, "hello"))
	if err != nil || string(b) != "hello, world\n" {
		t.Errorf("after remount: read %q, %v", b, err)
	}
	file := im.File
	if err := im.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, stat %s: %v, want not exist", file, err)
	}
	if l := loopOf(t, file); l != "" {
		t.Errorf("after Remove: %s still attached to %s", l, file)
	}
	if err := im.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestMountFailureDetachesLoop(t *testing.T) {
	im := newImage(t, "ext4", 64<<20)
	im.FSType = "xfs" // wrong type: the mount fails after the loop device is attached
	err := im.Mount(filepath.Join(t.TempDir(), "mnt"), "")
	im.FSType = "ext4"
	if err == nil {
		t.Fatal("mounting ext4 as xfs succeeded")
	}
	t.Log(err)
	for _, want := range []string{"/dev/loop", im.File, "xfs"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if im.Mounted() {
		t.Error("image counts as mounted after a failed Mount")
	}
	if l := loopOf(t, im.File); l != "" {
		t.Errorf("after failed Mount: %s still attached to %s", l, im.File)
	}
	if err := im.Mount(filepath.Join(t.TempDir(), "mnt"), "bogus_option"); err == nil {
		t.Error("mount with bogus option succeeded")
	}
	if l := loopOf(t, im.File); l != "" {
		t.Errorf("after failed Mount: %s still attached to %s", l, im.File)
	}
}

func TestDebugfsCorruptInode(t *testing.T) {
	im := newImage(t, "ext4", 64<<20)
	mp := filepath.Join(t.TempDir(), "mnt")
	mount(t, im, mp)
	if err := os.Mkdir(filepath.Join(mp, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "dir", "bad"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := im.Debugfs("stat dir/bad"); err == nil || !strings.Contains(err.Error(), "mounted") {
		t.Errorf("Debugfs on a mounted image: got %v, want an error saying it is mounted", err)
	}
	unmount(t, im)

	if err := im.Debugfs("sif dir/bad mode 0xff"); err != nil {
		t.Fatal(err)
	}
	out, err := im.DebugfsOutput("stat dir/bad")
	if err != nil || !strings.Contains(out, "Mode:  0377") {
		t.Errorf("debugfs stat dir/bad: %v, output:\n%s", err, out)
	}
	err = im.Debugfs("sif dir/missing mode 0xff")
	if err == nil || !strings.Contains(err.Error(), "File not found") || strings.Contains(err.Error(), "debugfs 1.") {
		t.Errorf("Debugfs on a missing file: got %v, want the File not found line without the banner", err)
	}
	if err := im.Debugfs("no_such_request"); err == nil {
		t.Error("Debugfs with an unknown request: no error")
	}

	mount(t, im, mp)
	before, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	_, err = os.Lstat(filepath.Join(mp, "dir", "bad"))
	if !errors.Is(err, syscall.Errno(117)) {
		t.Fatalf("lstat of corrupted inode: %v, want EUCLEAN", err)
	}
	// ext4 publishes the count from a kernel worker: wait for it (bounded).
	after, err := im.ErrorsCount()
	for deadline := time.Now().Add(5 * time.Second); err == nil && after <= before && time.Now().Before(deadline); after, err = im.ErrorsCount() {
		time.Sleep(time.Millisecond)
	}
	if err != nil || after <= before {
		t.Errorf("errors_count %d -> %d (%v), want it to grow", before, after, err)
	}
}

func TestTriggerError(t *testing.T) {
	im := newImage(t, "ext4", 64<<20)
	if err := im.TriggerError("unmounted"); err == nil {
		t.Error("TriggerError on an unmounted image: no error")
	}
	mount(t, im, filepath.Join(t.TempDir(), "mnt"))
	before, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	if err := im.TriggerError("loopfs test"); err != nil {
		t.Fatal(err)
	}
	if err := im.TriggerError(""); err == nil {
		t.Error("TriggerError with an empty message: no error")
	}
	// ext4 publishes the count from a kernel worker shortly after the
	// write returns: wait for it (bounded) before checking it.
	after, err := im.ErrorsCount()
	for deadline := time.Now().Add(5 * time.Second); err == nil && after == before && time.Now().Before(deadline); after, err = im.ErrorsCount() {
		time.Sleep(time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Errorf("errors_count %d -> %d, want +1", before, after)
	}
	b, err := os.ReadFile(filepath.Join(im.SysfsDir(), "last_error_func"))
	if err != nil || !strings.Contains(string(b), "trigger_test_error") {
		t.Errorf("last_error_func %q, %v, want trigger_test_error", b, err)
	}
}

func TestAbort(t *testing.T) {
	for _, writer := range []bool{false, true} {
		t.Run(fmt.Sprintf("writer=%v", writer), func(t *testing.T) { testAbort(t, writer) })
	}
}

// testAbort checks Abort without and with a file open for writing (which
// makes the read-only remount fail with EBUSY).
func testAbort(t *testing.T, writer bool) {
	im := newImage(t, "ext4", 64<<20)
	mp := filepath.Join(t.TempDir(), "mnt")
	mount(t, im, mp)
	var f *os.File
	if writer {
		var err error
		f, err = os.OpenFile(filepath.Join(mp, "open"), os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	fan := newErrorWatch(t, mp)

	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	errno, count := fan.next(t)
	if errno != unix.ESHUTDOWN || count < 1 {
		t.Errorf("FAN_FS_ERROR after abort: error %d (%v) count %d, want ESHUTDOWN", errno, errno, count)
	}
	if writer {
		_, err := f.Write([]byte("x"))
		t.Logf("write to a file opened before abort: %v", err)
		if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EIO) {
			t.Errorf("write after abort: %v, want EROFS or EIO", err)
		}
		f.Close()
	}
	err := os.WriteFile(filepath.Join(mp, "new"), nil, 0o644)
	t.Logf("create after abort: %v", err)
	if !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EIO) {
		t.Errorf("create after abort: %v, want EROFS or EIO", err)
	}
	unmount(t, im)
}

// errorWatch is a minimal fanotify FAN_FS_ERROR listener, independent of the
// fanotify package, to check what errors loopfs produces.
type errorWatch struct{ fd int }

func newErrorWatch(t *testing.T, mp string) *errorWatch {
	t.Helper()
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY)
	if err != nil {
		t.Fatalf("fanotify_init: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_FS_ERROR, unix.AT_FDCWD, mp); err != nil {
		t.Fatalf("fanotify_mark %s: %v", mp, err)
	}
	return &errorWatch{fd}
}

// next waits for the next FAN_FS_ERROR event and returns its error record.
func (w *errorWatch) next(t *testing.T) (unix.Errno, uint32) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); err != nil || n == 0 {
		t.Fatalf("no FAN_FS_ERROR event within 5s (poll: %v)", err)
	}
	buf := make([]byte, 4096)
	n, err := unix.Read(w.fd, buf)
	if err != nil {
		t.Fatalf("reading fanotify: %v", err)
	}
	buf = buf[:n]
	le := binary.LittleEndian
	eventLen, metaLen := le.Uint32(buf[0:]), le.Uint16(buf[6:])
	if mask := le.Uint64(buf[8:]); mask != unix.FAN_FS_ERROR {
		t.Fatalf("fanotify event mask %#x, want FAN_FS_ERROR", mask)
	}
	for off := int(metaLen); off+4 <= int(eventLen); {
		typ, l := buf[off], int(le.Uint16(buf[off+2:]))
		if l < 4 {
			break
		}
		if typ == 5 && l >= 12 { // FAN_EVENT_INFO_TYPE_ERROR
			return unix.Errno(int32(le.Uint32(buf[off+4:]))), le.Uint32(buf[off+8:])
		}
		off += l
	}
	t.Fatalf("FAN_FS_ERROR event without an error record: % x", buf)
	return 0, 0
}

func TestRemove(t *testing.T) {
	im := newImage(t, "ext4", 64<<20)
	mount(t, im, filepath.Join(t.TempDir(), "mnt"))
	file, name := im.File, im.Name
	if err := im.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Remove, stat %s: %v", file, err)
	}
	if b, err := os.ReadFile("/sys/block/" + name + "/loop/backing_file"); err == nil {
		t.Errorf("after Remove, %s is still attached to %s", name, b)
	}
	if l := loopOf(t, file); l != "" {
		t.Errorf("after Remove: %s still attached to %s", l, file)
	}
	if err := im.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestUnmountBusy(t *testing.T) {
	defer loopfs.SetUnmountTimeouts(3, 10*time.Millisecond, 300*time.Millisecond)()
	im := newImage(t, "ext4", 64<<20)
	mp := filepath.Join(t.TempDir(), "mnt")
	mount(t, im, mp)
	f, err := os.Create(filepath.Join(mp, "busy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := im.Name
	err = im.Unmount()
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), "lazily") || !strings.Contains(err.Error(), im.File) {
		t.Errorf("Unmount of a busy file system: got %v, want an error about the lazy unmount naming the image", err)
	}
	if im.Mounted() {
		t.Error("image still counts as mounted after a lazy unmount")
	}
	mps, err := testutil.MountPoints()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mps {
		if m == mp {
			t.Errorf("%s still in the mount table after a lazy unmount", mp)
		}
	}
	if l := loopOf(t, im.File); l != name {
		t.Errorf("loop device of the busy file system: %q, want %q still attached", l, name)
	}
	f.Close()
	deadline := time.Now().Add(5 * time.Second)
	for loopOf(t, im.File) != "" {
		if time.Now().After(deadline) {
			t.Fatalf("%s still attached 5s after closing the last file", name)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentMounts(t *testing.T) {
	const n = 8
	ims := make([]*loopfs.Image, n)
	for i := range ims {
		ims[i] = newImage(t, "ext4", 32<<20)
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, im := range ims {
		wg.Go(func() { errs[i] = im.Mount(filepath.Join(dir, fmt.Sprint(i)), "errors=continue") })
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, im := range ims {
		if errs[i] != nil {
			t.Errorf("concurrent Mount %d: %v", i, errs[i])
			continue
		}
		if seen[im.Dev] {
			t.Errorf("%s used twice", im.Dev)
		}
		seen[im.Dev] = true
		if l := loopOf(t, im.File); l != im.Name {
			t.Errorf("%s: backing loop device %q, want %q", im.File, l, im.Name)
		}
	}
	for i, im := range ims {
		wg.Go(func() { errs[i] = im.Unmount() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Unmount %d: %v", i, err)
		}
	}
}

func testOtherFS(t *testing.T, fstype string, magic int64) {
	im := newImage(t, fstype, 512<<20)
	mp := filepath.Join(t.TempDir(), "mnt")
	mount2 := func() {
		if err := im.Mount(mp, ""); err != nil {
			t.Fatal(err)
		}
	}
	mount2()
	var st unix.Statfs_t
	if err := unix.Statfs(mp, &st); err != nil || st.Type != magic {
		t.Errorf("statfs %s: type %#x, %v; want %#x", mp, st.Type, err, magic)
	}
	if err := os.WriteFile(filepath.Join(mp, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := im.TriggerError("x"); err == nil {
		t.Errorf("TriggerError on %s: no error", fstype)
	}
	if err := im.Abort(); err == nil {
		t.Errorf("Abort on %s: no error", fstype)
	}
	if err := im.Debugfs("stat /"); err == nil {
		t.Errorf("Debugfs on %s: no error", fstype)
	}
	if fstype == "xfs" {
		if _, err := os.Stat(im.SysfsDir()); err != nil {
			t.Errorf("SysfsDir: %v", err)
		}
	}
	unmount(t, im)
	mount2()
	if b, err := os.ReadFile(filepath.Join(mp, "hello")); err != nil || string(b) != "hi" {
		t.Errorf("after remount: read %q, %v", b, err)
	}
}

func TestXFS(t *testing.T)   { testOtherFS(t, "xfs", unix.XFS_SUPER_MAGIC) }
func TestBtrfs(t *testing.T) { testOtherFS(t, "btrfs", unix.BTRFS_SUPER_MAGIC) }
