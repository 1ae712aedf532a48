package fanotify

import (
	"errors"
	"fmt"
	"os"
	"syscall"
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
	// fdError: the group reports FAN_REPORT_FD_ERROR, so an fd of -1 is
	// -EPERM, not FAN_NOFD.
	fdError bool
}

// kernelRelease returns the running kernel's release (uname -r), which
// decides whether an EINVAL means a missing feature.
var kernelRelease = func() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// New creates a group as c says. The descriptor is always non-blocking and
// close-on-exec (FAN_NONBLOCK|FAN_CLOEXEC), which the Go poller needs. If
// the kernel lacks a flag c uses, the error is an *UnsupportedError naming
// it and the first Linux version with it. Creating groups needs
// CAP_SYS_ADMIN (ErrPermission).
func New(c Config) (*Group, error) {
	flags := uint(c.Class) | uint(c.Report)
	if c.UnlimitedQueue {
		flags |= unix.FAN_UNLIMITED_QUEUE
	}
	if c.UnlimitedMarks {
		flags |= unix.FAN_UNLIMITED_MARKS
	}
	// O_RDONLY is 0: zero EventFlags open event files read-only.
	fd, err := unix.FanotifyInit(flags|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, uint(c.EventFlags|unix.O_LARGEFILE|unix.O_CLOEXEC))
	if err != nil {
		return nil, initErrorFor(err, c.initFeatures(), kernelRelease())
	}
	var f *os.File
	if c.OwnPoll {
		f, err = newUnpolledFile(fd)
		if err != nil {
			return nil, err
		}
	} else {
		f = os.NewFile(uintptr(fd), "fanotify")
	}
	return &Group{f: f, fdError: c.Report&ReportFDError != 0}, nil
}

// newUnpolledFile wraps the non-blocking descriptor fd in an os.File that
// the runtime poller does not watch: os.NewFile registers only descriptors
// it finds non-blocking, so fd is made blocking for the call and
// non-blocking again after it.
func newUnpolledFile(fd int) (*os.File, error) {
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fanotify: fcntl: %w", err)
	}
	f := os.NewFile(uintptr(fd), "fanotify")
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, fmt.Errorf("fanotify: fcntl: %w", err)
	}
	return f, nil
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
	if merr := g.rawMark(flags, mask, path); merr != nil {
		return markError(path, merr, feature, minVersion)
	}
	return nil
}

// rawMark calls fanotify_mark(2) on the group's descriptor; it returns the
// errno, or the error of a closed group.
func (g *Group) rawMark(flags uint, mask uint64, path string) error {
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
	return merr
}

// Mark adds the events of mask to the group's mark of path (the object
// target says: the inode, its mount, its file system or, for
// TargetMountNamespace, the mount namespace whose nsfs file path is). With
// Ignore or IgnoredMask in flags the mask is added to the ignore mask
// instead: those events are not reported for this object even when another
// mark asks for them. Add OnDir to report (or ignore) events on
// directories, and EventOnChild on a directory to cover its children.
//
// Errors are *MarkError values; when the kernel lacks a feature the mark
// uses, the Reason is an *UnsupportedError naming it.
func (g *Group) Mark(target Target, path string, mask Mask, flags MarkFlags) error {
	return g.markOp(unix.FAN_MARK_ADD, target, path, mask, flags)
}

// Unmark removes the events of mask from the group's mark (or, with Ignore
// or IgnoredMask, its ignore mask) of path; a mark left with an empty mask
// goes away. Unmarking an object the group has no mark on fails with
// ErrNotMarked.
func (g *Group) Unmark(target Target, path string, mask Mask, flags MarkFlags) error {
	err := g.markOp(unix.FAN_MARK_REMOVE, target, path, mask, flags)
	var me *MarkError
	if errors.As(err, &me) && me.Err == unix.ENOENT {
		if _, serr := os.Lstat(path); serr == nil {
			me.Reason = ErrNotMarked
		}
	}
	return err
}

