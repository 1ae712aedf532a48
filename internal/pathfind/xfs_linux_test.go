package pathfind_test

import (
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
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/pathfind"
	"github.com/fshealth/fshealth/internal/testutil"
)

// xfsErrors reads the kernel log and counts the XFS error messages about
// device dev, up to a marker record it writes: everything the kernel
// logged before the marker is read.
type xfsErrors struct {
	t   *testing.T
	r   *kmsg.Reader
	dev string
	// inodes are the inodes the counted messages named.
	inodes []uint64
}

func newXFSErrors(t *testing.T, dev string) *xfsErrors {
	r, err := kmsg.Open(kmsg.DefaultPath, kmsg.Options{Start: kmsg.StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &xfsErrors{t: t, r: r, dev: dev}
}

// since returns how many XFS error messages about the device the kernel
// logged since the last call.
func (c *xfsErrors) since() int {
	c.t.Helper()
	marker := fmt.Sprintf("pathfind test marker %d", time.Now().UnixNano())
	if err := os.WriteFile("/dev/kmsg", []byte(marker+"\n"), 0); err != nil {
		c.t.Fatal(err)
	}
	n := 0
	c.r.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		it, err := c.r.Next()
		if err != nil {
			c.t.Fatalf("reading the kernel log up to the marker: %v", err)
		}
		switch it := it.(type) {
		case kmsg.Gap:
			c.t.Fatalf("kernel log records lost: %v", it)
		case kmsg.Record:
			if strings.Contains(it.Message, marker) {
				return n
			}
			if m, ok := kmsg.Classify(it); ok && m.FSType == kmsg.FSXFS && m.Device == c.dev {
				c.t.Logf("XFS: %s", it.Message)
				n++
				c.inodes = append(c.inodes, m.Inode)
			}
		}
	}
}

// xfsID returns the inode number and generation of p from its file
// handle, decoded as fanotify decodes it.
func xfsID(t *testing.T, p string) (uint64, uint32) {
	t.Helper()
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		t.Fatalf("file handle of %s: %v", p, err)
	}
	ino, gen, ok := fanotify.Handle{Type: int32(h.Type()), Bytes: h.Bytes()}.Inode()
	if !ok {
		t.Fatalf("file handle of %s (type %#x, %d bytes) names no inode", p, h.Type(), len(h.Bytes()))
	}
	return ino, gen
}

