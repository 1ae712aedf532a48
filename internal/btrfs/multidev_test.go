package btrfs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// attachLoop attaches file to a free loop device with LO_FLAGS_AUTOCLEAR and
// returns the device path and a descriptor that keeps it attached until it
// is closed: once a mounted file system holds the device too, the kernel
// detaches it when that file system lets it go.
func attachLoop(t *testing.T, file string) (string, int) {
	t.Helper()
	img, err := unix.Open(file, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(img)
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ctl)
	for attempt := range 100 {
		time.Sleep(time.Duration(attempt) * time.Millisecond)
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatal(err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		rw, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cfg := unix.LoopConfig{Fd: uint32(img)}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], file)
		err = unix.IoctlLoopConfigure(rw, &cfg)
		if errors.Is(err, unix.EBUSY) {
			unix.Close(rw) // taken by someone else meanwhile
			continue
		}
		if err != nil {
			unix.Close(rw)
			t.Fatal(err)
		}
		// Mounting needs the device not to be open for writing.
		ro, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		unix.Close(rw)
		if err != nil {
			t.Fatal(err)
		}
		return dev, ro
	}
	t.Fatal("no free loop device")
	return "", -1
}

// waitLoopsGone waits until no loop device is backed by a file under dir.
func waitLoopsGone(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		files, err := loopfs.BackingFiles()
		if err != nil {
			t.Error(err)
			return
		}
		busy := false
		for _, f := range files {
			busy = busy || strings.HasPrefix(f, dir+"/")
		}
		if !busy || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTwoDevicesCountedApart corrupts one device's copy of a file on a
// two-device RAID1 file system: scrub repairs it from the other copy, and
// only that device's corruption counter goes up.
func TestTwoDevicesCountedApart(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "mkfs.btrfs", "btrfs-progs")
	testutil.RequireCommand(t, "btrfs", "btrfs-progs")
	testutil.CheckNoLeaks(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Runs after the image's own cleanup: the first device's loop device
	// goes when btrfs lets it go, a moment after the unmount.
	t.Cleanup(func() { waitLoopsGone(t, dir) })

	first := filepath.Join(dir, "first.img")
	if err := os.WriteFile(first, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(first, 256<<20); err != nil {
		t.Fatal(err)
	}
	// mkfs numbers the devices in the order given: first.img is device 1,
	// the Image's file device 2.
	im, err := loopfs.Create(dir, "btrfs", 256<<20, "-m", "raid1", "-d", "raid1", first)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := im.Remove(); err != nil {
			t.Error(err)
		}
	})
	mp := filepath.Join(dir, "mnt")
	mount := func() string {
		dev, fd := attachLoop(t, first)
		defer unix.Close(fd)
		if err := im.Mount(mp, "device="+dev); err != nil {
			t.Fatal(err)
		}
		return dev
	}
	mount()
	marker := writeVictim(t, filepath.Join(mp, "victim"))
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	corruptImage(t, im.File, marker) // device 2's copy only
	firstDev := mount()
	dropCaches(t)

	var tr btrfs.Tracker
	uuid, base := checkSources(t, mp)
	want := []btrfs.DeviceStats{{DevID: 1, Path: firstDev}, {DevID: 2, Path: im.Dev}}
	if !reflect.DeepEqual(base, want) {
		t.Fatalf("before scrub: %+v, want %+v", base, want)
	}
	tr.Update(uuid, base)

	if out, code := btrfsTool(t, "scrub", "start", "-B", mp); code != 0 {
		t.Errorf("btrfs scrub start -B: exit status %d, want 0 (all repaired)\n%s", code, out)
	}
	_, after := checkSources(t, mp)
	if len(after) != 2 || after[0] != base[0] || after[1].CorruptionErrs == 0 {
		t.Fatalf("after scrub: %+v, want corruption errors on device 2 only", after)
	}
	incs := tr.Update(uuid, after)
	if want := wantIncreases(uuid, base[1], after[1]); !reflect.DeepEqual(incs, want) {
		t.Errorf("Tracker:\n got %+v\nwant %+v", incs, want)
	}
	for _, inc := range incs {
		t.Log(inc)
	}
	if _, err := os.ReadFile(filepath.Join(mp, "victim")); err != nil {
		t.Errorf("reading the repaired file: %v", err)
	}
}
