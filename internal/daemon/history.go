package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/store"
)

// maxMemoryEvents bounds the events the in-memory history keeps while the
// database cannot be used; older ones are dropped (they stay in the
// journal), and the drop is logged and counted.
const maxMemoryEvents = 10000

// Retry intervals of the database while degraded: from probeFirst, doubling
// up to probeMax.
var (
	probeFirst = time.Second
	probeMax   = 10 * time.Second
)

// Degraded describes why the history is kept in memory.
type Degraded struct {
	// Since is when the history stopped being recorded on disk.
	Since time.Time `json:"since"`
	// Path is the state directory or database file at fault.
	Path string `json:"path"`
	// Cause says in a few words what is wrong ("read-only file system").
	Cause string `json:"cause"`
	// Err is the full error.
	Err string `json:"error"`
	// StateFS says what is known of the file system the state directory is
	// on, if it is read-only or reported errors.
	StateFS string `json:"state_fs,omitempty"`
	// Released is set when fshealth let go of its database on purpose (to
	// remount its file system read-only).
	Released bool `json:"released,omitempty"`
}

// Summary is the one line `status`, the log and the alert use.
func (g *Degraded) Summary() string {
	s := fmt.Sprintf("degraded: history not recorded since %s: %s: %s", g.Since.Format(time.RFC3339), g.Path, g.Cause)
	if g.StateFS != "" {
		s += "; " + g.StateFS
	}
	return s
}

// history is the daemon's store: the database in the state directory when
// it can be used, else an in-memory store with the same schema (degraded
// mode), which the daemon uses the same way — events, incidents, actions
// and the outbox with its retries all carry on. It retries the database
// in the background while degraded and, once it works again, commits what
// was kept in memory to it in one transaction and switches back.
//
// Every operation runs with use held for reading; switching stores holds
// it for writing, so no operation ever runs on a store being switched away
// from. Outbox rows and actions keep their ids across switches
// (store.SeedMemory, MergeInto), so one in flight during a switch is
// recorded where it now lives.
type history struct {
	dir     string
	log     *slog.Logger
	metrics *metrics.Metrics

	use  sync.RWMutex
	cur  *store.Store
	lock *Lock // nil while degraded
	// degraded is non-nil while the history is in memory. Guarded by use.
	degraded *Degraded
	// movedAside is the path a corrupt database was moved to, if one was.
	movedAside string
	// holds counts releases in progress (remount-ro of the state
	// directory's file system): no retry meanwhile. Guarded by use.
	holds int

	// parentDev is the device of the state directory's parent when
	// the history was first opened (mayCreate).
	parentDev uint64

	wake chan struct{}
	// changed is called, without locks held, after each switch.
	changed func()

	// corrupt is the database file the integrity check found damaged
	// after it was opened (checkIntegrity): the next openDisk moves it
	// aside without opening it again.
	corrupt atomic.Pointer[corruptFile]
	// check is the integrity check in progress, if any. Guarded by use
	// (set under its read lock, ended under its write lock).
	check *integrityCheck
}

// integrityCheck is a running check of the database in use (h.cur: a
// switch away from it stops the check first): cancel stops it, done is
// closed once it no longer reads the database.
type integrityCheck struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stopCheck stops the integrity check, if one runs, and waits until it no
// longer reads the database in use: closing that does not end a query in
// progress, whose connection keeps the database files open (a remount-ro
// of their file system then fails with EBUSY). The caller holds h.use for
// writing.
func (h *history) stopCheck() {
	if c := h.check; c != nil {
		c.cancel()
		<-c.done
	}
}

// corruptFile is a database file found damaged, and why.
type corruptFile struct {
	dev, ino uint64
	err      error
}

