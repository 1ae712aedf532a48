// Package watch is the heart of `fshealth watch`: it marks file systems for
// FAN_FS_ERROR, reads events from the kernel, enriches them and hands them,
// in order and in batches, to a sink. One goroutine does it all, so an event
// goes from read(2) to the sink without crossing a channel.
package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/pathfind"
)

// Config says what to watch and where events go.
type Config struct {
	// Paths are the file systems to watch, by any path on them. Empty means
	// every mounted file system that can be marked, pseudo ones excepted.
	Paths []string
	// ProcRoot and SysRoot are where procfs and sysfs are mounted; "/proc"
	// and "/sys" if empty.
	ProcRoot, SysRoot string
	// HostView, if set, gives watched file systems (and so events, alerts
	// and the history) the host's mount points instead of this mount
	// namespace's (a systemd sandbox's bind mounts); see hostview.go.
	HostView *mounts.HostView
	// Logger receives progress and problems; slog.Default() if nil.
	Logger *slog.Logger
	// Sink receives each batch of events, in the order the kernel queued
	// them. The slice is reused after Sink returns. An error from Sink ends
	// Run with that error.
	Sink func([]event.Event) error
	// FollowMounts says how to follow mounts made and removed after start:
	// FollowAuto (default), FollowFanotify, FollowMountinfo or FollowOff.
	FollowMounts string
	// OnChange, if set, is called (from Run's goroutine) when file systems
	// start or stop being watched or their mount points change.
	OnChange func(Change)

	// KernelLog makes the watcher read the kernel log as a second source
	// of errors (see kernelLog): messages are attached to fanotify events
	// as their kernel_message, errors only the kernel log reports become
	// events with source "kmsg", and btrfs device error counters are
	// read when btrfs logs an error. If the log cannot be opened, the
	// watcher logs why and goes on without it.
	KernelLog bool
	// KernelLogPath is the kernel log device; kmsg.DefaultPath if empty.
	KernelLogPath string
	// KernelLogHold is how long a kernel log message waits for a
	// FAN_FS_ERROR event of its file system before it is reported on its
	// own; DefaultKernelLogHold if zero.
	KernelLogHold time.Duration
	// BtrfsRestore, if set, returns the btrfs error counters saved for a
	// file system (by its UUID) before this run, or nil: increases since
	// are reported when the file system is first seen. BtrfsSave is
	// called with the counters whenever they are read anew.
	BtrfsRestore func(fsUUID string) []btrfs.DeviceStats
	BtrfsSave    func(fsUUID string, devs []btrfs.DeviceStats)
	// OnPath, if set, makes the watcher look up the paths of the inodes
	// errors are about, read-only from the device (package pathfind),
	// without delaying their events, which say "path_pending". Each
	// result is passed to OnPath as an event of kind "path", from Run's
	// goroutine, after the sink has received the event that asked for it.
	OnPath func(*event.Event)
	// XFSDB is the xfs_db command (program and leading arguments) the
	// XFS path lookups run; empty means xfs_db found in $PATH, /usr/sbin
	// or /sbin (pathfind.Finder.XFSDB).
	XFSDB []string
	// OnExt4, if set, receives ext4's record of the errors of the events
	// just sent (which say "ext4_pending"), as an event of kind "ext4",
	// from Run's goroutine, once ext4 published it (ext4detail.go). Without
	// it, events carry no ext4 record.
	OnExt4 func(*event.Event)
	// Redundancy makes the watcher follow the md arrays under the watched
	// file systems and report changes of their redundancy as
	// KindRedundancy events (redundancy.go), read at start, after each md
	// event, at each kernel log wake-up and every RedundancyInterval
	// (DefaultRedundancyInterval if zero).
	Redundancy         bool
	RedundancyInterval time.Duration
	// RedundancyLost, if set, says whether a loss of redundancy under the
	// file system (by its key, event.FilesystemKey) is still open from
	// before this run: an array found whole at its first reading then
	// gets a restored event.
	RedundancyLost func(fsKey string) bool
}

