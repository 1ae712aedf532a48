package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// waitTimeout bounds every wait for an event; it only fails a test that
// would otherwise hang. It is generous: once, in a 7.3 guest of the kernel
// matrix (software emulation, a loaded host, FAN_FS_ERROR delivered by a
// kernel worker), TestQueueOverflowIsReported went 10 s without an event;
// it passed in every other run.
const waitTimeout = 30 * time.Second

// collector runs a Watcher and collects its events.
type collector struct {
	t      *testing.T
	events chan event.Event
	log    *bytes.Buffer
	w      *Watcher
	// gate, if set, is waited on by the sink before it takes a batch.
	gate chan struct{}
	// batches counts sink calls.
	mu      sync.Mutex
	batches int
	// paths receives the path events, when the test asked for them by
	// setting Config.OnPath.
	paths chan event.Event
	// ext4 receives the ext4 record events, when the test asked for them
	// by setting Config.OnExt4.
	ext4 chan event.Event
	// stop ends Run and returns its error; it runs once, at the latest
	// when the test ends.
	stop func() error
}

// start creates a watcher for paths (nil: everything) and runs it until the
// test ends.
func start(t *testing.T, paths []string, gated bool) *collector {
	t.Helper()
	return startConfig(t, Config{Paths: paths}, gated)
}

// startConfig is start with more of the watcher's configuration; its
// Logger and Sink are the collector's.
func startConfig(t *testing.T, cfg Config, gated bool) *collector {
	t.Helper()
	c := &collector{t: t, events: make(chan event.Event, 1024), log: &bytes.Buffer{}, paths: make(chan event.Event, 64),
		ext4: make(chan event.Event, 64)}
	if cfg.OnPath != nil {
		cfg.OnPath = func(e *event.Event) { c.paths <- *e }
	}
	if cfg.OnExt4 != nil {
		cfg.OnExt4 = func(e *event.Event) { c.ext4 <- *e }
	}
	if gated {
		c.gate = make(chan struct{})
	}
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, c.log}, nil))
	cfg.Logger = logger
	gate := c.gate // the test closes and forgets c.gate while the sink runs
	cfg.Sink = func(evs []event.Event) error {
		if gate != nil {
			<-gate
		}
		c.mu.Lock()
		c.batches++
		c.mu.Unlock()
		for _, e := range evs {
			c.events <- e
		}
		return nil
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.w = w
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	c.stop = sync.OnceValue(func() error {
		cancel()
		if c.gate != nil {
			close(c.gate)
			c.gate = nil
		}
		return <-done
	})
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return c
}

// errorProbe is the test's own fanotify group, marked for the errors of
// some file systems, with no queue limit. From Linux 7.0 the kernel reports
// file system errors from a worker, after the write that caused them has
// returned: a test that holds the watcher's reader in its gated sink until
// its errors are queued behind it waits for them on the probe. The kernel
// hands an error to every group marking the file system in the same pass,
// so once the probe has one, the watcher's group has it too.
type errorProbe struct {
	t *testing.T
	g *fanotify.Group
}