// openHistory opens the state directory's database; if it cannot be used,
// the history starts degraded. Only another daemon holding the directory
// is an error.
func openHistory(dir string, log *slog.Logger, m *metrics.Metrics) (*history, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	h := &history{dir: abs, log: log, metrics: m, wake: make(chan struct{}, 1), changed: func() {}}
	// The whole file is checked after the daemon is ready (checkIntegrity),
	// so that a big history does not delay it.
	l, st, err := h.openDisk(true, false)
	h.parentDev = parentDev(abs)
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	if err == nil {
		h.cur, h.lock = st, l
		return h, nil
	}
	mem, merr := store.OpenMemory(time.Now().UnixMicro())
	if merr != nil {
		return nil, fmt.Errorf("%w; and the in-memory history failed too: %w", err, merr)
	}
	if readableAfter(err) {
		// On a read-only or full file system the database can still be
		// read: carry its pending alerts and what was reported on, so
		// nothing is reported twice.
		if serr := mem.SeedFrom(context.Background(), store.PathIn(abs)); serr != nil {
			log.Warn("could not read the pending alerts from the history database", "err", serr)
		}
	}
	h.cur, h.degraded = mem, h.describe(err, false)
	return h, nil
}

// readableAfter reports whether the database may still be read after err
// kept it from being opened for writing.
func readableAfter(err error) bool {
	if errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	c := store.Cause(err)
	return c == "read-only" || c == "file system full"
}

// openDisk verifies and locks the state directory, creating it if create
// is set, and opens its database; if check is set, it reads the whole file
// to check it (PRAGMA quick_check). A corrupt database (SQLite's checks
// when it opens the file find one cut short; check, or checkIntegrity
// before, one damaged inside) is moved aside and a new one started.
func (h *history) openDisk(create, check bool) (*Lock, *store.Store, error) {
	l, err := acquireLock(h.dir, create)
	if err != nil {
		return nil, nil, err
	}
	var st *store.Store
	if c := h.corrupt.Load(); c != nil {
		var fi unix.Stat_t
		if unix.Fstatat(l.DirFD, store.FileName, &fi, unix.AT_SYMLINK_NOFOLLOW) == nil && fi.Dev == c.dev && fi.Ino == c.ino {
			err = c.err
		}
		h.corrupt.Store(nil)
	}
	if err == nil {
		st, err = store.OpenIn(l.DirFD, l.Dir)
	}
	if err == nil && check {
		// A damaged file may open; reading it all shows.
		if err = st.QuickCheck(context.Background()); err != nil {
			st.Close()
		}
	}
	if err != nil && store.IsCorrupt(err) {
		aside, merr := store.MoveAside(l.DirFD, l.Dir, time.Now())
		if merr != nil {
			l.Release()
			return nil, nil, fmt.Errorf("%w; %w", err, merr)
		}
		h.log.Error("the history database was damaged: moved aside, kept for forensics; starting a new one",
			"database", filepath.Join(l.Dir, store.FileName), "moved_to", aside, "err", err)
		h.movedAside = aside
		st, err = store.OpenIn(l.DirFD, l.Dir)
	}
	if err == nil {
		if err = l.NoteDB(); err != nil {
			st.Close()
		}
	}
	if err != nil {
		l.Release()
		return nil, nil, err
	}
	return l, st, nil
}

// describe turns the error that made the history degrade into a Degraded.
func (h *history) describe(err error, released bool) *Degraded {
	g := &Degraded{Since: time.Now(), Path: h.dir, Cause: store.Cause(err), Err: err.Error(), Released: released,
		StateFS: stateFSProblem(h.dir)}
	if released {
		g.Cause = "released so that its file system can be remounted read-only"
	}
	if errors.Is(err, store.ErrNewerSchema) {
		g.Path = store.PathIn(h.dir)
		g.Cause = fmt.Sprintf("written by a newer fshealth: it needs one that supports its schema (this one supports version %d); left untouched", store.SchemaVersion)
	} else if g.Cause == "unusable" || strings.Contains(err.Error(), "refusing") {
		g.Cause = err.Error()
	}
	return g
}

