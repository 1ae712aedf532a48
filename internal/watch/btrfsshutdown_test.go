package watch

import (
	"errors"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
)

// fsIocShutdown is FS_IOC_SHUTDOWN, _IOR('X', 125, __u32): the ioctl
// `xfs_io -x -c shutdown` calls, which btrfs accepts too on kernels that
// can shut it down (btrfs_force_shutdown); fsShutdownNoLogFlush is its
// FS_SHUTDOWN_FLAGS_NOLOGFLUSH.
const (
	fsIocShutdown        = 0x8004587d
	fsShutdownNoLogFlush = 2
)

// TestBtrfsShutdownThroughFanotify: an emergency shutdown of a btrfs file
// system (FS_IOC_SHUTDOWN) is reported through FAN_FS_ERROR (ESHUTDOWN,
// about the file system) on kernels whose btrfs reports it to fserror
// (Linux 7.1+). On a kernel whose btrfs refuses the ioctl, or that has no
// fserror reporting, no source can report it: the test checks that no
// fanotify event comes and skips with the exact reason.
func TestBtrfsShutdownThroughFanotify(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewImage(t, "btrfs", 256<<20, "")
	c := start(t, []string{im.Mountpoint}, false)
	fd, err := unix.Open(im.Mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags := uint32(fsShutdownNoLogFlush)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocShutdown, uintptr(unsafe.Pointer(&flags)))
	p := probeFSError()
	if errno != 0 {
		if errors.Is(errno, syscall.ENOTTY) || errors.Is(errno, syscall.EOPNOTSUPP) || errors.Is(errno, syscall.EINVAL) {
			c.noneWithin(absentWait)
			testutil.Skip(t, testutil.KernelLacks, "btrfs on this kernel (%s) refuses FS_IOC_SHUTDOWN (%v): it cannot be shut down from user space (btrfs has the ioctl from Linux 7.1, and reports the shutdown through FAN_FS_ERROR (fserror) from then on); checked that no event came", kernelRelease(t), errno)
		}
		t.Fatalf("FS_IOC_SHUTDOWN of the btrfs at %s: %v", im.Mountpoint, errno)
	}
	if p.err != nil {
		testutil.Skip(t, testutil.Missing, "btrfs was shut down, but whether the kernel reports it through FAN_FS_ERROR cannot be told (%v)", p.err)
	}
	if !p.has {
		c.noneWithin(absentWait)
		testutil.Skip(t, testutil.KernelLacks, "btrfs was shut down, but this kernel (%s) has no %s: btrfs reports a shutdown through FAN_FS_ERROR only through fserror (Linux 7.1+); checked that no event came", kernelRelease(t), fsErrorSymbol)
	}
	e := c.next()
	line := string(event.AppendText(nil, &e))
	t.Logf("%s", line)
	if e.Source != event.SourceFanotify || e.Error != "ESHUTDOWN" || e.Errno != int(syscall.ESHUTDOWN) || e.FSType != "btrfs" ||
		e.Device != im.Dev || len(e.Mountpoints) != 1 || e.Mountpoints[0] != im.Mountpoint || e.Inode != nil {
		t.Errorf("event %s, want a FAN_FS_ERROR ESHUTDOWN about the btrfs on %s at %s, no inode", line, im.Dev, im.Mountpoint)
	}
}

// noneWithin fails the test if an event arrives within d.
func (c *collector) noneWithin(d time.Duration) {
	c.t.Helper()
	select {
	case e := <-c.events:
		c.t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
	case <-time.After(d):
	}
}

// kernelRelease is uname -r.
func kernelRelease(t *testing.T) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}
