package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

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
	// FollowFanotify uses fanotify mount events (FAN_MNT_ATTACH/DETACH),
	// each mount looked up with statmount(2) by the id the event carries.
	FollowFanotify = "fanotify"
	// FollowMountinfo waits for POLLPRI on /proc/self/mountinfo, which the
	// kernel raises on every change of the mount namespace, and re-reads
	// the table, parsing only the lines that changed.
	FollowMountinfo = "mountinfo"
	// FollowOff does not follow mounts: the mount table is read once.
	FollowOff = "off"
)

// maxCoalesce bounds how long a change of the mount table waits for more
// before the watcher applies them (see coalesceDelay).
const maxCoalesce = 100 * time.Millisecond

// maxPendingOps is how many mount events about pseudo file systems may
// wait for the next rescan before one is asked for anyway.
const maxPendingOps = 4096

// mountTable is the watcher's view of the mount table: the table itself,
// kept up to date by mount events or mountinfo readings, and what the
// follower goroutine hands to the reader loop. The table is only touched
// in the reader loop's goroutine (and in New).
type mountTable struct {
	// dir is the /proc/<pid> directory whose mount namespace is followed:
	// its mountinfo is read, its ns/mnt watched.
	dir    string
	table  *mounts.Table
	reader *mounts.MountinfoReader
	stat   sys.Statmounter
	ids    []uint64
	// mu guards ops, what the follower found for the reader loop.
	mu  sync.Mutex
	ops []mountOp
	// cost is how long the last rescan took, in nanoseconds: the follower
	// waits a multiple of it for more changes before asking for the next.
	cost atomic.Int64
}

// mountOp is a change of the mount table found by the fanotify follower.
type mountOp struct {
	kind   opKind
	unique uint64
	m      mounts.Mount
}

type opKind uint8

const (
	opAttach opKind = iota // m was attached (or moved)
	opDetach               // the mount with unique id is gone
	opResync               // events were lost: list the mounts again
)

// mountTableDir returns the /proc/<pid> directory whose mount table the
// watcher follows: the watcher's own. (Another process's, e.g. the host's
// from inside a service's mount namespace, is followed with mountinfo
// notifications: see openMountSource.)
func mountTableDir(cfg *Config) string { return filepath.Join(cfg.ProcRoot, "self") }

// loadMounts reads the mount table for the first time and returns its file
// systems.
func (w *Watcher) loadMounts() ([]*mounts.Filesystem, error) {
	dir := mountTableDir(&w.cfg)
	mt := &mountTable{dir: dir, table: mounts.NewTable(), reader: mounts.NewMountinfoReader(filepath.Join(dir, "mountinfo"))}
	if err := mt.reader.Update(mt.table); err != nil {
		return nil, err
	}
	mt.table.Publish()
	w.mt = mt
	return mt.table.Filesystems(), nil
}

// startFollowing opens the source of mount changes Config.FollowMounts asks
// for and brings the table up to date with what changed since loadMounts.
func (w *Watcher) startFollowing() error {
	if w.cfg.FollowMounts == FollowOff {
		return nil
	}
	src, mode, why, err := openMountSource(w.cfg.FollowMounts, w.mt.dir)
	if err != nil {
		return err
	}
	w.mountSrc, w.following = src, mode
	if mode == FollowFanotify {
		w.log.Info("following mounts", "with", "fanotify mount events (FAN_MNT_ATTACH/FAN_MNT_DETACH) and statmount(2)")
	} else {
		attrs := []any{"with", "mountinfo change notifications (POLLPRI on " + w.mt.reader.Path() + ")"}
		if why != nil {
			attrs = append(attrs, "because", why.Error())
		}
		w.log.Info("following mounts", attrs...)
	}
	// What changed between the first reading and the source's start; with
	// mount events, this also learns every mount's unique id.
	if mode == FollowFanotify {
		w.mt.ops = append(w.mt.ops, mountOp{kind: opResync})
	}
	w.rescan()
	// That first catching up (a listing of every mount) says nothing
	// about what the next change will cost.
	w.rescans.Store(0)
	w.mt.cost.Store(0)
	return nil
}

// mountSource tells when the mount table may have changed. Wait returns
// after a change; it never polls on a timer.
type mountSource interface {
	Wait() error
	Close() error
}