// Degraded returns why the history is in memory, or nil.
func (h *history) Degraded() *Degraded {
	h.use.RLock()
	defer h.use.RUnlock()
	if h.degraded == nil {
		return nil
	}
	g := *h.degraded
	return &g
}

// MovedAside is where a corrupt database was moved, if one was.
func (h *history) MovedAside() string {
	h.use.RLock()
	defer h.use.RUnlock()
	return h.movedAside
}

// Store returns the store in use (tests).
func (h *history) Store() *store.Store {
	h.use.RLock()
	defer h.use.RUnlock()
	return h.cur
}

// do runs op on the store in use. If the database fails under it, the
// history degrades and op runs again, on the in-memory store.
func do[T any](h *history, op func(*store.Store) (T, error)) (T, error) {
	h.use.RLock()
	s := h.cur
	v, err := op(s)
	h.use.RUnlock()
	if err != nil && !errors.Is(err, context.Canceled) && h.metrics != nil {
		h.metrics.HistoryFailure()
	}
	if err == nil || s.InMemory() || !store.IsStorageFault(err) {
		return v, err
	}
	if !h.degrade(s, err, false) {
		return v, err
	}
	h.use.RLock()
	defer h.use.RUnlock()
	return op(h.cur)
}

// degrade switches from the database s to an in-memory store, carrying the
// pending outbox rows and actions over if s can still be read. It reports
// whether it switched (false if another call did first, or the memory
// store could not be made).
func (h *history) degrade(s *store.Store, cause error, released bool) bool {
	return h.toMemory(s, cause, released, false)
}

