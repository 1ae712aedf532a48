package fanotify

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ReadBufferSize is a read buffer size that holds many events per read(2).
// The kernel refuses buffers smaller than one event.
const ReadBufferSize = 64 << 10

// Group is a fanotify notification group. Its descriptor is non-blocking and
// close-on-exec and is driven by the Go runtime poller: Read waits without
// occupying a thread, honours SetReadDeadline, and returns os.ErrClosed once
// Close is called from another goroutine.
type Group struct {
	f *os.File
}

// NewErrorGroup creates a group for file system error events: a notification
// group that reports file identifiers (FAN_CLASS_NOTIF|FAN_REPORT_FID).
func NewErrorGroup() (*Group, error) {
	return Init(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID, "FAN_REPORT_FID", "5.1")
}

// NewMountGroup creates a group for mount events in a mount namespace
// (FAN_REPORT_MNT, Linux 6.15+). Such a group carries no other events.
func NewMountGroup() (*Group, error) {
	return Init(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_MNT, "FAN_REPORT_MNT", "6.15")
}

// Init creates a group with the given fanotify_init(2) flags; FAN_CLOEXEC and
// FAN_NONBLOCK are always added. feature and minVersion name what the flags
// need, for the UnsupportedError returned if the kernel refuses them.
func Init(flags uint, feature, minVersion string) (*Group, error) {
	fd, err := unix.FanotifyInit(flags|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, initError(err, feature, minVersion)
	}
	// The descriptor is non-blocking, so os.NewFile registers it with the
	// runtime poller.
	return &Group{f: os.NewFile(uintptr(fd), "fanotify")}, nil
}

// MarkFilesystemErrors marks the file system that holds path for FAN_FS_ERROR
// events. The mark belongs to the superblock: every mount of it is covered,
// and the mark goes away by itself when the file system is unmounted for good.
func (g *Group) MarkFilesystemErrors(path string) error {
	return g.mark(unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_FS_ERROR, path, "FAN_FS_ERROR", "5.16")
}

// UnmarkFilesystemErrors removes the FAN_FS_ERROR mark of path's file system.
func (g *Group) UnmarkFilesystemErrors(path string) error {
	return g.mark(unix.FAN_MARK_REMOVE|unix.FAN_MARK_FILESYSTEM, unix.FAN_FS_ERROR, path, "FAN_FS_ERROR", "5.16")
}

// MarkMountNamespace marks the mount namespace nsPath (for example
// /proc/self/ns/mnt) for mount attach and detach events. The group must come
// from NewMountGroup.
func (g *Group) MarkMountNamespace(nsPath string) error {
	return g.mark(unix.FAN_MARK_ADD|unix.FAN_MARK_MNTNS, unix.FAN_MNT_ATTACH|unix.FAN_MNT_DETACH, nsPath, "FAN_MARK_MNTNS", "6.15")
}

func (g *Group) mark(flags uint, mask uint64, path, feature, minVersion string) error {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return err
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		merr = unix.FanotifyMark(int(fd), flags, mask, unix.AT_FDCWD, path)
	}); err != nil {
		return err
	}
	if merr != nil {
		return markError(path, merr, feature, minVersion)
	}
	return nil
}

// Read reads raw events into p, waiting until at least one is queued. It
// returns os.ErrClosed after Close and os.ErrDeadlineExceeded after the read
// deadline passes.
func (g *Group) Read(p []byte) (int, error) {
	n, err := g.f.Read(p)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Err == unix.EINVAL && len(p) < 4096 {
			return n, fmt.Errorf("fanotify: read buffer of %d bytes is too small for an event: %w", len(p), err)
		}
	}
	return n, err
}

// ReadEvents reads one batch of events into buf, decodes them and appends
// them to dst. A decoding error is returned together with the events decoded
// before it.
func (g *Group) ReadEvents(buf []byte, dst []Event) ([]Event, error) {
	n, err := g.Read(buf)
	if err != nil {
		return dst, err
	}
	return Parse(dst, buf[:n])
}

// Queued returns how many bytes of events are queued and not yet read
// (ioctl FIONREAD): zero means a Read now would find nothing.
func (g *Group) Queued() (int, error) {
	rc, err := g.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	// TIOCINQ is FIONREAD, which fanotify answers with the size of the
	// queued events.
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return 0, err
	}
	if ierr != nil {
		return 0, fmt.Errorf("fanotify: FIONREAD: %w", ierr)
	}
	return n, nil
}

// SetReadDeadline sets the time after which a pending or future Read fails
// with os.ErrDeadlineExceeded; the zero time means no deadline.
func (g *Group) SetReadDeadline(t time.Time) error { return g.f.SetReadDeadline(t) }

// Close closes the group, removing all its marks. A Read pending in another
// goroutine returns os.ErrClosed.
func (g *Group) Close() error { return g.f.Close() }