// openMountSource opens the source mode asks for; FollowAuto prefers
// fanotify mount events and falls back to mountinfo when the kernel lacks
// them or listmount(2)/statmount(2) (a typed error naming the version), or
// when those calls are refused (a seccomp filter: EPERM); why is then the
// reason.
func openMountSource(mode, dir string) (src mountSource, got string, why, err error) {
	if mode == FollowAuto && filepath.Base(dir) != "self" {
		// listmount(2) and statmount(2) look at the caller's mount
		// namespace: another process's is followed through its mountinfo.
		mode, why = FollowMountinfo, fmt.Errorf("the mount table of %s is not the watcher's own", dir)
	}
	if mode == FollowAuto || mode == FollowFanotify {
		src, err := newFanotifyMounts(filepath.Join(dir, "ns/mnt"))
		var unsup *fanotify.UnsupportedError
		var unsupSys *sys.UnsupportedError
		switch {
		case err == nil:
			return src, FollowFanotify, nil, nil
		case mode == FollowFanotify || !errors.As(err, &unsup) && !errors.As(err, &unsupSys) && !errors.Is(err, unix.EPERM):
			return nil, "", nil, err
		}
		why = err
	}
	mi, err := newMountinfoSource(filepath.Join(dir, "mountinfo"))
	if err != nil {
		return nil, "", nil, err
	}
	return mi, FollowMountinfo, why, nil
}

// fanotifyMounts follows the mount namespace with a FAN_REPORT_MNT group.
type fanotifyMounts struct {
	g   *fanotify.Group
	buf []byte
	// events are the mount events the last Wait read; nil if they could
	// not be decoded.
	events []fanotify.Event
}

func newFanotifyMounts(nsPath string) (*fanotifyMounts, error) {
	// Mount events are no use without looking the mounts up.
	ids, err := sys.Listmount(nil)
	if err == nil && len(ids) > 0 {
		_, err = sys.Statmount(ids[0])
		if errors.Is(err, unix.ENOENT) {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	g, err := fanotify.NewMountGroup()
	if err != nil {
		return nil, err
	}
	if err := g.MarkMountNamespace(nsPath); err != nil {
		g.Close()
		return nil, err
	}
	return &fanotifyMounts{g: g, buf: make([]byte, fanotify.ReadBufferSize)}, nil
}

// Wait returns once mount events (or an overflow) were read.
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
// notifications go missing — but replaced by a fresh one (rearm) before the
// caller re-reads the table; so a change is either in that reading or
// reported on the new descriptor. An eventfd lets Close wake a pending poll.
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

// Wait returns once the mount table changed; the caller rearms the source
// before it reads the table.
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
			return nil
		}
	}
}

// rearm replaces the polled descriptor by a fresh one, which reports only
// changes made from now on.
func (s *mountinfoSource) rearm() error {
	fd, err := unix.Open(s.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: s.path, Err: err}
	}
	unix.Close(s.fd)
	s.fd = fd
	return nil
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

// follow waits for mount changes and asks the reader loop to apply them, by
// making its pending read return (a read deadline in the past): the table
// then changes in the reader's goroutine, between two batches of events,
// so the registry never changes under enrichment, and no event is lost.
// Changes are coalesced: after one, the follower waits for more for a few
// times as long as the last rescan took (at most maxCoalesce), so a storm
// of mount changes costs the reader a bounded share of the CPU.
func (w *Watcher) follow(ctx context.Context, src mountSource) {
	var stat sys.Statmounter
	pseudo := map[uint64]bool{} // unique id → pseudo, for mounts attached since start
	for ctx.Err() == nil {
		if err := src.Wait(); err != nil {
			if ctx.Err() == nil && !errors.Is(err, os.ErrClosed) {
				w.log.Error("following mounts failed; the mount table will no longer be re-read", "err", err)
			}
			return
		}
		switch s := src.(type) {
		case *fanotifyMounts:
			if !w.queueMountEvents(s.events, &stat, pseudo) {
				continue
			}
			if !w.coalesce(ctx) {
				return
			}
			// What came meanwhile goes in the same rescan.
			for {
				if n, err := s.g.Queued(); err != nil || n == 0 {
					break
				}
				if err := s.Wait(); err != nil {
					break
				}
				w.queueMountEvents(s.events, &stat, pseudo)
			}
		case *mountinfoSource:
			if !w.coalesce(ctx) {
				return
			}
			if err := s.rearm(); err != nil {
				w.log.Error("following mounts failed; the mount table will no longer be re-read", "err", err)
				return
			}
		}
		w.requestRescan()
	}
}

