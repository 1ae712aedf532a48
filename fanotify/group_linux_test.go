package fanotify_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode, os.Getenv(helperPathEnv)))
	}
	testutil.MainInMountNamespace(m)
}

func newGroup(t *testing.T) *fanotify.Group {
	t.Helper()
	testutil.RequireRoot(t)
	g, err := fanotify.NewErrorGroup()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// readOne reads one batch with a deadline, so a missing event fails the
// test instead of hanging it.
func readOne(t *testing.T, g *fanotify.Group) []fanotify.Event {
	t.Helper()
	g.SetReadDeadline(time.Now().Add(10 * time.Second))
	evs, err := g.ReadEvents(make([]byte, fanotify.ReadBufferSize), nil)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestGroupReadsRealError(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroup(t)
	im := testutil.NewExt4(t, 0)
	if err := g.MarkFilesystemErrors(im.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if err := im.TriggerError("group test"); err != nil {
		t.Fatal(err)
	}
	evs := readOne(t, g)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	ev := evs[0]
	var st unix.Statfs_t
	unix.Statfs(im.Mountpoint, &st)
	// Before Linux 7.0 the pid is the task that hit the error (this one);
	// from 7.0 errors are reported from a kernel worker.
	_, exeErr := os.Readlink("/proc/" + strconv.Itoa(int(ev.PID)) + "/exe")
	byUs := ev.PID == int32(os.Getpid()) || ev.PID > 0 && errors.Is(exeErr, os.ErrNotExist)
	if !ev.IsFSError() || ev.IsOverflow() || ev.FD != fanotify.NoFD || !byUs ||
		ev.Records != fanotify.HasError|fanotify.HasFID || ev.Errno != syscall.EUCLEAN || ev.ErrorCount != 1 ||
		ev.FID.FSID != (fanotify.FSID{st.Fsid.Val[0], st.Fsid.Val[1]}) || !ev.FID.Handle.IsInvalid() || len(ev.FID.Handle.Bytes) != 0 {
		t.Errorf("unexpected event %+v", ev)
	}
}

func TestGroupQueued(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroup(t)
	im := testutil.NewExt4(t, 0)
	if err := g.MarkFilesystemErrors(im.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Queued(); n != 0 || err != nil {
		t.Fatalf("Queued before any error = %d, %v", n, err)
	}
	if err := im.TriggerError("queued test"); err != nil {
		t.Fatal(err)
	}
	// From Linux 7.0 the event is queued by a kernel worker, a moment
	// after the error.
	deadline := time.Now().Add(5 * time.Second)
	n, err := g.Queued()
	for ; n == 0 && err == nil && time.Now().Before(deadline); n, err = g.Queued() {
		time.Sleep(time.Millisecond)
	}
	if n < fanotify.MetadataSize || err != nil {
		t.Fatalf("Queued with an event waiting = %d, %v", n, err)
	}
	readOne(t, g)
	if n, err := g.Queued(); n != 0 || err != nil {
		t.Errorf("Queued after reading = %d, %v", n, err)
	}
}

func TestGroupUnmark(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroup(t)
	im := testutil.NewExt4(t, 0)
	if err := g.MarkFilesystemErrors(im.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if err := g.UnmarkFilesystemErrors(im.Mountpoint); err != nil {
		t.Fatal(err)
	}
	im.TriggerError("after unmark")
	g.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := g.Read(make([]byte, fanotify.ReadBufferSize)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read after unmark: %v, want a deadline error (no event)", err)
	}
}

func TestGroupCloseUnblocksRead(t *testing.T) {
	g := newGroup(t)
	done := make(chan error, 1)
	go func() {
		_, err := g.Read(make([]byte, fanotify.ReadBufferSize))
		done <- err
	}()
	testutil.WaitBlocked(t, 1, "fanotify.(*Group).Read")
	g.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads line")
	return 0
}

func TestBlockedReadsHoldNoThreads(t *testing.T) {
	testutil.RequireRoot(t)
	before := threads(t)
	const n = 32
	for i := 0; i < n; i++ {
		g := newGroup(t)
		go g.Read(make([]byte, fanotify.ReadBufferSize))
	}
	testutil.WaitBlocked(t, n, "fanotify.(*Group).Read")
	if after := threads(t); after-before >= n/2 {
		t.Errorf("%d blocked reads added %d threads: reads are not on the runtime poller", n, after-before)
	}
}

func TestGroupReadDeadline(t *testing.T) {
	g := newGroup(t)
	g.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := g.Read(make([]byte, fanotify.ReadBufferSize)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("got %v, want os.ErrDeadlineExceeded", err)
	}
}

func TestGroupSmallBuffer(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroup(t)
	im := testutil.NewExt4(t, 0)
	g.MarkFilesystemErrors(im.Mountpoint)
	im.TriggerError("small buffer")
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := g.Read(make([]byte, 8))
	if err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("got %v, want an error saying the buffer is too small", err)
	}
}

func TestMarkErrorsAreTyped(t *testing.T) {
	g := newGroup(t)
	// procfs cannot be marked: before Linux 6.7 it has no fsid (ENODEV),
	// from 6.7 it has one but no file handles (EOPNOTSUPP).
	err := g.MarkFilesystemErrors("/proc")
	var me *fanotify.MarkError
	noFSID := errors.Is(err, fanotify.ErrNoFSID) && errors.Is(err, syscall.ENODEV)
	noHandles := errors.Is(err, fanotify.ErrNoFileHandles) && errors.Is(err, syscall.EOPNOTSUPP)
	if !errors.As(err, &me) || me.Path != "/proc" || !noFSID && !noHandles {
		t.Errorf("/proc: %v, want a MarkError for ErrNoFSID or ErrNoFileHandles", err)
	}
	if err := g.MarkFilesystemErrors("/no/such/path"); !errors.Is(err, fanotify.ErrNotFound) || !strings.Contains(err.Error(), "/no/such/path") {
		t.Errorf("missing path: %v", err)
	}
}

func TestMarkBtrfsSubvolume(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g := newGroup(t)
	bt := testutil.NewImage(t, "btrfs", 128<<20, "")
	vol := filepath.Join(bt.Mountpoint, "vol")
	if out, err := exec.Command("btrfs", "subvolume", "create", vol).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v: %s", err, out)
	}
	if err := g.MarkFilesystemErrors(bt.Mountpoint); err != nil {
		t.Errorf("the top-level btrfs mount must be markable: %v", err)
	}
	err := g.MarkFilesystemErrors(vol)
	if !errors.Is(err, fanotify.ErrSubvolume) || !errors.Is(err, syscall.EXDEV) {
		t.Errorf("subvolume: %v, want ErrSubvolume", err)
	}
}

func TestMountEvents(t *testing.T) {
	testutil.RequireRoot(t)
	g, err := fanotify.NewMountGroup()
	var unsup *fanotify.UnsupportedError
	if errors.As(err, &unsup) {
		if unsup.Feature != "FAN_REPORT_MNT" || unsup.MinVersion != "6.15" {
			t.Errorf("unsupported error names %q %q", unsup.Feature, unsup.MinVersion)
		}
		testutil.Skip(t, testutil.KernelLacks, "kernel has no mount events: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.MarkMountNamespace("/proc/self/ns/mnt"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := unix.Mount("fshealth-test", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	unix.Unmount(dir, 0)
	var masks []fanotify.Mask
	for len(masks) < 2 {
		for _, ev := range readOne(t, g) {
			if ev.Records&fanotify.HasMount == 0 || ev.MountID == 0 {
				t.Errorf("mount event without mount id: %+v", ev)
			}
			masks = append(masks, ev.Mask)
		}
	}
	if !masks[0].Has(fanotify.MountAttach) || !masks[1].Has(fanotify.MountDetach) {
		t.Errorf("masks %x, want attach then detach", masks)
	}
}

// TestOwnPoll: a group made with OwnPoll is not in the Go runtime's
// poller (SetReadDeadline says so), a Read with nothing queued fails with
// EAGAIN at once, and the caller's own poll(2) on the descriptor sees the
// event, which Read then returns.
func TestOwnPoll(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireRoot(t)
	g, err := fanotify.New(fanotify.Config{Report: fanotify.ReportFID, OwnPoll: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Errorf("SetReadDeadline: %v, want os.ErrNoDeadline (not in the runtime poller)", err)
	}
	im := testutil.NewExt4(t, 0)
	if err := g.MarkFilesystemErrors(im.Mountpoint); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, fanotify.ReadBufferSize)
	if _, err := g.Read(buf); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("Read with nothing queued: %v, want EAGAIN at once", err)
	}
	if err := im.TriggerError("own poll"); err != nil {
		t.Fatal(err)
	}
	rc, err := g.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var perr error
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, perr = unix.Poll(fds, 10_000)
	}); err != nil || perr != nil || n != 1 {
		t.Fatalf("poll: %d ready, %v %v; want the event", n, err, perr)
	}
	evs, err := g.ReadEvents(buf, nil)
	if err != nil || len(evs) != 1 || !evs[0].IsFSError() {
		t.Errorf("ReadEvents after poll: %+v, %v", evs, err)
	}
}