// Change says how the set of watched file systems changed.
type Change struct {
	// Added are file systems mounted (and now watched) since start.
	Added []*enrich.Filesystem
	// Removed are file systems no longer mounted anywhere.
	Removed []*enrich.Filesystem
	// Updated are watched file systems whose mount points changed.
	Updated []*enrich.Filesystem
}

func (c *Change) empty() bool { return len(c.Added)+len(c.Removed)+len(c.Updated) == 0 }

// Watcher watches file systems for errors.
type Watcher struct {
	cfg      Config
	log      *slog.Logger
	group    *fanotify.Group
	registry *enrich.Registry
	enricher *enrich.Enricher
	watched  []*enrich.Filesystem
	// nodev are the pseudo file system types.
	nodev map[string]bool
	// unmarkable remembers file systems that could not be marked (by device
	// number, with the reason), so a rescan does not retry and re-log them.
	unmarkable map[string]string
	// mt is the mount table (follow.go); mountSrc tells when it changed,
	// nil when not following.
	mt        *mountTable
	mountSrc  mountSource
	following string
	// rescanWanted is set by the follower; the reader loop rescans.
	rescanWanted atomic.Bool
	// stopping is set when Run's context is done: the reader loop then
	// delivers what is still queued and held, and returns.
	stopping atomic.Bool
	// rescans counts the rescans of the mount table (tests).
	rescans atomic.Int64
	// calls are functions Do queued for the reader loop.
	callsMu sync.Mutex
	calls   []func()
	// detached are unmounted file systems kept in the registry, oldest
	// first, so that late events of a lazily unmounted one still enrich.
	detached []*enrich.Filesystem
	// pathMount is, for each configured path, the mount point of the mount
	// it was under when its file system was last marked.
	pathMount map[string]string
	// klog is the kernel log source; nil when not reading it.
	klog *kernelLog
	// wait is how Run's goroutine waits for events and interrupts.
	wait *waiter
	// btrfsPending are btrfs counter events found outside a read of the
	// kernel log, delivered with the next batch.
	btrfsPending []event.Event
	// paths looks inode paths up; nil without Config.OnPath.
	paths *pathfind.Finder
	// btrfsIncreased is when each btrfs file system's error counters last
	// went up, to corroborate its kernel log messages.
	btrfsIncreased map[*enrich.Filesystem]time.Time
	// restacked is when each file system's storage stack was last read
	// again because a device below it erred (kernellog.go).
	restacked map[*enrich.Filesystem]time.Time
	// ext4Due are the file systems whose ext4 record is to be read for
	// events sent (ext4detail.go), next at ext4At (zero: not before the
	// next event); ext4Wait is how long the last look waited.
	ext4Due  []*enrich.Filesystem
	ext4At   time.Time
	ext4Wait time.Duration
	// sinkClock says since when the reader is in the sink (probe.go).
	sinkClock
	// redund follows md arrays; nil without Config.Redundancy.
	redund       *redundancy
	redundWanted atomic.Bool

	mu      sync.Mutex
	running bool
	closed  bool
}