// coalesce waits for more mount changes to gather (see follow); it returns
// false if ctx is done.
func (w *Watcher) coalesce(ctx context.Context) bool {
	d := coalesceDelay(time.Duration(w.mt.cost.Load()))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// coalesceDelay is how long to gather mount changes after one, given how
// long the last rescan took: four times as long, so that rescans take at
// most a fifth of a CPU however fast the table changes.
func coalesceDelay(cost time.Duration) time.Duration {
	return min(4*cost, maxCoalesce)
}

// queueMountEvents looks each attached mount up with statmount(2) by the
// unique id its event carries (right away: a mount can be gone soon after)
// and queues the changes for the reader loop. It reports whether the reader
// must look now: not when every event is about mounts of pseudo file
// systems (proc, tmpfs, overlay, ...: the many a container runtime makes),
// which the watcher does not watch; those wait for the next rescan.
func (w *Watcher) queueMountEvents(evs []fanotify.Event, stat *sys.Statmounter, pseudo map[uint64]bool) bool {
	var ops []mountOp
	need := evs == nil // undecodable: resync
	if evs == nil {
		ops = append(ops, mountOp{kind: opResync})
	}
	for i := range evs {
		e := &evs[i]
		switch {
		case e.IsOverflow():
			ops = append(ops, mountOp{kind: opResync})
			need = true
			continue
		case e.MountID == 0:
			continue
		}
		if e.Mask&fanotify.MountAttach != 0 {
			sm, err := stat.Statmount(e.MountID)
			if err == nil {
				m := mounts.FromStatmount(sm)
				p := mounts.IsPseudo(m.FSType, w.nodev)
				pseudo[e.MountID] = p
				need = need || !p
				ops = append(ops, mountOp{kind: opAttach, unique: e.MountID, m: m})
				continue
			}
			if !errors.Is(err, unix.ENOENT) {
				w.log.Debug("cannot look up an attached mount", "mount_id", e.MountID, "err", err)
			}
			// Gone already (or invisible): as detached.
		}
		p, ok := pseudo[e.MountID]
		delete(pseudo, e.MountID)
		need = need || !ok || !p
		ops = append(ops, mountOp{kind: opDetach, unique: e.MountID})
	}
	w.mt.mu.Lock()
	w.mt.ops = append(w.mt.ops, ops...)
	need = need || len(w.mt.ops) > maxPendingOps
	w.mt.mu.Unlock()
	return need
}

// requestRescan makes the reader loop rescan the mount table.
func (w *Watcher) requestRescan() {
	w.rescanWanted.Store(true)
	w.wait.interrupt()
}

// update brings the table up to date: with mount events, by applying what
// the follower queued; else by reading mountinfo again.
func (mt *mountTable) update(mode string) error {
	if mode != FollowFanotify {
		return mt.reader.Update(mt.table)
	}
	mt.mu.Lock()
	ops := mt.ops
	mt.ops = nil
	mt.mu.Unlock()
	var err error
	for i := range ops {
		op := &ops[i]
		switch op.kind {
		case opAttach:
			mt.table.Add(op.m, op.unique)
		case opDetach:
			mt.table.RemoveUnique(op.unique)
		case opResync:
			if e := mt.resync(); e != nil && err == nil {
				err = e
			}
		}
	}
	return err
}

// resync lists every mount (listmount(2)) and looks up those the table does
// not know by unique id (statmount(2)).
func (mt *mountTable) resync() error {
	ids, err := sys.Listmount(mt.ids[:0])
	mt.ids = ids
	if err != nil {
		return err
	}
	return mt.table.Sync(ids, func(u uint64) (mounts.Mount, bool, error) {
		sm, err := mt.stat.Statmount(u)
		if errors.Is(err, unix.ENOENT) {
			return mounts.Mount{}, false, nil
		}
		if err != nil {
			return mounts.Mount{}, false, err
		}
		return mounts.FromStatmount(sm), true, nil
	})
}