// Flush removes every mark of the group on objects of the target kind
// (FAN_MARK_FLUSH): all inode marks, all mount marks, all file system marks
// or all mount namespace marks.
func (g *Group) Flush(target Target) error {
	if err := g.rawMark(unix.FAN_MARK_FLUSH|uint(target), 0, ""); err != nil {
		return markErrorFor("", err, markFeatures(target, 0, 0), kernelRelease())
	}
	return nil
}

func (g *Group) markOp(op uint, target Target, path string, mask Mask, flags MarkFlags) error {
	if err := g.rawMark(op|uint(target)|uint(flags), uint64(mask), path); err != nil {
		if _, ok := err.(unix.Errno); !ok {
			return err
		}
		return markErrorFor(path, err, markFeatures(target, mask, flags), kernelRelease())
	}
	return nil
}

// Respond answers the permission event ev (OpenPerm, AccessPerm,
// OpenExecPerm, PreAccess) with r: Allow, Deny or DenyErrno(errno). The
// access that caused the event waits until it is answered, so every
// permission event must be answered exactly once; an unanswered event is
// allowed when the group is closed. Respond does not close ev.FD: the
// caller closes it (Event.Close) after responding, and may read the file
// through it before.
func (g *Group) Respond(ev *Event, r Response) error {
	var b [8]byte
	ne.PutUint32(b[0:], uint32(ev.FD))
	ne.PutUint32(b[4:], uint32(r))
	_, err := g.f.Write(b[:])
	if err == nil {
		return nil
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		switch {
		case pe.Err == unix.ENOENT:
			return fmt.Errorf("fanotify: respond to fd %d: no permission event of this group is waiting for it (answered already?): %w", ev.FD, pe.Err)
		case pe.Err == unix.EINVAL && r>>24 != 0 && olderThan(kernelRelease(), featDenyErrno.min):
			return &UnsupportedError{Feature: featDenyErrno.name, MinVersion: featDenyErrno.min, Err: pe.Err}
		case pe.Err == unix.EINVAL:
			return fmt.Errorf("fanotify: respond to fd %d: the kernel refuses response %#x (an errno needs a pre-content group and one of the allowed values): %w", ev.FD, uint32(r), pe.Err)
		}
	}
	return fmt.Errorf("fanotify: respond to fd %d: %w", ev.FD, err)
}

// Close closes the descriptors the event carries, FD and a pidfd record's
// PIDFD, when they are descriptors, and sets them to NoFD and NoPIDFD so a
// second Close does nothing.
func (e *Event) Close() error {
	var err error
	if e.FD >= 0 {
		err = unix.Close(int(e.FD))
		e.FD = NoFD
	}
	if e.Records&HasPIDFD != 0 && e.PIDFD >= 0 {
		if perr := unix.Close(int(e.PIDFD)); err == nil {
			err = perr
		}
		e.PIDFD = NoPIDFD
	}
	if err != nil {
		return fmt.Errorf("fanotify: closing an event's descriptors: %w", err)
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
	first := len(dst)
	dst, err = Parse(dst, buf[:n])
	setEPERM(dst[first:], g.fdError)
	return dst, err
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

// SyscallConn gives access to the group's descriptor, for system calls this
// package does not make (an ioctl, fstat, /proc/self/fdinfo). The
// descriptor must not be closed or made blocking.
func (g *Group) SyscallConn() (syscall.RawConn, error) { return g.f.SyscallConn() }

// SetReadDeadline sets the time after which a pending or future Read fails
// with os.ErrDeadlineExceeded; the zero time means no deadline.
func (g *Group) SetReadDeadline(t time.Time) error { return g.f.SetReadDeadline(t) }

// Close closes the group, removing all its marks. A Read pending in another
// goroutine returns os.ErrClosed.
func (g *Group) Close() error { return g.f.Close() }
