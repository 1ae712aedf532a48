package testutil

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// DirectRead reads the first 4 KiB of path with O_DIRECT, bypassing the
// page cache so that every call reaches the device, and returns the error.
func DirectRead(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// O_DIRECT wants an aligned buffer: a page of its own.
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	_, err = unix.Pread(fd, buf, 0)
	return err
}

// FlipOnce inverts the bytes of marker in the (unmounted) image file, where
// it occurs exactly once; it fails the test if it occurs anywhere else or
// nowhere. Writing a random marker into a file and flipping it in the image
// corrupts that file's data on disk.
func FlipOnce(t testing.TB, file string, marker []byte) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, marker)
	if i < 0 || bytes.Index(b[i+1:], marker) >= 0 {
		t.Fatalf("the marker is not in %s exactly once", file)
	}
	bad := bytes.Clone(marker)
	for j := range bad {
		bad[j] ^= 0xff
	}
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bad, int64(i)); err != nil {
		t.Fatal(err)
	}
}

// NewBtrfsWithCorruptFile creates and mounts a scratch btrfs file system
// (as NewImage) holding a file whose data is corrupted on disk (its
// checksum no longer matches), and returns it and the file's path. Reading
// the file fails with EIO and counts in the device's corruption counter.
func NewBtrfsWithCorruptFile(t testing.TB) (*loopfs.Image, string) {
	t.Helper()
	RequireCommand(t, "mkfs.btrfs", "btrfs-progs")
	im := NewImage(t, "btrfs", 256<<20, "")
	mp := im.Mountpoint
	victim := filepath.Join(mp, "victim")
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	FlipOnce(t, im.File, data[:32])
	if err := im.Mount(mp, ""); err != nil {
		t.Fatal(err)
	}
	return im, victim
}