// New creates the fanotify group and marks the file systems cfg names. With
// explicit Paths, any path that cannot be watched is an error naming it;
// without, file systems that cannot be marked are logged with the reason and
// skipped. A kernel without FAN_FS_ERROR support is always an error.
func New(cfg Config) (*Watcher, error) {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Sink == nil {
		return nil, errors.New("watch: no sink")
	}
	// The reader waits in its own ppoll (reader.go), not in the runtime's
	// poller.
	g, err := fanotify.New(fanotify.Config{Class: fanotify.ClassNotif, Report: fanotify.ReportFID, OwnPoll: true})
	if err != nil {
		return nil, err
	}
	wait, err := newWaiter()
	if err != nil {
		g.Close()
		return nil, err
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger, group: g, wait: wait, registry: enrich.NewRegistry(cfg.SysRoot)}
	w.cfg.Sink = w.timedSink(cfg.Sink)
	w.enricher = &enrich.Enricher{Registry: w.registry, Ext4Later: cfg.OnExt4 != nil}
	w.startPaths()
	w.unmarkable = map[string]string{}
	if err := w.markAll(); err != nil {
		w.Close()
		return nil, err
	}
	if cfg.KernelLog {
		path := cfg.KernelLogPath
		if path == "" {
			path = kmsg.DefaultPath
		}
		klog, err := openKernelLog(path, cfg.SysRoot, cfg.KernelLogHold)
		if err != nil {
			w.log.Warn("not reading the kernel log: errors that only it reports (XFS before Linux 7.0, btrfs, the block layer) will be missed", "err", err)
		} else {
			w.klog = klog
			w.btrfsIncreased = map[*enrich.Filesystem]time.Time{}
			w.restacked = map[*enrich.Filesystem]time.Time{}
			klog.corr.corroborate = w.corroborate
			klog.corr.complete = w.findKernelLogPath
			w.indexKernelNames()
			w.log.Info("reading the kernel log", "path", path)
		}
	}
	if err := w.startFollowing(); err != nil {
		w.Close()
		return nil, fmt.Errorf("following mounts: %w", err)
	}
	return w, nil
}

// Do runs f in Run's goroutine, between two batches of events, where it may
// use the watched file systems (their ext4 state) as enrichment does.
func (w *Watcher) Do(f func()) {
	w.callsMu.Lock()
	w.calls = append(w.calls, f)
	w.callsMu.Unlock()
	w.wait.interrupt()
}

// kmsgFD is the kernel log's descriptor for the reader's wait, -1 when it
// is not read.
func (w *Watcher) kmsgFD() int {
	if w.klog == nil || w.klog.dead {
		return -1
	}
	return w.klog.r.Fd()
}

// Queued returns how many bytes of fanotify events wait in the kernel's
// queue, not yet read: zero means every event raised so far has been read
// (or is being handled).
func (w *Watcher) Queued() (int, error) { return w.group.Queued() }

// Following returns how mounts are followed: FollowFanotify,
// FollowMountinfo, or "" when they are not.
func (w *Watcher) Following() string { return w.following }

// Watched returns the file systems being watched.
func (w *Watcher) Watched() []*enrich.Filesystem { return w.watched }

func (w *Watcher) markAll() error {
	fss, err := w.loadMounts()
	if err != nil {
		return err
	}
	w.refreshHostView()
	nodev, err := mounts.PseudoTypes(filepath.Join(w.cfg.ProcRoot, "filesystems"))
	if err != nil {
		return err
	}
	w.nodev = nodev
	if len(w.cfg.Paths) > 0 {
		return w.markPaths(fss)
	}
	var pseudo []*mounts.Filesystem
	for _, fs := range fss {
		if mounts.IsPseudo(fs.FSType, nodev) {
			pseudo = append(pseudo, fs)
			continue
		}
		if err := w.mark(fs, fs.MarkPath()); err != nil {
			var unsup *fanotify.UnsupportedError
			if errors.As(err, &unsup) {
				return err
			}
			w.log.Warn("cannot watch file system", "fstype", fs.FSType, "source", fs.Source,
				"mountpoint", fs.MarkPath(), "reason", reason(err))
			w.unmarkable[fs.Dev()] = reason(err)
		}
	}
	if len(pseudo) > 0 {
		w.log.Info("not watching pseudo file systems (no block device, no error reports)",
			"count", len(pseudo), "types", mounts.Summarize(pseudo))
	}
	if len(w.watched) == 0 {
		w.log.Warn("no file system could be watched")
	}
	return nil
}

