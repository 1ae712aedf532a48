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