// toMemory is degrade; if carry is set, the latest events of s are carried
// to memory too (s is readable, but not the database at the path).
func (h *history) toMemory(s *store.Store, cause error, released, carry bool) bool {
	h.use.Lock()
	if h.cur != s || s.InMemory() {
		h.use.Unlock()
		return h.cur != s
	}
	mem, err := store.OpenMemory(time.Now().UnixMicro())
	if err != nil {
		h.use.Unlock()
		h.log.Error("could not start the in-memory history", "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.SeedMemory(ctx, mem); err != nil {
		h.log.Error("could not read the pending alerts and actions from the database; they are delivered once it works again",
			"err", err)
	} else if carry {
		if n, err := s.CarryEvents(ctx, mem, maxMemoryEvents); err != nil {
			h.log.Error("could not copy the history from the database fshealth held", "err", err)
		} else {
			h.log.Info("copied the history from the database fshealth held, for the one at its path", "events", n)
		}
	}
	cancel()
	h.stopCheck()
	if err := s.Close(); err != nil {
		h.log.Warn("closing the history database", "err", err)
	}
	h.lock.Release()
	h.lock = nil
	h.cur = mem
	h.degraded = h.describe(cause, released)
	h.use.Unlock()
	h.poke()
	h.changed()
	return true
}

// release lets go of the database (and every file fshealth holds open in
// the state directory) so that the file system it is on can be remounted
// read-only; the history is kept in memory meanwhile. unhold ends the
// release: the database is then retried as when degraded.
func (h *history) release(why string) {
	h.use.Lock()
	h.holds++
	s := h.cur
	h.use.Unlock()
	if !s.InMemory() {
		h.degrade(s, errors.New(why), true)
	}
}

// unhold ends a release.
func (h *history) unhold() {
	h.use.Lock()
	h.holds--
	h.use.Unlock()
	h.poke()
}

func (h *history) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// run retries the database while the history is degraded, and checks that
// the state directory it holds is still the one at its path while it is
// not (checkStale), until ctx is done.
func (h *history) run(ctx context.Context) {
	delay := probeFirst
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		h.use.RLock()
		degraded, held := h.degraded != nil, h.holds > 0
		h.use.RUnlock()
		if degraded && !held {
			timer.Reset(delay)
		} else if !degraded {
			timer.Reset(staleEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
			delay = probeFirst
			timer.Stop()
			continue
		case <-timer.C:
		}
		if !degraded {
			h.checkStale()
			continue
		}
		if h.recover(ctx) {
			delay = probeFirst
		} else {
			delay = min(delay*2, probeMax)
		}
	}
}

// recover tries the database once and, if it works, commits the in-memory
// history to it and switches back.
func (h *history) recover(ctx context.Context) bool {
	h.use.RLock()
	skip := h.degraded == nil || h.holds > 0
	h.use.RUnlock()
	if skip {
		return true
	}
	l, disk, err := h.openDisk(mayCreate(h.dir, h.parentDev), true)
	if err == nil {
		// A file system mounted over the path meanwhile.
		if err = l.Current(); err != nil {
			disk.Close()
			l.Release()
		}
	}
	if err != nil {
		h.log.Debug("the history database is still unusable", "err", err)
		return false
	}
	h.use.Lock()
	if h.degraded == nil || h.holds > 0 {
		h.use.Unlock()
		disk.Close()
		l.Release()
		return true
	}
	mem := h.cur
	st, err := disk.MergeInto(ctx, mem)
	if err != nil {
		h.use.Unlock()
		disk.Close()
		l.Release()
		h.log.Warn("the history database opens again but the history kept in memory could not be committed to it; retrying",
			"err", err)
		return false
	}
	since := h.degraded.Since
	h.cur, h.lock, h.degraded = disk, l, nil
	h.use.Unlock()
	mem.Close()
	h.log.Info("history recorded again: the events and alerts kept in memory are committed",
		"database", store.PathIn(h.dir), "events", st.Events, "deliveries", st.Deliveries, "degraded_since", since.Format(time.RFC3339))
	h.changed()
	return true
}

// checkIntegrity reads the whole database in use (PRAGMA quick_check), as
// the daemon does once it is ready rather than before: its cost grows with
// the history. If the database is damaged, the history degrades (carrying
// what can still be read of it to memory), and the next try of the
// database moves it aside and starts a new one, into which the history
// kept in memory meanwhile is committed.
func (h *history) checkIntegrity(ctx context.Context) {
	h.use.RLock()
	s, l := h.cur, h.lock
	var fi unix.Stat_t
	statErr := errors.New("in memory")
	if !s.InMemory() && l != nil {
		statErr = unix.Fstatat(l.DirFD, store.FileName, &fi, unix.AT_SYMLINK_NOFOLLOW)
	}
	var c *integrityCheck
	var cctx context.Context
	if statErr == nil && h.check == nil {
		// Registered before the read lock is let go: a switch that
		// closes s (under the write lock) stops this check first.
		c = &integrityCheck{done: make(chan struct{})}
		cctx, c.cancel = context.WithCancel(ctx)
		h.check = c
	}
	h.use.RUnlock()
	if c == nil {
		return
	}
	start := time.Now()
	// Not under h.use: the check may take seconds. A switch meanwhile
	// stops it (stopCheck) and waits for it.
	err := s.QuickCheck(cctx)
	stopped := cctx.Err() != nil && ctx.Err() == nil
	c.cancel()
	close(c.done)
	h.use.Lock()
	if h.check == c {
		h.check = nil
	}
	h.use.Unlock()
	switch {
	case err == nil:
		h.log.Debug("the history database is intact", "took", time.Since(start).Round(time.Millisecond))
	case stopped:
		h.log.Debug("the integrity check of the history database stopped: the database was let go", "took", time.Since(start).Round(time.Millisecond))
	case store.IsCorrupt(err):
		h.log.Error("the history database is damaged: it is moved aside and a new one started", "err", err)
		h.corrupt.Store(&corruptFile{dev: fi.Dev, ino: fi.Ino, err: err})
		if !h.toMemory(s, err, false, true) {
			h.corrupt.Store(nil)
		}
	case ctx.Err() == nil:
		h.log.Warn("could not check the history database", "err", err)
	}
}

// Close closes the store in use and releases the state directory. If the
// history is in memory, the database is tried once more first, so that
// nothing kept in memory is lost at a stop when the state works again.
func (h *history) Close() error {
	if h.Degraded() != nil && !h.recover(context.Background()) {
		n, _ := h.Store().CountEvents(context.Background())
		h.log.Error("stopping with the history in memory: events kept only in memory are lost (they are in the journal)", "events", n)
	}
	h.use.Lock()
	defer h.use.Unlock()
	h.stopCheck()
	err := h.cur.Close()
	h.lock.Release()
	h.lock = nil
	return err
}

// onStateFS reports whether path is on the file system holding the state
// directory.
func (h *history) onStateFS(path string) bool {
	var a, b unix.Stat_t
	if unix.Stat(h.dir, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev
}

// stateFSProblem says whether the file system that holds dir is read-only
// or has recorded errors (ext4), naming it; "" if neither is seen.
func stateFSProblem(dir string) string {
	m := stateMount(dir)
	if m == nil {
		return ""
	}
	var probs []string
	var sfs unix.Statfs_t
	err := unix.Statfs(m.Point, &sfs)
	// ext4 made read-only after an error (errors=remount-ro) says so in
	// its super options only: "emergency_ro".
	super := "," + m.SuperOptions + ","
	if err == nil && sfs.Flags&unix.ST_RDONLY != 0 || strings.Contains(super, ",ro,") || strings.Contains(super, ",emergency_ro,") {
		probs = append(probs, "is read-only")
	} else if err != nil {
		probs = append(probs, "cannot be read ("+err.Error()+")")
	}
	if m.FSType == "ext4" || m.FSType == "ext3" || m.FSType == "ext2" {
		// sysfs names ext4 by the kernel's device name (dm-3), which
		// the mount source (/dev/mapper/vg-lv) need not be.
		name := mounts.KernelName("/sys", m.Major, m.Minor)
		if name == "" {
			name = filepath.Base(m.Source)
		}
		if b, err := os.ReadFile(filepath.Join(ext4.Dir("/sys", name), "errors_count")); err == nil {
			if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n > 0 {
				probs = append(probs, fmt.Sprintf("has recorded %d errors", n))
			}
		}
	}
	if len(probs) == 0 {
		return ""
	}
	return fmt.Sprintf("the state directory's file system (%s %s on %s) %s", m.FSType, m.Source, m.Point, strings.Join(probs, " and "))
}

// stateMount returns the mount that holds dir (the last mounted of those
// with the longest mount point containing it), or nil.
func stateMount(dir string) *mounts.Mount {
	ms, err := mounts.ReadMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var m *mounts.Mount
	for i := range ms {
		p := ms[i].Point
		if (dir == p || strings.HasPrefix(dir, strings.TrimSuffix(p, "/")+"/")) && (m == nil || len(p) >= len(m.Point)) {
			m = &ms[i]
		}
	}
	return m
}

// The store's operations the daemon uses, through do.

func (h *history) Commit(ctx context.Context, b *store.Batch) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.Commit(ctx, b) })
	if err == nil {
		h.trim(ctx)
	}
	return err
}

