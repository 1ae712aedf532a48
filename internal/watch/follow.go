package watch

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/sys"
)

// Ways of following mounts, for Config.FollowMounts.
const (
	// FollowAuto uses fanotify mount events where the kernel has them
	// (Linux 6.15+), else mountinfo change notifications.
	FollowAuto = ""
	// FollowFanotify uses fanotify mount events (FAN_MNT_ATTACH/DETACH).
	FollowFanotify = "fanotify"
	// FollowMountinfo waits for POLLPRI on /proc/self/mountinfo, which the
	// kernel raises on every change of the mount namespace.
	FollowMountinfo = "mountinfo"
	// FollowOff does not follow mounts: the mount table is read once.
	FollowOff = "off"
)

// mountSource tells when the mount table may have changed. Wait returns
// after a change (or right away the first time nothing can be said); it
// never polls on a timer.
type mountSource interface {
	Wait() error
	Close() error
}

// openMountSource opens the source mode asks for; FollowAuto prefers
// fanotify mount events and falls back when the kernel lacks them.
func openMountSource(mode, procRoot string) (mountSource, string, error) {
	if mode == FollowAuto || mode == FollowFanotify {
		src, err := newFanotifyMounts()
		var unsup *fanotify.UnsupportedError
		switch {
		case err == nil:
			return src, FollowFanotify, nil
		case mode == FollowFanotify || !errors.As(err, &unsup):
			return nil, "", err
		}
	}
	src, err := newMountinfoSource(procRoot + "/self/mountinfo")
	if err != nil {
		return nil, "", err
	}
	return src, FollowMountinfo, nil
}

// fanotifyMounts follows the mount namespace with a FAN_REPORT_MNT group.
type fanotifyMounts struct {
	g   *fanotify.Group
	buf []byte
	// events are the mount events the last Wait read; nil if they could
	// not be decoded.
	events []fanotify.Event
}

func newFanotifyMounts() (*fanotifyMounts, error) {
	g, err := fanotify.NewMountGroup()
	if err != nil {
		return nil, err
	}
	if err := g.MarkMountNamespace("/proc/self/ns/mnt"); err != nil {
		g.Close()
		return nil, err
	}
	return &fanotifyMounts{g: g, buf: make([]byte, fanotify.ReadBufferSize)}, nil
}

// Wait returns once mount events (or an overflow, which also means "look
// again") were read. The events' contents do not matter: the mount table is
// re-read and compared as a whole.
func (f *fanotifyMounts) Wait() error {
	n, err := f.g.Read(f.buf)
	if err != nil {
		return err
	}
	if f.events, err = fanotify.Parse(f.events[:0], f.buf[:n]); err != nil {
		f.events = nil
	}
	return nil
}

func (f *fanotifyMounts) Close() error { return f.g.Close() }

// mountinfoSource waits for the kernel's change notification on a
// mountinfo file: poll(2) reports POLLPRI|POLLERR once the namespace's
// mounts changed since the descriptor was opened (or last reported). The
// polled descriptor is never read — reading it was seen to make later
// notifications go missing — but replaced by a fresh one after each
// notification, before the caller re-reads the table; so a change is
// either in that reading or reported on the new descriptor. An eventfd lets
// Close wake a pending poll.
type mountinfoSource struct {
	path string
	fd   int
	wake int
}

func newMountinfoSource(path string) (*mountinfoSource, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &mountinfoSource{path: path, fd: fd, wake: wake}, nil
}

func (s *mountinfoSource) Wait() error {
	for {
		fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLPRI}, {Fd: int32(s.wake), Events: unix.POLLIN}}
		_, err := unix.Poll(fds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll %s: %w", s.path, err)
		}
		if fds[1].Revents != 0 {
			return os.ErrClosed
		}
		if fds[0].Revents&(unix.POLLPRI|unix.POLLERR) != 0 {
			fd, err := unix.Open(s.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return &os.PathError{Op: "open", Path: s.path, Err: err}
			}
			unix.Close(s.fd)
			s.fd = fd
			return nil
		}
	}
}

func (s *mountinfoSource) Close() error {
	unix.Write(s.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	return nil
}

// release frees the source's descriptors once Wait has returned for good.
func (s *mountinfoSource) release() {
	unix.Close(s.fd)
	unix.Close(s.wake)
}

// follow waits for mount changes and asks the reader loop to rescan, by
// making its pending read return (a read deadline in the past): the rescan
// then runs in the reader's goroutine, between two batches of events, so
// the registry never changes under enrichment, and no event is lost.
func (w *Watcher) follow(ctx context.Context, src mountSource) {
	known := map[uint64]string{} // unique mount id → file system type
	for ctx.Err() == nil {
		if err := src.Wait(); err != nil {
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				w.log.Error("following mounts failed; the mount table will no longer be re-read", "err", err)
			}
			return
		}
		if fm, ok := src.(*fanotifyMounts); ok && w.onlyPseudo(fm.events, known) {
			continue
		}
		w.requestRescan()
	}
}

// onlyPseudo reports whether mount events are all about mounts of pseudo
// file systems (proc, tmpfs, overlay, ...: the many a container runtime
// makes), which a rescan would only skip. It looks each attached mount up
// with statmount(2) by the unique id the event carries, and remembers its
// type in known for its detach: a detached mount cannot be looked up any
// more. A mount it does not know about (attached before start, or gone
// before it could be looked up) is not taken for a pseudo one.
func (w *Watcher) onlyPseudo(evs []fanotify.Event, known map[uint64]string) bool {
	pseudo := len(evs) > 0
	for i := range evs {
		e := &evs[i]
		if e.IsOverflow() || e.MountID == 0 {
			pseudo = false
			continue
		}
		fstype, ok := known[e.MountID]
		if e.Mask&fanotify.MountAttach != 0 {
			if m, err := sys.Statmount(e.MountID); err == nil {
				fstype, ok = m.FSType, true
				known[e.MountID] = fstype
				w.log.Debug("mount attached", "fstype", m.FSType, "mountpoint", m.Point, "device", fmt.Sprintf("%d:%d", m.Major, m.Minor))
			}
		}
		if e.Mask&fanotify.MountAttach == 0 {
			delete(known, e.MountID) // detached for good
		}
		if !ok || !mounts.IsPseudo(fstype, w.nodev) {
			pseudo = false
		}
	}
	return pseudo
}

// requestRescan makes the reader loop rescan the mount table.
func (w *Watcher) requestRescan() {
	w.rescanWanted.Store(true)
	w.group.SetReadDeadline(pastDeadline)
}