// markPaths marks the file system of each configured path.
func (w *Watcher) markPaths(fss []*mounts.Filesystem) error {
	w.pathMount = map[string]string{}
	for _, p := range w.cfg.Paths {
		fs, point, err := mountOf(fss, p)
		if err != nil {
			return fmt.Errorf("cannot watch %s: %w", p, err)
		}
		if err := w.mark(fs, p); err != nil {
			return &pathError{path: p, err: err}
		}
		w.pathMount[p] = point
	}
	return nil
}

// mountOf returns the file system that path is on and the mount point of
// the mount it is under, found by the mount's id (statx STATX_MNT_ID),
// else by device number. (A btrfs subvolume, the top level included, has
// a device number of its own, not the superblock's that mountinfo shows.)
func mountOf(fss []*mounts.Filesystem, path string) (*mounts.Filesystem, string, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID, &stx); err != nil {
		return nil, "", &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if stx.Mask&unix.STATX_MNT_ID != 0 {
		for _, f := range fss {
			for _, m := range f.Mounts {
				if uint64(m.ID) == stx.Mnt_id {
					return f, m.Point, nil
				}
			}
		}
	}
	for _, f := range fss {
		if f.Major == stx.Dev_major && f.Minor == stx.Dev_minor {
			return f, f.MarkPath(), nil
		}
	}
	return nil, "", fmt.Errorf("its file system (device %d:%d) is not in the mount table", stx.Dev_major, stx.Dev_minor)
}

// mark marks one file system by path and registers it.
func (w *Watcher) mark(fs *mounts.Filesystem, path string) error {
	for _, have := range w.watched {
		if have.Major == fs.Major && have.Minor == fs.Minor {
			return nil
		}
	}
	fs = w.hostView(fs)
	info, err := mounts.Probe(fs, w.cfg.SysRoot)
	if err != nil {
		return err
	}
	// The kernel names a file system in its events by fsid alone. Two
	// mounted at once with one fsid (a cloned image or a snapshot: ext4
	// and XFS derive it from the UUID) cannot be told apart.
	if other := w.registry.Lookup(info.FSID); other != nil && other.Dev() != fs.Dev() && slices.Contains(w.watched, other) {
		return &SharedFSIDError{FSID: info.FSID.String(), Other: other.Device, OtherMountpoints: other.Mountpoints}
	}
	fsid, via, err := w.markSuperblock(fs, path, info.UUID)
	// A btrfs file system that cannot be marked at all is still watched
	// through the kernel log, if it is read.
	var noMark *noMarkError
	if err != nil && (!errors.As(err, &noMark) || !w.cfg.KernelLog) {
		return err
	}
	if fsid != nil && *fsid != info.FSID {
		// Marked through another path (the btrfs top level): its
		// events carry that path's fsid.
		top := *info
		top.FSID = *fsid
		info = &top
	}
	entry, err := w.registry.Add(info)
	if err != nil {
		w.log.Warn("watching, without ext4 error details", "device", info.Device, "err", err)
	}
	w.readStorage(entry)
	w.watched = append(w.watched, entry)
	attrs := []any{"fstype", info.FSType, "device", info.Device, "uuid", info.UUID, "mountpoints", info.Mountpoints}
	switch {
	case noMark != nil:
		w.log.Warn("watching file system without a fanotify mark: its errors come from the kernel log and its device error counters",
			append(attrs, "reason", noMark.Error())...)
	case via != "":
		w.log.Info("watching file system", append(attrs, "marked_through", via)...)
	default:
		w.log.Info("watching file system", attrs...)
	}
	return nil
}

// SharedFSIDError says that a file system was not watched because another,
// already watched, has the same fsid: the kernel's error events, which
// name a file system by its fsid, could not say which of the two erred.
type SharedFSIDError struct {
	FSID             string
	Other            string
	OtherMountpoints []string
}

func (e *SharedFSIDError) Error() string {
	return fmt.Sprintf("it has the fsid %s of %s (at %s), which is watched: the kernel's error reports could not tell the two apart "+
		"(a cloned image or snapshot with the same UUID?); give one a new UUID (ext4: tune2fs -U random; XFS: xfs_admin -U generate) to watch both",
		e.FSID, event.Safe(e.Other), strings.Join(safeAll(e.OtherMountpoints), ", "))
}

func safeAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = event.Safe(s)
	}
	return out
}

// pathError is a configured path that cannot be watched; it reads as the
// reason and wraps the error.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return "cannot watch " + e.path + ": " + reason(e.err) }
func (e *pathError) Unwrap() error { return e.err }

// reason renders a mark error for humans: the classified reason if there is
// one, else the error.
func reason(err error) string {
	var nm *noMarkError
	if errors.As(err, &nm) {
		return nm.Error()
	}
	var me *fanotify.MarkError
	if errors.As(err, &me) && me.Reason != nil {
		return fmt.Sprintf("%v (%v)", me.Reason, me.Err)
	}
	return err.Error()
}

// Run reads, enriches and delivers events until ctx is done (then it returns
// nil) or reading or the sink fails.
func (w *Watcher) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running || w.closed {
		w.mu.Unlock()
		return errors.New("watch: Run called twice or after Close")
	}
	w.running = true
	w.mu.Unlock()
	defer w.wait.close()
	defer w.registry.Close()
	defer w.stopPaths()
	stop := context.AfterFunc(ctx, func() {
		w.stopping.Store(true)
		w.wait.interrupt()
	})
	defer stop()
	defer w.Close()
	if w.mountSrc != nil {
		followCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.follow(followCtx, w.mountSrc) }()
		defer func() {
			cancel()
			w.mountSrc.Close()
			<-done
			if m, ok := w.mountSrc.(*mountinfoSource); ok {
				m.release()
			}
		}()
	}
	if k := w.klog; k != nil {
		// The reader's own ppoll wakes it for new records (reader.go).
		defer k.close()
		if len(w.btrfsPending) > 0 {
			w.wakeForKernelLog()
		}
	}

	if w.cfg.Redundancy {
		defer w.stopRedundancy()
		if evs := w.startRedundancy(); len(evs) > 0 {
			if err := w.cfg.Sink(evs); err != nil {
				return err
			}
		}
	}

	buf := make([]byte, fanotify.ReadBufferSize)
	raws := make([]fanotify.Event, 0, 64)
	out := make([]event.Event, 0, 64)
	for {
		var err error
		raws, err = w.wait.readEvents(w.group, w.kmsgFD(), w.nextDue(), buf, raws[:0])
		if errors.Is(err, errInterrupted) {
			if w.stopping.Load() {
				return w.drain(buf, raws, out)
			}
			// The follower interrupted the read: the mount table changed.
			if w.rescanWanted.Swap(false) {
				w.rescan()
			}
			w.callsMu.Lock()
			calls := w.calls
			w.calls = nil
			w.callsMu.Unlock()
			for _, f := range calls {
				f()
			}
			redund := w.redundWanted.Swap(false)
			// A wait that ended at its deadline found the kernel log
			// without records (or, in the Go poller, did not look; the
			// next wait does): only what the correlator holds is due.
			read := w.klog != nil && (w.klog.wanted.Swap(false) || w.wait.kmsgReady || len(w.btrfsPending) > 0)
			if read || w.klog != nil && w.wait.timedOut {
				out = out[:0]
				if read {
					out = w.readKernelLog(out)
				}
				out = w.kernelLogDue(out)
				out = w.checkRedundancy(out)
				redund = false
				if len(out) > 0 {
					if err := w.cfg.Sink(out); err != nil {
						return err
					}
				}
			}
			if redund {
				if out = w.checkRedundancy(out[:0]); len(out) > 0 {
					if err := w.cfg.Sink(out); err != nil {
						return err
					}
				}
			}
			if len(w.ext4Due) > 0 && !w.ext4At.After(time.Now()) {
				w.readExt4Due(false)
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, os.ErrClosed) {
				return nil
			}
			var pe *fanotify.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("reading fanotify events: %w", err)
			}
			// Keep what was decoded; the rest of this read is lost, and
			// that must be said as loudly as an overflow.
			w.log.Error("undecodable fanotify data: events may have been lost", "err", err)
		}
		out = w.batch(raws, err, w.wait.kmsgReady, out[:0])
		if w.klog != nil {
			out = w.kernelLogDue(out)
		}
		if len(out) > 0 {
			if err := w.cfg.Sink(out); err != nil {
				return err
			}
		}
		if len(w.ext4Due) > 0 {
			w.readExt4Due(false)
		}
	}
}

