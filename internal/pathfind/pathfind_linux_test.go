package pathfind_test

import (
	"encoding/binary"
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

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/pathfind"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

func errorsCount(t *testing.T, im *loopfs.Image) int {
	t.Helper()
	n, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// errorCounter tells how many errors ext4 counted on a file system
// between two calls of since. ext4 publishes errors_count (and the last
// error) a moment after an error, from a worker, all counted errors at
// once: since raises a marker error (trigger_fs_error) and waits until it is
// published, which means everything raised before it is too.
type errorCounter struct {
	t    *testing.T
	im   *loopfs.Image
	last int
}

func newErrorCounter(t *testing.T, im *loopfs.Image) *errorCounter {
	c := &errorCounter{t: t, im: im, last: errorsCount(t, im)}
	c.since()
	return c
}

func (c *errorCounter) lastFunc() string {
	b, err := os.ReadFile(filepath.Join(c.im.SysfsDir(), "last_error_func"))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// since returns how many errors were counted since the last call, the
// marker errors not counted.
func (c *errorCounter) since() int {
	c.t.Helper()
	if err := c.im.TriggerError("pathfind test: marker"); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		f1 := c.lastFunc()
		n := errorsCount(c.t, c.im)
		if f1 == "trigger_test_error" && c.lastFunc() == f1 && n >= c.last+1 {
			d := n - c.last - 1
			c.last = n
			return d
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ext4 did not publish the marker error: errors_count %d, last error in %s", n, f1)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idOf returns the inode number and generation of p, from its ext4 file
// handle (32 bits each).
func idOf(t *testing.T, p string) (uint64, uint32) {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil || len(h.Bytes()) != 8 {
		t.Fatalf("file handle of %s: %v", p, err)
	}
	return uint64(binary.NativeEndian.Uint32(h.Bytes())), binary.NativeEndian.Uint32(h.Bytes()[4:])
}

// remount unmounts im, runs the debugfs requests on it and mounts it again.
func remount(t *testing.T, im *loopfs.Image, requests ...string) {
	t.Helper()
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	for _, r := range requests {
		if err := im.Debugfs(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
}

// TestOpenByHandleRaisesAnError is the evidence pathfind exists for:
// opening a corrupted ext4 inode by its file handle makes ext4 record a new
// error, every time, also when nobody else touched the inode (nothing is
// cached: a failed load leaves neither inode nor dentry behind), and
// replaces the recorded last error with its own (ext4_nfs_get_inode via
// __ext4_iget). Opening a healthy inode by handle records nothing; but
// whether an inode is healthy and cached cannot be known without opening
// it, so fshealth opens none.
func TestOpenByHandleRaisesAnError(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	bad, good := filepath.Join(im.Mountpoint, "bad"), filepath.Join(im.Mountpoint, "good")
	for _, p := range []string{bad, good} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	handle := func(p string) unix.FileHandle {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	bh, gh := handle(bad), handle(good)
	remount(t, im, "sif bad mode 0xff")
	mfd, err := unix.Open(im.Mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(mfd)
	open := func(h unix.FileHandle) error {
		fd, err := unix.OpenByHandleAt(mfd, h, unix.O_PATH|unix.O_CLOEXEC)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	c := newErrorCounter(t, im)
	if err := open(gh); err != nil {
		t.Fatalf("opening the healthy inode by handle: %v", err)
	}
	if n := c.since(); n != 0 {
		t.Errorf("opening a healthy inode by handle: %d error(s) counted", n)
	}
	for i := 1; i <= 2; i++ {
		if err := open(bh); !errors.Is(err, syscall.ESTALE) && !errors.Is(err, syscall.EUCLEAN) {
			t.Fatalf("opening the corrupted inode by handle: %v, want ESTALE or EUCLEAN", err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for c.lastFunc() != "ext4_nfs_get_inode" && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if f := c.lastFunc(); f != "ext4_nfs_get_inode" {
			t.Errorf("opening the corrupted inode by handle (%d): ext4's last error is in %s, want ext4_nfs_get_inode", i, f)
		}
		if n := c.since(); n != 1 {
			t.Errorf("opening the corrupted inode by handle (%d): %d error(s) counted, want 1", i, n)
		}
	}
}

// find runs one lookup on a new Finder and returns its result.
func find(t *testing.T, f *pathfind.Finder, r pathfind.Request) pathfind.Result {
	t.Helper()
	got := make(chan pathfind.Result, 1)
	f.Found = func(r pathfind.Result) { got <- r }
	defer f.Close()
	p, pending, err := f.Lookup(r)
	if !pending || p != "" || err != nil {
		t.Fatalf("Lookup: %q, pending %v, %v; want a pending lookup", p, pending, err)
	}
	select {
	case res := <-got:
		return res
	case <-time.After(time.Minute):
		t.Fatal("no result within a minute")
	}
	return pathfind.Result{}
}

// request is the lookup of inode ino on im's file system.
func request(t *testing.T, im *loopfs.Image, ino uint64, gen uint32) pathfind.Request {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	return pathfind.Request{FSKey: "test", FSType: "ext4", Device: im.Dev, Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev),
		Mounts: []pathfind.Mount{{Point: im.Mountpoint, Root: "/"}}, Inode: ino, Generation: gen}
}

// TestFindOnDevice: paths are read from the device while the file system
// is mounted — of a corrupted inode, through a directory whose name holds
// a newline, of a file with two names — without ext4 counting an error; a
// name that forges a record of the output is detected, not believed.
// Lookups are bounded in time and output.
func TestFindOnDevice(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	mnt := im.Mountpoint
	odd := filepath.Join(mnt, "a b\nc \"$(x)\"")
	if err := os.MkdirAll(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(odd, "bad")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(mnt, "link")
	if err := os.Link(bad, link); err != nil {
		t.Fatal(err)
	}
	// A file in a directory named so that its path, printed by ncheck,
	// reads as two records of the file's inode.
	victim := filepath.Join(mnt, "v")
	if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	vino, vgen := idOf(t, victim)
	forged := filepath.Join(mnt, "d\n"+strconv.FormatUint(vino, 10)+"\t")
	if err := os.Mkdir(forged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(victim, filepath.Join(forged, "shadow")); err != nil {
		t.Fatal(err)
	}
	ino, gen := idOf(t, bad)
	remount(t, im, fmt.Sprintf("sif <%d> mode 0xff", ino))
	if _, err := os.Lstat(link); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the corrupted inode: %v, want EUCLEAN", err)
	}
	c := newErrorCounter(t, im)

	res := find(t, &pathfind.Finder{}, request(t, im, ino, gen))
	if res.Err != nil || res.Names != 2 || res.Path != link && res.Path != bad {
		t.Errorf("corrupted inode with two names: path %q (%d names), %v; want %q or %q", res.Path, res.Names, res.Err, link, bad)
	}
	dino, dgen := idOf(t, odd)
	dir := find(t, &pathfind.Finder{}, request(t, im, dino, dgen))
	if dir.Err != nil || dir.Path != odd || dir.Names != 1 {
		t.Errorf("directory with a newline in its name: %q, %v; want %q", dir.Path, dir.Err, odd)
	}
	fr := find(t, &pathfind.Finder{}, request(t, im, vino, vgen))
	if fr.Err == nil || !strings.Contains(fr.Err.Error(), "ambiguous") {
		t.Errorf("a forged record was believed: path %q, %v", fr.Path, fr.Err)
	}
	none := find(t, &pathfind.Finder{}, request(t, im, 5000, 0))
	if none.Err == nil || !strings.Contains(none.Err.Error(), "no directory entry") {
		t.Errorf("an unused inode: %q, %v; want no directory entry", none.Path, none.Err)
	}
	reused := find(t, &pathfind.Finder{}, request(t, im, ino, gen+1))
	if reused.Err == nil || !strings.Contains(reused.Err.Error(), "deleted and its inode reused") {
		t.Errorf("an inode of another generation: %q, %v; want it refused", reused.Path, reused.Err)
	}
	slow := find(t, &pathfind.Finder{Timeout: time.Nanosecond}, request(t, im, ino, gen))
	if slow.Err == nil || !strings.Contains(slow.Err.Error(), "gave up after") {
		t.Errorf("a lookup past its timeout: %q, %v", slow.Path, slow.Err)
	}
	big := find(t, &pathfind.Finder{MaxOutput: 8}, request(t, im, ino, gen))
	if big.Err == nil || !strings.Contains(big.Err.Error(), "more than 8 bytes") {
		t.Errorf("a lookup past its output cap: %q, %v", big.Path, big.Err)
	}
	if n := c.since(); n != 0 {
		t.Errorf("looking paths up on the device made ext4 count %d error(s)", n)
	}
}

// TestLookupRemembers: a result is remembered and given at once; a
// lookup is queued once however often it is asked for; file
// systems other than ext4 and XFS are not looked up.
func TestLookupRemembers(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	p := filepath.Join(im.Mountpoint, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan pathfind.Result, 4)
	f := &pathfind.Finder{Found: func(r pathfind.Result) { got <- r }}
	defer f.Close()
	pino, pgen := idOf(t, p)
	r := request(t, im, pino, pgen)
	for range 3 {
		if _, pending, err := f.Lookup(r); !pending || err != nil {
			t.Fatalf("Lookup: pending %v, %v", pending, err)
		}
	}
	if res := <-got; res.Path != p || res.Err != nil {
		t.Errorf("found %q, %v; want %q", res.Path, res.Err, p)
	}
	if path, pending, err := f.Lookup(r); path != p || pending || err != nil {
		t.Errorf("after the lookup: %q, pending %v, %v", path, pending, err)
	}
	select {
	case res := <-got:
		t.Errorf("looked up twice: %+v", res)
	case <-time.After(100 * time.Millisecond):
	}
	r.FSType = "btrfs"
	if _, pending, err := f.Lookup(r); pending || !errors.Is(err, pathfind.ErrUnsupported) {
		t.Errorf("btrfs: pending %v, %v; want ErrUnsupported", pending, err)
	}
}

// TestUntrustedDebugfsRefused: a debugfs someone else could replace (here
// a copy in a directory writable by everyone, without the sticky bit) is
// not run, and the lookup says why.
func TestUntrustedDebugfsRefused(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	prog, err := loopfs.FindTool("debugfs")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "debugfs")
	if err := os.WriteFile(copyPath, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ino, gen := idOf(t, im.Mountpoint)
	res := find(t, &pathfind.Finder{Debugfs: copyPath}, request(t, im, ino, gen))
	if res.Err == nil || !strings.Contains(res.Err.Error(), "not running debugfs") {
		t.Errorf("an untrusted debugfs: %q, %v; want it refused", res.Path, res.Err)
	}
}
