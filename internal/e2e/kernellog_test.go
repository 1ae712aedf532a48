package e2e_test

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// kernelLogConfig is baseConfig with a short kernel log hold, so that
// kernel-log-only errors are reported quickly.
func kernelLogConfig(mountpoint string) string {
	return strings.Replace(baseConfig(mountpoint), "[watch]\n", "[watch]\nkernel_log_hold = \"300ms\"\n", 1)
}

// fsIocShutdown is FS_IOC_SHUTDOWN (EXT4_IOC_SHUTDOWN), _IOR('X', 125,
// __u32), and fsShutdownNoLogFlush its flag that shuts a file system down
// without flushing its journal.
const (
	fsIocShutdown        = 0x8004587d
	fsShutdownNoLogFlush = 2
)

// watchAlso returns the configuration cfg watching path too.
func watchAlso(cfg, path string) string {
	return strings.Replace(cfg, "paths = [", "paths = ["+tomlString(path)+", ", 1)
}

// kernelLogBarrier shuts the ext4 file system marker down: ext4 logs "shut
// down requested" and (before Linux 7.0) sends no FAN_FS_ERROR for it, so
// the daemon reports it from the kernel log once it has held it for
// kernel_log_hold. The daemon reads the log in order and decides on the
// messages it holds oldest first, each in the same batch as or a batch
// before those logged after it: once the marker's event is in the
// history, every message logged before the marker has been decided on,
// and one that became an event of its own is in the history too.
// kernelLogBarrier waits for the marker's event and returns the history
// without the marker's events. On a kernel that reports the shutdown
// through FAN_FS_ERROR the marker says nothing about held messages, and
// the test skips.
func kernelLogBarrier(t *testing.T, state string, marker *loopfs.Image) []event {
	t.Helper()
	f, err := os.Open(marker.Mountpoint)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.IoctlSetPointerInt(int(f.Fd()), fsIocShutdown, fsShutdownNoLogFlush)
	f.Close()
	if err != nil {
		t.Fatalf("FS_IOC_SHUTDOWN of the marker file system at %s: %v", marker.Mountpoint, err)
	}
	var evs, marks []event
	eventually(t, func() string { return fmt.Sprintf("no event of the marker's shutdown (%s): %+v", marker.Dev, evs) }, func() bool {
		evs, marks = splitDevice(events(t, state), marker.Dev)
		return len(marks) > 0
	})
	if marks[0].Source != "kmsg" {
		testutil.Skip(t, testutil.KernelLacks, "this kernel reports the shutdown of ext4 through FAN_FS_ERROR (%+v): the marker that shows nothing more came from the kernel log is an error only the log reports", marks[0])
	}
	return evs
}

// splitDevice splits evs into the events not of device dev and those of it.
func splitDevice(evs []event, dev string) (others, of []event) {
	for _, e := range evs {
		if e.Device == dev {
			of = append(of, e)
		} else {
			others = append(others, e)
		}
	}
	return others, of
}

// TestKernelMessageInHistory: the kernel's message about an ext4 error is
// recorded with its fanotify event, and reaches the webhook; it is not
// reported again on its own.
func TestKernelMessageInHistory(t *testing.T) {
	im := newFS(t)
	marker := testutil.NewExt4(t, 0)
	wh := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, watchAlso(kernelLogConfig(im.Mountpoint), marker.Mountpoint)+"\n[[webhook]]\nurl = "+tomlString(wh.URL())+"\n", 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	d.waitLog("reading the kernel log", 1)
	trigger(t, im, "e2e kernel message")
	evs := waitErrors(t, state, 1)
	want := "EXT4-fs error (device " + filepath.Base(im.Dev) + "): trigger_test_error:"
	if len(evs) != 1 || evs[0].Source != "fanotify" || !strings.HasPrefix(evs[0].KernelMessage, want) ||
		!strings.HasSuffix(evs[0].KernelMessage, "e2e kernel message") {
		t.Fatalf("history: %+v, want one fanotify event with kernel_message %q...", evs, want)
	}
	reqs := wh.waitAccepted(t, 1)
	var body struct {
		Event struct {
			KernelMessage string `json:"kernel_message"`
		} `json:"event"`
	}
	if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body.Event.KernelMessage != evs[0].KernelMessage {
		t.Errorf("webhook event kernel_message %q (%v), want %q", body.Event.KernelMessage, err, evs[0].KernelMessage)
	}
	// Nothing more may come once the message's hold is over.
	if evs := kernelLogBarrier(t, state, marker); len(evs) != 1 {
		t.Errorf("history has %d events, want 1: %+v", len(evs), evs)
	}
	d.stop()
}