// Probe starts an empty write transaction on the store in use, on the same
// path as Commit, for the watchdog: it returns once a commit could start,
// and blocks while one is stuck. Its error (a database that fails) is the
// history's business, not the watchdog's, and does not degrade anything.
func (h *history) Probe(ctx context.Context) error {
	h.use.RLock()
	defer h.use.RUnlock()
	return h.cur.Probe(ctx)
}

// trim bounds the in-memory history after a commit.
func (h *history) trim(ctx context.Context) {
	h.use.RLock()
	defer h.use.RUnlock()
	if !h.cur.InMemory() {
		return
	}
	if n, err := h.cur.Trim(ctx, maxMemoryEvents); err != nil {
		h.log.Error("bounding the in-memory history", "err", err)
	} else if n > 0 {
		h.log.Error("the in-memory history is full: dropped its oldest events (they are in the journal)", "dropped", n, "kept", maxMemoryEvents)
	}
}

func (h *history) SetWatched(ctx context.Context, fss []alert.Filesystem) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.SetWatched(ctx, fss) })
	return err
}

func (h *history) Filesystems(ctx context.Context) ([]store.FilesystemStatus, error) {
	return do(h, func(s *store.Store) ([]store.FilesystemStatus, error) { return s.Filesystems(ctx) })
}

