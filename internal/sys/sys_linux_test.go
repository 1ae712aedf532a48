package sys_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/sys"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// TestHandlePath: a file's handle leads back to its path while the kernel
// has its dentry cached; after a remount it is disconnected, which is an
// error, never a wrong path ("/"). Directories are always reconnected.
func TestHandlePath(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	mp := im.Mountpoint
	dir := filepath.Join(mp, "d1", "d2")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	handle := func(p string) *unix.FileHandle {
		h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		return &h
	}
	fh, dh := handle(file), handle(dir)
	if p, err := sys.HandlePath(mp, fh.Type(), fh.Bytes()); err != nil || p != file {
		t.Errorf("cached file: %q, %v; want %s", p, err, file)
	}
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	if p, err := sys.HandlePath(mp, fh.Type(), fh.Bytes()); !errors.Is(err, sys.ErrDisconnected) {
		t.Errorf("file not in the dentry cache: %q, %v; want ErrDisconnected", p, err)
	}
	if p, err := sys.HandlePath(mp, dh.Type(), dh.Bytes()); err != nil || p != dir {
		t.Errorf("directory: %q, %v; want %s", p, err, dir)
	}
}

// TestStatmount: statmount(2) agrees with the mount table about a mount
// (found by its mountinfo id, through listmount-free means: the unique id
// of the mount a file descriptor is on, from statx STATX_MNT_ID_UNIQUE).
func TestStatmount(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, im.Mountpoint, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		t.Fatal(err)
	}
	if stx.Mask&unix.STATX_MNT_ID_UNIQUE == 0 {
		t.Skip("no STATX_MNT_ID_UNIQUE (Linux 6.8+)")
	}
	m, err := sys.Statmount(stx.Mnt_id)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	if m.ID != stx.Mnt_id || m.FSType != "ext4" || m.Point != im.Mountpoint || m.Root != "/" ||
		m.Major != unix.Major(st.Dev) || m.Minor != unix.Minor(st.Dev) || m.OldID == 0 {
		t.Errorf("Statmount = %+v, want ext4 at %s on %d:%d", m, im.Mountpoint, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	if _, err := sys.Statmount(1 << 62); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Statmount of no mount: %v, want ENOENT", err)
	}
}