// newErrorProbe marks the file systems of paths on a new probe group,
// closed when the test ends.
func newErrorProbe(t *testing.T, paths ...string) *errorProbe {
	t.Helper()
	g, err := fanotify.New(fanotify.Config{Class: fanotify.ClassNotif, Report: fanotify.ReportFID, UnlimitedQueue: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, p := range paths {
		if err := g.MarkFilesystemErrors(p); err != nil {
			t.Fatal(err)
		}
	}
	return &errorProbe{t: t, g: g}
}

// wait reads the probe's events until the kernel has reported n errors
// (the sum of their error counts); it gives up after waitTimeout, saying
// so, as when the kernel dropped a report (Linux 7.0+).
func (p *errorProbe) wait(n uint32) {
	p.t.Helper()
	buf := make([]byte, fanotify.ReadBufferSize)
	var got uint32
	deadline := time.Now().Add(waitTimeout)
	for got < n {
		if err := p.g.SetReadDeadline(deadline); err != nil {
			p.t.Fatal(err)
		}
		evs, err := p.g.ReadEvents(buf, nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			p.t.Logf("the kernel reported %d of %d errors within %v", got, n, waitTimeout)
			return
		}
		if err != nil {
			p.t.Fatal(err)
		}
		for _, e := range evs {
			if e.IsOverflow() {
				p.t.Fatal("the probe's unlimited queue overflowed")
			}
			got += e.ErrorCount
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// next returns the next event, failing the test after waitTimeout.
func (c *collector) next() event.Event {
	c.t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(waitTimeout):
		c.t.Fatalf("no event within %v", waitTimeout)
	}
	return event.Event{}
}

// nextExt4 returns the next ext4 record event, failing the test after
// waitTimeout.
func (c *collector) nextExt4() event.Event {
	c.t.Helper()
	select {
	case e := <-c.ext4:
		return e
	case <-time.After(waitTimeout):
		c.t.Fatalf("no ext4 record event within %v", waitTimeout)
	}
	return event.Event{}
}

// wantExt4 is the Config.OnExt4 that makes startConfig collect ext4
// record events.
func wantExt4(*event.Event) {}

// nextPath returns the next path event, failing the test after
// waitTimeout.
func (c *collector) nextPath() event.Event {
	c.t.Helper()
	select {
	case e := <-c.paths:
		return e
	case <-time.After(waitTimeout):
		c.t.Fatalf("no path event within %v", waitTimeout)
	}
	return event.Event{}
}

// none checks that no further event arrives within a short while.
func (c *collector) none() {
	c.t.Helper()
	select {
	case e := <-c.events:
		c.t.Errorf("unexpected event: %s", event.AppendText(nil, &e))
	case <-time.After(300 * time.Millisecond):
	}
}

// fsIdentity is what every event about one mounted image must say about
// its file system. It is taken while the file system is healthy: a shut
// down one answers no stat(2).
type fsIdentity struct {
	fstype, device, devno, uuid, fsid string
	mountpoints                       []string
}

// identify takes the identity of im's file system, of type fstype, mounted
// at mountpoints (default: im's mount point).
func identify(t *testing.T, im *loopfs.Image, fstype string, mountpoints ...string) fsIdentity {
	t.Helper()
	if len(mountpoints) == 0 {
		mountpoints = []string{im.Mountpoint}
	}
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		t.Fatal(err)
	}
	var sfs unix.Statfs_t
	if err := unix.Statfs(im.Mountpoint, &sfs); err != nil {
		t.Fatal(err)
	}
	uuid, err := mounts.SuperblockUUID(fstype, im.File)
	if err != nil {
		t.Fatal(err)
	}
	return fsIdentity{fstype: fstype, device: im.Dev, devno: fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)), uuid: uuid,
		fsid: fmt.Sprintf("%08x:%08x", uint32(sfs.Fsid.Val[0]), uint32(sfs.Fsid.Val[1])), mountpoints: mountpoints}
}

// check checks that e is a fanotify error event about this file system,
// received just now.
func (id fsIdentity) check(t *testing.T, e event.Event) {
	t.Helper()
	if e.Kind != event.KindError || e.Source != event.SourceFanotify || e.FSType != id.fstype || e.Device != id.device ||
		e.DeviceNumber != id.devno || e.UUID != id.uuid || e.FSID != id.fsid || fmt.Sprint(e.Mountpoints) != fmt.Sprint(id.mountpoints) {
		t.Errorf("file system fields wrong:\n got kind=%s source=%s fstype=%s device=%s devno=%s uuid=%s fsid=%s mountpoints=%q\nwant kind=error source=fanotify fstype=%s device=%s devno=%s uuid=%s fsid=%s mountpoints=%q",
			e.Kind, e.Source, e.FSType, e.Device, e.DeviceNumber, e.UUID, e.FSID, e.Mountpoints, id.fstype, id.device, id.devno, id.uuid, id.fsid, id.mountpoints)
	}
	if e.Time.IsZero() || time.Since(e.Time.Time) > time.Minute {
		t.Errorf("bad time %v", e.Time)
	}
}

// checkFS checks the fields that identify the ext4 file system of im.
func checkFS(t *testing.T, e event.Event, im *loopfs.Image, mountpoints ...string) {
	t.Helper()
	identify(t, im, "ext4", mountpoints...).check(t, e)
}

// raisedByUs reports whether an error event's pid is this process, which
// raised it, or a kernel thread: from Linux 7.0 errors are reported from a
// kernel worker.
func raisedByUs(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	_, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return pid > 0 && errors.Is(err, os.ErrNotExist)
}

func checkErr(t *testing.T, e event.Event, errno syscall.Errno, name string, count uint32) {
	t.Helper()
	if e.Errno != int(errno) || e.Error != name || e.ErrorText != errno.Error() || e.ErrorCount != count {
		t.Errorf("got errno=%d error=%s text=%q count=%d, want %d %s %q %d", e.Errno, e.Error, e.ErrorText, e.ErrorCount, int(errno), name, errno.Error(), count)
	}
}

func noInode(t *testing.T, e event.Event) {
	t.Helper()
	if e.Inode != nil || e.Generation != nil || e.Path != "" || e.PathError != "" || e.Handle != nil {
		t.Errorf("error not tied to an inode names one: inode=%v gen=%v path=%q path_error=%q handle=%v", e.Inode, e.Generation, e.Path, e.PathError, e.Handle)
	}
}

func errorsCount(t *testing.T, im *loopfs.Image) int {
	t.Helper()
	n, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSuperblockError: an error about the file system as a whole is sent
// at once, without waiting for ext4 to publish its record of it
// (ext4_pending); the record follows as an ext4 event once ext4 counted
// the error.
func TestSuperblockError(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, OnExt4: wantExt4}, false)
	if err := im.TriggerError("fshealth test"); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkFS(t, e, im)
	noInode(t, e)
	if !raisedByUs(e.PID) {
		t.Errorf("pid %d, want the test's own %d (it raised the error), or a kernel worker (Linux 7.0+)", e.PID, os.Getpid())
	}
	if e.Ext4 != nil || !e.Ext4Pending {
		t.Errorf("the event waited for ext4's record (%+v) or does not say it follows (ext4_pending %v)", e.Ext4, e.Ext4Pending)
	}
	x := c.nextExt4()
	if x.Kind != event.KindExt4 || x.Source != event.SourceExt4Record || x.Device != im.Dev || x.FSID != e.FSID || x.UUID != e.UUID {
		t.Errorf("ext4 record event %s, want one about %s", event.AppendText(nil, &x), im.Dev)
	}
	if x.Ext4 == nil || x.Ext4.ErrorsCount != 1 || x.Ext4.LastError == nil || x.Ext4.LastError.Function != "trigger_test_error" ||
		x.Ext4.LastError.Error != "EUCLEAN" || x.Ext4.LastError.Inode != 0 || x.Ext4.FirstError == nil {
		t.Errorf("ext4 recorded state: %+v", x.Ext4)
	}
	c.none()
}