// TestXFSShutdownThroughKernelLog: XFS sends no FAN_FS_ERROR before Linux
// 7.0; its shutdown is recorded and alerted from the kernel log, once.
func TestXFSShutdownThroughKernelLog(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	marker := testutil.NewExt4(t, 0)
	wh := newReceiver(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, watchAlso(kernelLogConfig(im.Mountpoint), marker.Mountpoint)+"\n[[webhook]]\nurl = "+tomlString(wh.URL())+"\n", 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	d.waitLog("reading the kernel log", 1)
	tool(t, "xfs_io", "-x", "-c", "shutdown", im.Mountpoint)
	evs := waitErrors(t, state, 1)
	e := evs[0]
	if e.FSType != "xfs" || e.Device != im.Dev || e.Kind != "error" || e.KernelMessage == "" {
		t.Errorf("event: %+v", e)
	}
	switch e.Source {
	case "kmsg":
		if e.Error != "ESHUTDOWN" || !strings.HasPrefix(e.KernelMessage, "XFS ("+filepath.Base(im.Dev)+"): ") {
			t.Errorf("kernel-log event: %+v", e)
		}
	case "fanotify":
		t.Logf("this kernel reports XFS shutdowns through FAN_FS_ERROR: %+v", e)
	default:
		t.Errorf("source %q", e.Source)
	}
	wh.waitAccepted(t, 1)
	if evs := kernelLogBarrier(t, state, marker); len(evs) != 1 {
		t.Errorf("the shutdown is %d events in the history, want 1: %+v", len(evs), evs)
	}
	st := getStatus(t, state)
	for _, f := range st.Filesystems {
		if f.Device == im.Dev && f.Health == "ok" {
			t.Errorf("status says the shut down file system is ok: %+v", f)
		}
	}
	d.stop()
}

// TestBtrfsCounterIncreases: btrfs counts a checksum failure in its device
// error counters; the daemon reports the increase, not again after a
// restart, and an increase while it was stopped once when it starts.
func TestBtrfsCounterIncreases(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im, victim := testutil.NewBtrfsWithCorruptFile(t)
	mp := im.Mountpoint
	marker := testutil.NewExt4(t, 0)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, watchAlso(kernelLogConfig(mp), marker.Mountpoint), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	d.waitLog("reading the kernel log", 1)
	readEIO(t, victim)
	// One failed read may count more than once (btrfs retries): each
	// increase is an event, and together they add up to the counter.
	before := counterEvents(t, waitSettled(t, state), 0)
	if !strings.HasPrefix(before[0].KernelMessage, "BTRFS ") {
		t.Errorf("the first increase has kernel_message %q, want btrfs's message", before[0].KernelMessage)
	}
	counted := before[len(before)-1].Btrfs.To
	d.stop()

	// The counters are read at start; an increase found then is reported
	// with the next kernel log records read, the marker's at the latest.
	d = startDaemon(t, cfg, state)
	d.waitLog("ready", 1)
	if evs := kernelLogBarrier(t, state, marker); len(evs) != len(before) {
		t.Errorf("after a restart the history has %d events, want still %d: %+v", len(evs), len(before), evs)
	}
	d.stop()

	// While the daemon is stopped, the corrupted file is read again: the
	// increase is reported once when it starts.
	readEIO(t, victim)
	d = startDaemon(t, cfg, state)
	evs, _ := splitDevice(waitSettled(t, state), marker.Dev)
	evs = counterEvents(t, evs, 0)
	later := evs[len(before):]
	if len(later) != 1 || later[0].Btrfs.From != counted || !strings.Contains(later[0].Message, "corruption errors") {
		t.Errorf("increase while stopped: %+v, want one event from %d", later, counted)
	}
	d.stop()
}

// waitSettled waits until the history in dir has events and has not
// changed for a second, and returns them.
func waitSettled(t *testing.T, dir string) []event {
	t.Helper()
	var last []event
	stable := 0
	eventually(t, func() string { return fmt.Sprintf("history did not settle: %+v", last) }, func() bool {
		evs := events(t, dir)
		if len(evs) > 0 && len(evs) == len(last) {
			stable++
		} else {
			stable = 0
		}
		last = evs
		if stable < 4 {
			time.Sleep(250 * time.Millisecond)
		}
		return stable >= 4
	})
	return last
}

// counterEvents checks that evs are btrfs corruption counter increases,
// oldest first, each from where the one before ended, starting at from.
func counterEvents(t *testing.T, evs []event, from uint64) []event {
	t.Helper()
	for _, e := range evs {
		if e.Btrfs == nil {
			t.Fatalf("history: %+v, want only btrfs counter increases", evs)
		}
	}
	slices.SortFunc(evs, func(a, b event) int { return cmp.Compare(a.Btrfs.From, b.Btrfs.From) })
	for _, e := range evs {
		if e.Source != "btrfs-counters" || e.FSType != "btrfs" || e.Error != "EBADMSG" || e.Btrfs == nil ||
			e.Btrfs.Counter != "corruption" || e.Btrfs.From != from || e.Btrfs.To <= from || e.ErrorCount != e.Btrfs.To-from {
			t.Fatalf("history: %+v, want btrfs corruption counter increases from %d (this one: %+v)", evs, from, e.Btrfs)
		}
		from = e.Btrfs.To
	}
	return evs
}

// readEIO reads path after dropping its cached pages, expecting EIO.
func readEIO(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	if _, err := f.Read(make([]byte, 4096)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading corrupted %s: %v, want EIO", path, err)
	}
}

// tool runs a program of the machine, failing the test if it fails.
func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	prog, err := loopfs.FindTool(name)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(prog, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// TestResolveByRequest: an XFS shutdown (reported from the kernel log
// before Linux 7.0) opens an incident that fshealth cannot see end; the
// admin's `fshealth resolve` marks the file system healthy and resolves its
// Alertmanager alert.
func TestResolveByRequest(t *testing.T) {
	testutil.CheckNoLeaks(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	im := testutil.NewImage(t, "xfs", 300<<20, "")
	am := startAlertmanager(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, kernelLogConfig(im.Mountpoint)+"\n[[alertmanager]]\nurls = ["+tomlString(am)+"]\n", 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	d.waitLog("reading the kernel log", 1)
	if _, stderr, code := run(t, "resolve", "--state-dir", state, "/nowhere"); code == 0 || !strings.Contains(stderr, "no file system known as /nowhere") {
		t.Errorf("resolve of an unknown file system: status %d, %q", code, stderr)
	}

	tool(t, "xfs_io", "-x", "-c", "shutdown", im.Mountpoint)
	waitErrors(t, state, 1)
	firing := func() bool { return amFiring(t, am, im.Dev) }
	eventually(t, func() string { return "no Alertmanager alert for " + im.Dev }, firing)
	health := func() string { return fsHealth(t, state, im.Dev) }
	if h := health(); h != "errors" {
		t.Errorf("health before resolving: %q", h)
	}

	out := mustRun(t, "resolve", "--state-dir", state, im.Mountpoint, "--note", "xfs_repair run")
	if !strings.Contains(out, "marked healthy; 1 open incident(s) resolved") {
		t.Errorf("fshealth resolve said %q", out)
	}
	if h := health(); h != "ok" {
		t.Errorf("health after resolving: %q", h)
	}
	eventually(t, func() string { return "the Alertmanager alert for " + im.Dev + " is still active" }, func() bool { return !firing() })
	d.waitLog("file system marked healthy on request", 1)
	if evs := events(t, state); len(evs) != 1 {
		t.Errorf("the history has %d events, want the shutdown's only: %+v", len(evs), evs)
	}
	d.stop()
}
