package testutil

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// BtrfsSubvolumes is a scratch btrfs file system laid out as Fedora,
// openSUSE and Ubuntu install it: subvolumes @ and @home, only they mounted,
// never the top level; plus a bind mount of @.
type BtrfsSubvolumes struct {
	// Image is the image; its Mountpoint is the mount of subvolume @.
	*loopfs.Image
	// Home is the mount point of subvolume @home, Bind the bind mount of @.
	Home, Bind string
	// File is a 1 MiB file in @ (under Mountpoint) whose first data block
	// is corrupted on disk: reading it fails with EIO, and btrfs counts a
	// corruption error.
	File string
	// Physical is the byte offset in the image of the corrupted block.
	Physical int64
}

// Mountpoints returns every mount point, in mount order.
func (b *BtrfsSubvolumes) Mountpoints() []string { return []string{b.Mountpoint, b.Home, b.Bind} }

// NewBtrfsSubvolumesWithCorruptFile makes a BtrfsSubvolumes: it creates the
// file system with the subvolumes, writes the file into @, syncs, finds the
// file's first physical block (filefrag -v gives its btrfs logical address,
// btrfs-map-logical the offset on the device), unmounts, overwrites that
// block in the image with its inverse, and mounts only the subvolumes (and
// the bind mount). Everything is undone when the test ends.
func NewBtrfsSubvolumesWithCorruptFile(t testing.TB) *BtrfsSubvolumes {
	t.Helper()
	RequireCommand(t, "mkfs.btrfs", "btrfs-progs")
	RequireCommand(t, "btrfs-map-logical", "btrfs-progs")
	RequireCommand(t, "filefrag", "e2fsprogs")
	im := NewImage(t, "btrfs", 256<<20, "")
	top := im.Mountpoint
	for _, v := range []string{"@", "@home"} {
		if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(top, v)).CombinedOutput(); err != nil {
			t.Fatalf("btrfs subvolume create %s: %v: %s", v, err, out)
		}
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	victim := filepath.Join(top, "@", "victim")
	if err := os.WriteFile(victim, data, 0o644); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	out, err := exec.Command("filefrag", "-v", victim).CombinedOutput()
	if err != nil {
		t.Fatalf("filefrag -v: %v: %s", err, out)
	}
	logical, err := firstExtent(out)
	if err != nil {
		t.Fatalf("filefrag -v %s: %v:\n%s", victim, err, out)
	}
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command("btrfs-map-logical", "-l", strconv.FormatInt(logical, 10), "-b", "4096", im.File).CombinedOutput()
	if err != nil {
		t.Fatalf("btrfs-map-logical: %v: %s", err, out)
	}
	m := regexp.MustCompile(`(?m)^mirror 1 logical \d+ physical (\d+) `).FindSubmatch(out)
	if m == nil {
		t.Fatalf("btrfs-map-logical -l %d: no physical offset in %q", logical, out)
	}
	physical, _ := strconv.ParseInt(string(m[1]), 10, 64)
	f, err := os.OpenFile(im.File, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	if _, err := f.ReadAt(block, physical); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if !bytes.Equal(block, data[:4096]) {
		f.Close()
		t.Fatalf("the block at %d (logical %d) of %s does not hold the file's first block", physical, logical, im.File)
	}
	for i := range block {
		block[i] ^= 0xff
	}
	_, err = f.WriteAt(block, physical)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	dir := filepath.Dir(top)
	b := &BtrfsSubvolumes{Image: im, Home: filepath.Join(dir, "home"), Bind: filepath.Join(dir, "bind"), Physical: physical}
	if err := im.Mount(filepath.Join(dir, "root"), "subvol=@"); err != nil {
		t.Fatal(err)
	}
	b.File = filepath.Join(im.Mountpoint, "victim")
	mount := func(src, dst, fstype string, flags uintptr, data string) {
		t.Helper()
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
			t.Fatalf("mount %s on %s: %v", src, dst, err)
		}
		// Before the image's own cleanup (cleanups run last first).
		t.Cleanup(func() {
			if err := unix.Unmount(dst, 0); err != nil && !errors.Is(err, unix.EINVAL) {
				t.Errorf("unmounting %s: %v", dst, err)
				unix.Unmount(dst, unix.MNT_DETACH)
			}
		})
	}
	mount(im.Dev, b.Home, "btrfs", 0, "subvol=@home")
	mount(im.Mountpoint, b.Bind, "", unix.MS_BIND, "")
	return b
}

// firstExtent returns the physical offset, in bytes, of the first extent
// in `filefrag -v` output.
func firstExtent(out []byte) (int64, error) {
	bs := regexp.MustCompile(`blocks of (\d+) bytes`).FindSubmatch(out)
	ext := regexp.MustCompile(`(?m)^\s*0:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.`).FindSubmatch(out)
	if bs == nil || ext == nil {
		return 0, errors.New("no block size or first extent")
	}
	size, _ := strconv.ParseInt(string(bs[1]), 10, 64)
	block, _ := strconv.ParseInt(string(ext[1]), 10, 64)
	if size <= 0 {
		return 0, fmt.Errorf("block size %d", size)
	}
	return block * size, nil
}

// DropCaches writes 3 to /proc/sys/vm/drop_caches, so that the next read of
// a file reaches the device.
func DropCaches(t testing.TB) {
	t.Helper()
	unix.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o644); err != nil {
		t.Fatal(err)
	}
}