// TestExt4RecordUnderStorm: a storm of errors does not make the watcher
// read ext4's record (seven sysfs reads) after every event: it reads it at
// most every ext4ReadEvery, and the last record read covers every error.
func TestExt4RecordUnderStorm(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, OnExt4: wantExt4}, false)
	const n = 40
	for i := range n {
		if err := im.TriggerError(fmt.Sprintf("storm %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	var errs uint32
	for errs < n {
		errs += c.next().ErrorCount
	}
	records := 0
	for {
		x := c.nextExt4()
		records++
		if x.Ext4 == nil {
			t.Fatalf("ext4 record event without the record: %s", event.AppendText(nil, &x))
		}
		if x.Ext4.ErrorsCount == n {
			break
		}
	}
	// Read after each of the 40 events, there would be about 40 records.
	if records >= n/2 {
		t.Errorf("%d ext4 records read for %d errors raised back to back: not coalesced", records, n)
	}
	t.Logf("%d errors, %d ext4 records", n, records)
}

// corrupt creates dir/name on im, unmounts it, runs a debugfs request on it
// and mounts it again, returning the inode number and generation of
// dir/name (or of dir, for whichDir).
func corrupt(t *testing.T, im *loopfs.Image, request string, stat string) (ino uint64, gen uint32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(im.Mountpoint, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(im.Mountpoint, "dir/bad"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
	out, err := im.DebugfsOutput("stat " + stat)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`Inode: (\d+) .*\n(?:.*\n)*?.*Generation: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no inode/generation in debugfs output:\n%s", out)
	}
	i, _ := strconv.ParseUint(m[1], 10, 64)
	g, _ := strconv.ParseUint(m[2], 10, 32)
	if err := im.Debugfs(request); err != nil {
		t.Fatal(err)
	}
	if err := im.Mount(mnt, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	return i, uint32(g)
}

// wantPaths is the Config.OnPath that makes startConfig collect path
// events.
func wantPaths(*event.Event) {}

// TestCorruptedInode: the error about a corrupted inode is delivered at
// once, its path pending; the path follows as a path event, found
// read-only on the device; a later error about the inode carries it at
// once. fshealth raises no error of its own: ext4 counts exactly the two
// the test caused.
func TestCorruptedInode(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	ino, gen := corrupt(t, im, "sif dir/bad mode 0xff", "dir/bad")
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, OnPath: wantPaths, OnExt4: wantExt4}, false)
	before := errorsCount(t, im)
	bad := filepath.Join(im.Mountpoint, "dir/bad")
	if _, err := os.Lstat(bad); !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the corrupted inode: %v, want EUCLEAN", err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkFS(t, e, im)
	if e.Inode == nil || *e.Inode != ino || e.Generation == nil || *e.Generation != gen {
		t.Errorf("inode %v generation %v, want %d %d", e.Inode, e.Generation, ino, gen)
	}
	if !e.PathPending || e.Path != "" || e.PathError != "" || e.Message != "" {
		t.Errorf("want the path pending, got pending=%v path=%q path_error=%q message=%q", e.PathPending, e.Path, e.PathError, e.Message)
	}
	if x := c.nextExt4(); x.Ext4 == nil || x.Ext4.LastError == nil || x.Ext4.LastError.Inode != ino {
		t.Errorf("ext4 recorded state does not name inode %d: %+v", ino, x.Ext4)
	}
	p := c.nextPath()
	if p.Kind != event.KindPath || p.Source != event.SourcePathfind || p.Inode == nil || *p.Inode != ino || *p.Generation != gen ||
		p.Path != bad || p.PathError != "" || p.Device != im.Dev || p.FSID != e.FSID {
		t.Errorf("path event %s, want the path %s of inode %d", event.AppendText(nil, &p), bad, ino)
	}
	// Looked up again: the path is known at once, and not looked up anew.
	os.Lstat(bad)
	again := c.next()
	if again.Path != bad || again.PathPending || again.PathError != "" || again.Message != "" {
		t.Errorf("second lookup: path %q pending %v path_error %q message %q", again.Path, again.PathPending, again.PathError, again.Message)
	}
	c.none()
	select {
	case p := <-c.paths:
		t.Errorf("a second path event: %s", event.AppendText(nil, &p))
	default:
	}
	if after := errorsCount(t, im); after != before+2 {
		t.Errorf("errors_count went from %d to %d, want +2 (the test's two lookups; fshealth must raise none)", before, after)
	}
	if last := lastErrorFunc(t, im); last != "ext4_lookup" {
		t.Errorf("ext4's last error is in %s, want the test's own ext4_lookup", last)
	}
}

// lastErrorFunc returns the function ext4 recorded its last error in.
func lastErrorFunc(t *testing.T, im *loopfs.Image) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(im.SysfsDir(), "last_error_func"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestErrorOnDirectoryResolvesPath(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := testutil.NewExt4(t, 0)
	// A directory entry pointing at inode 1 (reserved) is reported against
	// the directory holding it.
	ino, gen := corrupt(t, im, "ln <1> dir/bad_link", "dir")
	c := startConfig(t, Config{Paths: []string{im.Mountpoint}, OnPath: wantPaths}, false)
	before := errorsCount(t, im)
	_, err := os.Lstat(filepath.Join(im.Mountpoint, "dir/bad_link"))
	if !errors.Is(err, syscall.EUCLEAN) {
		t.Fatalf("looking up the bad link: %v, want EUCLEAN", err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkFS(t, e, im)
	if e.Inode == nil || *e.Inode != ino || *e.Generation != gen || !e.PathPending {
		t.Errorf("inode %v generation %v pending %v, want the directory's %d %d, its path pending", e.Inode, e.Generation, e.PathPending, ino, gen)
	}
	p := c.nextPath()
	if want := filepath.Join(im.Mountpoint, "dir"); p.Path != want || p.PathError != "" || *p.Inode != ino {
		t.Errorf("path %q (error %q) of inode %d, want %q", p.Path, p.PathError, *p.Inode, want)
	}
	if after := errorsCount(t, im); after != before+1 {
		t.Errorf("errors_count went from %d to %d, want +1", before, after)
	}
}

func TestAbortedFilesystem(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := start(t, []string{im.Mountpoint}, false)
	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkErr(t, e, syscall.ESHUTDOWN, "ESHUTDOWN", 1)
	checkFS(t, e, im)
	noInode(t, e)
	c.none()
}

func TestFoldedErrors(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := start(t, []string{im.Mountpoint}, true)
	probe := newErrorProbe(t, im.Mountpoint)
	before := errorsCount(t, im)
	const n = 6
	for i := 0; i < n; i++ {
		if err := im.TriggerError(fmt.Sprint("error ", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The first event was read at once and waits in the gated sink; the
	// kernel folds the later errors into the next event in its queue.
	probe.wait(n)
	c.gate <- struct{}{}
	close(c.gate)
	c.gate = nil
	var sum uint32
	var events int
	for sum < n {
		e := c.next()
		checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", e.ErrorCount)
		checkFS(t, e, im)
		sum += e.ErrorCount
		events++
	}
	c.none()
	if events >= n {
		t.Errorf("%d events for %d errors: nothing was folded", events, n)
	}
	if after := errorsCount(t, im); uint32(after-before) != sum {
		t.Errorf("error_count sum %d, but errors_count grew by %d", sum, after-before)
	}
}

func TestTwoFilesystemsAtOnce(t *testing.T) {
	testutil.CheckNoLeaks(t)
	a := testutil.NewExt4(t, 0)
	b := testutil.NewExt4(t, 0)
	c := start(t, []string{a.Mountpoint, b.Mountpoint}, false)
	if len(c.w.Watched()) != 2 {
		t.Fatalf("watching %d file systems, want 2", len(c.w.Watched()))
	}
	const n = 20
	var wg sync.WaitGroup
	for _, im := range []*loopfs.Image{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := im.TriggerError("concurrent"); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	sums := map[string]uint32{}
	for sums[a.Dev]+sums[b.Dev] < 2*n {
		e := c.next()
		switch e.Device {
		case a.Dev:
			checkFS(t, e, a)
		case b.Dev:
			checkFS(t, e, b)
		default:
			t.Fatalf("event for unexpected device %q", e.Device)
		}
		sums[e.Device] += e.ErrorCount
	}
	c.none()
	if sums[a.Dev] != n || sums[b.Dev] != n {
		t.Errorf("errors attributed %v, want %d each", sums, n)
	}
}

func TestBindMountOneEventAllMountpoints(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	sub := filepath.Join(im.Mountpoint, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	bind := filepath.Join(t.TempDir(), "bind with space")
	if err := os.Mkdir(bind, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(sub, bind, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH) })
	// Watch everything: the file system must be marked once, though it has
	// two mount points.
	c := start(t, nil, false)
	n := 0
	for _, w := range c.w.Watched() {
		if w.Device == im.Dev {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("file system watched %d times, want once", n)
	}
	if err := im.TriggerError("bind"); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	checkFS(t, e, im, im.Mountpoint, bind)
	c.none()
}

func TestWatchAllWithUnmarkableFilesystems(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	tmp := filepath.Join(t.TempDir(), "tmpfs")
	os.Mkdir(tmp, 0o755)
	if err := unix.Mount("fshealth-test", tmp, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(tmp, unix.MNT_DETACH) })
	// A btrfs subvolume mounted on its own cannot be marked (EXDEV): its
	// file system is marked through its top level.
	bt := testutil.NewImage(t, "btrfs", 128<<20, "")
	vol := filepath.Join(bt.Mountpoint, "vol")
	if out, err := exec.Command("btrfs", "subvolume", "create", vol).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v: %s", err, out)
	}
	volMnt := filepath.Join(t.TempDir(), "subvol")
	os.Mkdir(volMnt, 0o755)
	if err := unix.Mount(bt.Dev, volMnt, "btrfs", 0, "subvol=vol"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(volMnt, unix.MNT_DETACH) })
	// Leave only the subvolume mounted. (Not bt.Unmount: it would wait for
	// a loop detach that the subvolume mount prevents.)
	if err := unix.Unmount(bt.Mountpoint, 0); err != nil {
		t.Fatal(err)
	}

	c := start(t, nil, false)
	if err := im.TriggerError("all"); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkFS(t, e, im)
	log := c.log.String()
	for _, want := range []string{
		`msg="watching file system" fstype=ext4 device=` + im.Dev,
		`msg="not watching pseudo file systems`,
		`msg="watching file system" fstype=btrfs device=` + bt.Dev,
		`marked_through="its top-level subvolume, opened through a private detached mount"`,
	} {
		if !bytes.Contains([]byte(log), []byte(want)) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestUnwatchablePathIsAnError(t *testing.T) {
	testutil.RequireRoot(t)
	_, err := New(Config{Paths: []string{"/proc/self"}, Sink: func([]event.Event) error { return nil }})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("cannot watch /proc/self")) {
		t.Errorf("got %v, want an error naming /proc/self", err)
	}
	_, err = New(Config{Paths: []string{"/does/not/exist"}, Sink: func([]event.Event) error { return nil }})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("/does/not/exist")) {
		t.Errorf("got %v, want an error naming the path", err)
	}
}

func TestQueueOverflowIsReported(t *testing.T) {
	testutil.CheckNoLeaks(t)
	ims := []*loopfs.Image{testutil.NewExt4(t, 0), testutil.NewExt4(t, 0), testutil.NewExt4(t, 0)}
	var paths []string
	for _, im := range ims {
		paths = append(paths, im.Mountpoint)
	}
	// A group's queue limit is fixed when the group is created: restore the
	// machine-wide setting at once, so that tests running in parallel in
	// other packages are not affected.
	restore := testutil.SetSysctl(t, "/proc/sys/fs/fanotify/max_queued_events", "1")
	// With the kernel log: from Linux 7.0 the kernel may drop a report
	// before it reaches the queue when its small pool of reports is used
	// up (seen in the kernel matrix under load), and then says so only in
	// the kernel log ("lost filesystem error report"), which is then the
	// loss to report.
	c := startConfig(t, Config{Paths: paths, KernelLog: true}, true)
	restore()
	probe := newErrorProbe(t, paths...)
	// The first error is read at once and held in the gated sink; with a
	// one-event queue, the second file system's error fills it and the
	// third's overflows it. The gate opens once the kernel has reported
	// all three (or dropped one).
	for _, im := range ims {
		if err := im.TriggerError("overflow"); err != nil {
			t.Fatal(err)
		}
	}
	probe.wait(uint32(len(ims)))
	close(c.gate)
	c.gate = nil
	var kinds []string
	deadline := time.After(waitTimeout)
	for {
		var e event.Event
		select {
		case e = <-c.events:
		case <-deadline:
			t.Fatalf("no overflow and no lost report within %v; events: %v", waitTimeout, kinds)
		}
		kinds = append(kinds, e.Kind+"/"+e.Source)
		if e.Kind == event.KindOverflow && e.Source == event.SourceFanotify {
			if e.Message == "" || e.Errno != 0 {
				t.Errorf("overflow event: %+v", e)
			}
			if !strings.Contains(c.log.String(), "fanotify queue overflow") {
				t.Errorf("overflow not logged:\n%s", c.log)
			}
			break
		}
		if e.LostReport {
			t.Logf("the kernel dropped a report before the queue could overflow: %s", event.AppendText(nil, &e))
			break
		}
	}
	t.Logf("events: %v", kinds)
}

// TestSharedFSIDIsNotWatched: a copy of a file system image, mounted beside
// the original, has its fsid; the kernel's error events could not say
// which of the two erred, so the copy is not watched, and fshealth says
// why instead of naming the wrong device.
func TestSharedFSIDIsNotWatched(t *testing.T) {
	testutil.CheckNoLeaks(t)
	a := testutil.NewExt4(t, 0)
	mp := a.Mountpoint
	if err := a.Unmount(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(a.File)
	if err != nil {
		t.Fatal(err)
	}
	b := &loopfs.Image{File: filepath.Join(t.TempDir(), "copy.img"), FSType: "ext4"}
	if err := os.WriteFile(b.File, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Mount(mp, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	if err := b.Mount(filepath.Join(t.TempDir(), "copy"), "errors=continue"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Unmount(); err != nil {
			t.Errorf("unmounting the copy: %v", err)
		}
	})
	_, err = New(Config{Paths: []string{a.Mountpoint, b.Mountpoint}, FollowMounts: FollowOff, Sink: func([]event.Event) error { return nil }})
	var shared *SharedFSIDError
	if !errors.As(err, &shared) || shared.Other != a.Dev || !strings.Contains(err.Error(), "cannot watch "+b.Mountpoint) ||
		!strings.Contains(err.Error(), "tune2fs -U random") {
		t.Fatalf("watching the original and its copy: %v, want a SharedFSIDError naming %s", err, a.Dev)
	}

	// Watching everything, the copy is left out and the original still
	// reports its own errors.
	c := startConfig(t, Config{FollowMounts: FollowOff}, false)
	for _, fs := range c.w.Watched() {
		if fs.Device == b.Dev {
			t.Errorf("the copy %s is watched", b.Dev)
		}
	}
	if !strings.Contains(c.log.String(), "cannot watch file system") || !strings.Contains(c.log.String(), "has the fsid") {
		t.Errorf("the log does not say why the copy is not watched:\n%s", c.log.String())
	}
	if err := a.TriggerError("original"); err != nil {
		t.Fatal(err)
	}
	checkFS(t, c.next(), a)
}