func (h *history) MarkHealthy(ctx context.Context, key string, at time.Time) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.MarkHealthy(ctx, key, at) })
	return err
}

func (h *history) OpenIncidents(ctx context.Context) ([]store.Incident, error) {
	return do(h, func(s *store.Store) ([]store.Incident, error) { return s.OpenIncidents(ctx) })
}

func (h *history) Ext4Reported(ctx context.Context, uuid string) (uint64, bool, error) {
	type r struct {
		n  uint64
		ok bool
	}
	v, err := do(h, func(s *store.Store) (r, error) {
		n, ok, err := s.Ext4Reported(ctx, uuid)
		return r{n, ok}, err
	})
	return v.n, v.ok, err
}

func (h *history) BtrfsCounters(ctx context.Context, uuid string) ([]btrfs.DeviceStats, error) {
	return do(h, func(s *store.Store) ([]btrfs.DeviceStats, error) { return s.BtrfsCounters(ctx, uuid) })
}

func (h *history) Prune(ctx context.Context, before time.Time) (store.PruneStats, error) {
	return do(h, func(s *store.Store) (store.PruneStats, error) { return s.Prune(ctx, before) })
}

func (h *history) NextDue(ctx context.Context) (time.Time, bool, error) {
	type r struct {
		t  time.Time
		ok bool
	}
	v, err := do(h, func(s *store.Store) (r, error) {
		t, ok, err := s.NextDue(ctx)
		return r{t, ok}, err
	})
	return v.t, v.ok, err
}

func (h *history) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	return do(h, func(s *store.Store) ([]store.Delivery, error) { return s.DueDeliveries(ctx, now, limit) })
}

func (h *history) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.MarkDelivered(ctx, id, at) })
	return err
}

func (h *history) MarkRetry(ctx context.Context, id int64, next time.Time, errText string) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.MarkRetry(ctx, id, next, errText) })
	return err
}

func (h *history) MarkGaveUp(ctx context.Context, id int64, errText string) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.MarkGaveUp(ctx, id, errText) })
	return err
}

func (h *history) Backlog(ctx context.Context) ([]store.Backlog, error) {
	return do(h, func(s *store.Store) ([]store.Backlog, error) { return s.Backlog(ctx) })
}

func (h *history) PendingActions(ctx context.Context) ([]store.Action, error) {
	return do(h, func(s *store.Store) ([]store.Action, error) { return s.PendingActions(ctx) })
}

func (h *history) StartAction(ctx context.Context, id int64, at time.Time) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.StartAction(ctx, id, at) })
	return err
}

func (h *history) FinishAction(ctx context.Context, id int64, state, outcome, output string, started, finished time.Time) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) {
		return struct{}{}, s.FinishAction(ctx, id, state, outcome, output, started, finished)
	})
	return err
}

func (h *history) PendingRequests(ctx context.Context) ([]store.Request, error) {
	return do(h, func(s *store.Store) ([]store.Request, error) { return s.PendingRequests(ctx) })
}

func (h *history) FinishRequest(ctx context.Context, id int64, outcome string, at time.Time) error {
	_, err := do(h, func(s *store.Store) (struct{}, error) { return struct{}{}, s.FinishRequest(ctx, id, outcome, at) })
	return err
}
