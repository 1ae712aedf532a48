package testutil

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
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