// nextDue is when Run's goroutine has work without a new event: the first
// held kernel log message falls due, or ext4's record is to be looked at
// again. The zero time means never.
func (w *Watcher) nextDue() time.Time {
	var t time.Time
	if k := w.klog; k != nil {
		t = k.dueAt
	}
	if len(w.ext4Due) > 0 && !w.ext4At.IsZero() && (t.IsZero() || w.ext4At.Before(t)) {
		t = w.ext4At
	}
	return t
}

// batch appends to out the events of one read: an overflow event if the
// read's data could not all be decoded (readErr is a *fanotify.ParseError),
// the kernel log's new events (when readLog: it has records), then the
// enriched events of raws, each claiming the kernel message that belongs
// to it.
func (w *Watcher) batch(raws []fanotify.Event, readErr error, readLog bool, out []event.Event) []event.Event {
	if pe := (*fanotify.ParseError)(nil); errors.As(readErr, &pe) {
		out = append(out, event.Event{Kind: event.KindOverflow, Time: event.Time{Time: time.Now()}, Source: event.SourceFanotify,
			Message: "undecodable fanotify data (" + pe.Error() + "): the events after it in that read were lost"})
	}
	if w.klog != nil && readLog {
		// What the kernel logged before it reported the errors is read
		// first, to be attached to their events.
		out = w.readKernelLog(out)
	}
	now := time.Now()
	for i := range raws {
		out = append(out, event.Event{})
		ev := &out[len(out)-1]
		fs := w.enricher.Enrich(&raws[i], ev)
		if ev.Ext4Pending {
			w.noteExt4Due(fs)
		}
		if raws[i].IsOverflow() {
			w.log.Error("fanotify queue overflow: file system errors were lost")
		} else if w.klog != nil && fs != nil {
			w.klog.corr.claim(ev, fs, now)
		}
	}
	return out
}

// drain delivers, when Run stops, what the sources still hold: the events
// queued in the fanotify group, the kernel log's records and the messages
// the correlator holds (as events at once, not after their hold). Nothing
// read is dropped on the way out.
func (w *Watcher) drain(buf []byte, raws []fanotify.Event, out []event.Event) error {
	out = out[:0]
	for {
		n, err := w.group.Queued()
		if err != nil || n == 0 {
			break
		}
		raws, err = w.group.ReadEvents(buf, raws[:0])
		if pe := (*fanotify.ParseError)(nil); err != nil && !errors.As(err, &pe) {
			break
		}
		out = w.batch(raws, err, true, out)
	}
	if k := w.klog; k != nil {
		out = w.readKernelLog(out)
		// Everything held is due now.
		out, _ = k.corr.due(time.Now().Add(k.corr.hold), out)
	}
	if len(out) > 0 {
		if err := w.cfg.Sink(out); err != nil {
			return err
		}
	}
	if len(w.ext4Due) > 0 {
		w.readExt4Due(true)
	}
	return nil
}

// Close stops watching: it closes the group, which removes its marks and
// makes a pending Run return. Resources Run uses are released when Run
// returns, or here when Run was never called.
func (w *Watcher) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.wait.shutdown()
	w.group.Close()
	if !w.running {
		w.wait.close()
		w.stopPaths()
		w.registry.Close()
		if w.klog != nil {
			w.klog.close()
		}
	}
}