// TestFindXFSParentPointers: on an XFS file system with parent pointers
// (made by Debian 13's mkfs.xfs), the path of an inode XFS reports corrupt
// in the kernel log is read from the device with xfs_db -r while the file
// system is mounted — through directories whose names hold a newline,
// control characters, quotes, backslashes and "->", for a file with a name
// in the root directory too, and for one with so many names that its
// parent pointers are kept outside the inode — and the lookup makes XFS
// log no error. A reused inode is refused; an xfs_db too old to read parent
// pointers (the host's, on Debian 12) is refused; lookups are bounded.
func TestFindXFSParentPointers(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireXFSParentPointers(t)
	x := testutil.NewXFSProgs(t)
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	x.Run(t, "mkfs.xfs", "-q", "-f", "-n", "parent=1", im.File)
	if err := im.Mount(mnt, ""); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "a b\nc -> d", "\x01\"q\\001\\d\x7f\xff")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "f\td -> e\r")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(mnt, "link")
	if err := os.Link(bad, link); err != nil {
		t.Fatal(err)
	}
	many := filepath.Join(dir, "many")
	if err := os.WriteFile(many, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if err := os.Link(many, filepath.Join(dir, fmt.Sprintf("many, a name long enough to fill the inode %02d", i))); err != nil {
			t.Fatal(err)
		}
	}
	ino, gen := xfsID(t, bad)
	mino, mgen := xfsID(t, many)
	dino, dgen := xfsID(t, dir)
	// Written to the device, then the file's mode given no valid file
	// type (xfs_db keeps the checksum right): XFS's inode verifier fails
	// when the inode is read in.
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	x.Run(t, "xfs_db", "-x", "-c", fmt.Sprintf("inode %d", ino), "-c", "write core.mode 0170644", im.File)
	if err := im.Mount(mnt, ""); err != nil {
		t.Fatal(err)
	}
	errs := newXFSErrors(t, im.Name)
	if _, err := os.Stat(bad); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking the corrupt inode up: %v, want EUCLEAN", err)
	}
	if n := errs.since(); n == 0 || !containsInode(errs.inodes, ino) {
		t.Fatalf("XFS logged %d error(s) about inodes %v, want inode %d's", n, errs.inodes, ino)
	}
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	req := func(ino uint64, gen uint32) pathfind.Request {
		return pathfind.Request{FSKey: "test", FSType: "xfs", Device: im.Dev, Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev),
			Mounts: []pathfind.Mount{{Point: mnt, Root: "/"}}, Inode: ino, Generation: gen}
	}
	newFinder := func() *pathfind.Finder { return &pathfind.Finder{XFSDB: x.Command("xfs_db")} }

	// The inode as the kernel log names it: no generation.
	res := find(t, newFinder(), req(errs.inodes[len(errs.inodes)-1], 0))
	if res.Err != nil || res.Names != 2 || res.Path != bad && res.Path != link {
		t.Errorf("corrupt inode: %q (%d names), %v; want %q or %q", res.Path, res.Names, res.Err, bad, link)
	}
	t.Logf("corrupt inode found as %q in %v", res.Path, res.Took)
	if res := find(t, newFinder(), req(ino, gen)); res.Err != nil || res.Path != bad && res.Path != link {
		t.Errorf("corrupt inode with its generation: %q, %v", res.Path, res.Err)
	}
	if res := find(t, newFinder(), req(dino, dgen)); res.Err != nil || res.Path != dir || res.Names != 1 {
		t.Errorf("directory: %q (%d names), %v; want %q", res.Path, res.Names, res.Err, dir)
	}
	if res := find(t, newFinder(), req(mino, mgen)); res.Err != nil || res.Names != 41 || filepath.Dir(res.Path) != dir {
		t.Errorf("inode with 41 names: %q (%d names), %v; want one in %q", res.Path, res.Names, res.Err, dir)
	}
	if res := find(t, newFinder(), req(128, 0)); res.Err != nil || res.Path != mnt {
		t.Errorf("root directory: %q, %v; want %q", res.Path, res.Err, mnt)
	}
	if res := find(t, newFinder(), req(ino, gen+1)); res.Err == nil || !strings.Contains(res.Err.Error(), "deleted and its inode reused") {
		t.Errorf("an inode of another generation: %q, %v; want it refused", res.Path, res.Err)
	}
	sub := find(t, newFinder(), func() pathfind.Request {
		r := req(ino, gen)
		r.Mounts = []pathfind.Mount{{Point: "/elsewhere", Root: filepath.Dir(strings.TrimPrefix(dir, mnt))}}
		return r
	}())
	if sub.Err != nil || sub.Path != filepath.Join("/elsewhere", filepath.Base(dir), filepath.Base(bad)) {
		t.Errorf("through a mount of a subdirectory: %q, %v", sub.Path, sub.Err)
	}
	// A rename after a lookup, written to the device in place (freezing
	// the file system writes back its log): the next lookup finds the
	// new name (xfs_db reads the device with O_DIRECT, nothing cached).
	renamed := filepath.Join(mnt, "renamed -> x")
	if err := os.Rename(filepath.Join(mnt, "a b\nc -> d"), renamed); err != nil {
		t.Fatal(err)
	}
	freezeThaw(t, mnt)
	want := filepath.Join(renamed, filepath.Base(dir), filepath.Base(bad))
	if res := find(t, newFinder(), req(ino, gen)); res.Err != nil || res.Path != want && res.Path != link {
		t.Errorf("after a rename: %q, %v; want %q", res.Path, res.Err, want)
	}
	if res := find(t, &pathfind.Finder{}, req(ino, gen)); res.Err == nil ||
		!strings.Contains(res.Err.Error(), "cannot read parent pointers") {
		t.Errorf("the host's xfs_db %s: %q, %v; want it refused", hostXFSDBVersion(), res.Path, res.Err)
	} else {
		t.Logf("the host's xfs_db %s: %v", hostXFSDBVersion(), res.Err)
	}
	if res := find(t, &pathfind.Finder{XFSDB: x.Command("xfs_db"), Timeout: time.Nanosecond}, req(ino, gen)); res.Err == nil || !strings.Contains(res.Err.Error(), "gave up after") {
		t.Errorf("a lookup past its timeout: %q, %v", res.Path, res.Err)
	}
	if res := find(t, &pathfind.Finder{XFSDB: x.Command("xfs_db"), MaxOutput: 8}, req(ino, gen)); res.Err == nil || !strings.Contains(res.Err.Error(), "more than 8 bytes") {
		t.Errorf("a lookup past its output cap: %q, %v", res.Path, res.Err)
	}
	if n := errs.since(); n != 0 {
		t.Errorf("looking paths up on the device made XFS log %d error(s)", n)
	}
	// The count is real: touching the corrupt inode again is counted.
	if _, err := os.Stat(link); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking the corrupt inode up again: %v, want EUCLEAN", err)
	}
	if n := errs.since(); n == 0 {
		t.Errorf("XFS logged no error when the corrupt inode was looked up again: the count proves nothing")
	}
}

// TestFindXFSWithoutParentPointers: an XFS file system without parent
// pointers (Debian 12's mkfs.xfs makes none) gets no path, and says why.
func TestFindXFSWithoutParentPointers(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_db", "xfsprogs")
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	p := filepath.Join(im.Mountpoint, "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ino, gen := xfsID(t, p)
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	r := pathfind.Request{FSKey: "test", FSType: "xfs", Device: im.Dev, Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev),
		Mounts: []pathfind.Mount{{Point: im.Mountpoint, Root: "/"}}, Inode: ino, Generation: gen}
	if res := find(t, &pathfind.Finder{}, r); !errors.Is(res.Err, pathfind.ErrNoParentPointers) {
		t.Errorf("no parent pointers: %q, %v; want ErrNoParentPointers", res.Path, res.Err)
	}
}

func containsInode(l []uint64, ino uint64) bool {
	for _, i := range l {
		if i == ino {
			return true
		}
	}
	return false
}

// hostXFSDBVersion is the host's xfs_db version, for the log.
func hostXFSDBVersion() string {
	p, err := loopfs.FindTool("xfs_db")
	if err != nil {
		return "(none)"
	}
	out, _ := exec.Command(p, "-V").Output()
	return strings.TrimSpace(string(out))
}

// freezeThaw freezes and thaws the file system mounted at mnt (FIFREEZE,
// FITHAW), which writes its metadata in place.
func freezeThaw(t *testing.T, mnt string) {
	t.Helper()
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const fifreeze, fithaw = 0xc0045877, 0xc0045878
	if _, err := unix.IoctlGetInt(fd, fifreeze); err != nil {
		t.Fatalf("freezing %s: %v", mnt, err)
	}
	if _, err := unix.IoctlGetInt(fd, fithaw); err != nil {
		t.Fatalf("thawing %s: %v", mnt, err)
	}
}
