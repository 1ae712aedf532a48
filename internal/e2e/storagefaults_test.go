package e2e_test

import (
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// These tests break fshealth's own state directory for real — a full tmpfs,
// an ext4 the kernel remounts read-only after an error, a loop device whose
// backing XFS is shut down (EIO), garbage and truncated databases, a
// database of a newer schema, a SIGKILL during commits, a state directory a
// hostile user owns — while real ext4 errors happen on the watched file
// system, and check that every error reaches a real webhook receiver during
// the fault, that fshealth says it is degraded (status, metrics, one
// critical alert naming the path and the cause), and that after the fault
// the history has every event exactly once.

// stateAlertKind is the error_kind of the alerts about fshealth's own state.
const stateAlertKind = "FSHEALTH_STATE"

// faultDaemon is a daemon watching a scratch ext4, alerting one webhook.
type faultDaemon struct {
	t     *testing.T
	im    *loopfs.Image // the watched file system
	wh    *receiver
	state string
	d     *daemon
	cfg   string
	// triggered counts the errors made on im.
	triggered int
}

// startFaultDaemon starts a daemon with its state in state, watching a new
// scratch ext4 (im, if nil) and alerting a webhook; extra is added to the
// configuration.
func startFaultDaemon(t *testing.T, im *loopfs.Image, state, extra string) *faultDaemon {
	t.Helper()
	return startFaultDaemonTo(t, im, nil, state, extra)
}

// startFaultDaemonTo is startFaultDaemon alerting wh (a new receiver if
// nil).
func startFaultDaemonTo(t *testing.T, im *loopfs.Image, wh *receiver, state, extra string) *faultDaemon {
	t.Helper()
	if im == nil {
		im = newFS(t)
	}
	if wh == nil {
		wh = newReceiver(t)
	}
	if os.Getenv("RUNTIME_DIRECTORY") == "" {
		// Where the daemon tells `fshealth status` it is degraded: the
		// test's own, not the host's /run/fshealth.
		t.Setenv("RUNTIME_DIRECTORY", t.TempDir())
	}
	f := &faultDaemon{t: t, im: im, wh: wh, state: state}
	f.cfg = filepath.Join(t.TempDir(), "fshealth.toml")
	writeFile(t, f.cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s
`, tomlString(f.wh.URL()+"/alerts"))+extra, 0o600)
	f.d = startDaemon(t, f.cfg, state)
	return f
}

// errorAlerts returns the webhook's accepted alerts about EUCLEAN errors of
// the watched file system, by event id; it fails on an alert id seen
// twice.
func (f *faultDaemon) errorAlerts() map[string]alertBody {
	f.t.Helper()
	out := map[string]alertBody{}
	seen := map[string]bool{}
	for _, a := range f.wh.accepted(f.t) {
		if seen[a.ID] {
			f.t.Errorf("alert %s delivered twice", a.ID)
		}
		seen[a.ID] = true
		if a.ErrorKind == "EUCLEAN" && a.Type == "error" && a.Event != nil {
			out[a.Event.ID] = a
		}
	}
	return out
}

// trigger makes one error on the watched file system and waits until the
// webhook has its alert.
func (f *faultDaemon) trigger(msg string) {
	f.t.Helper()
	trigger(f.t, f.im, msg)
	f.triggered++
	eventually(f.t, func() string {
		return fmt.Sprintf("the webhook has %d error alerts, want %d; daemon log:\n%s", len(f.errorAlerts()), f.triggered, f.d.stderr.String())
	}, func() bool { return len(f.errorAlerts()) >= f.triggered })
}

// stateAlerts returns the webhook's accepted alerts about fshealth's state.
func (f *faultDaemon) stateAlerts() []alertBody {
	var out []alertBody
	for _, a := range f.wh.accepted(f.t) {
		if a.ErrorKind == stateAlertKind {
			out = append(out, a)
		}
	}
	return out
}

// waitStateAlert waits for the critical alert about the state and checks
// that it names the path and the cause (each of causes).
func (f *faultDaemon) waitStateAlert(causes ...string) alertBody {
	f.t.Helper()
	eventually(f.t, func() string {
		return fmt.Sprintf("no alert about fshealth's state; got %+v\n%s", f.wh.accepted(f.t), f.d.stderr.String())
	}, func() bool { return len(f.stateAlerts()) > 0 })
	a := f.stateAlerts()[0]
	if a.Type != "error" || a.Severity != "critical" || !strings.Contains(a.Summary, f.state) {
		f.t.Errorf("state alert %+v, want a critical error naming %s", a, f.state)
	}
	for _, c := range causes {
		if !strings.Contains(a.Summary, c) {
			f.t.Errorf("state alert %q does not say %q", a.Summary, c)
		}
	}
	return a
}

// statusText returns `fshealth status` (whatever its exit status).
func (f *faultDaemon) statusText() string {
	out, errOut, _ := run(f.t, "status", "--state-dir", f.state)
	return out + errOut
}

// degradedMetric reports whether the daemon's metrics say it is degraded.
func (f *faultDaemon) degradedMetric() bool {
	f.t.Helper()
	resp, err := http.Get("http://" + f.d.metrics + "/metrics")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "fshealth_history_degraded{") && strings.HasSuffix(l, " 1") {
			return true
		}
	}
	return false
}

// checkDegraded checks that status and the metrics say the history is not
// recorded.
func (f *faultDaemon) checkDegraded() {
	f.t.Helper()
	if s := f.statusText(); !strings.Contains(s, "degraded: history not recorded since") {
		f.t.Errorf("status does not say it is degraded:\n%s", s)
	}
	if !f.degradedMetric() {
		f.t.Error("the metrics do not say the history is degraded")
	}
}

// waitRecovered waits until the daemon records its history again: status
// no longer says degraded, and the resolved alert about the state arrived.
func (f *faultDaemon) waitRecovered() {
	f.t.Helper()
	var s string
	eventually(f.t, func() string { return "still degraded:\n" + s + "\n" + f.d.stderr.String() }, func() bool {
		s = f.statusText()
		if strings.Contains(s, "degraded") || !strings.Contains(s, "daemon: running") {
			return false
		}
		for _, a := range f.stateAlerts() {
			if a.Type == "resolved" {
				return true
			}
		}
		return false
	})
	if f.degradedMetric() {
		f.t.Error("recovered, but the metrics still say degraded")
	}
}

// checkHistory checks that the history has exactly one event per error
// made, each the event of an alert the webhook got, and no alert left
// pending.
func (f *faultDaemon) checkHistory() {
	f.t.Helper()
	evs := waitErrors(f.t, f.state, uint64(f.triggered))
	alerts := f.errorAlerts()
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			f.t.Errorf("event %s is in the history twice", e.ID)
		}
		ids[e.ID] = true
		if _, ok := alerts[e.ID]; !ok {
			f.t.Errorf("history event %+v has no webhook alert", e)
		}
	}
	if n := errorSum(evs); n != uint64(f.triggered) || len(evs) != f.triggered {
		f.t.Errorf("history has %d events, %d errors; want %d of each: %+v", len(evs), n, f.triggered, evs)
	}
	for id := range alerts {
		if !ids[id] {
			f.t.Errorf("the webhook got an alert for event %s, which the history lacks", id)
		}
	}
	eventually(f.t, func() string { return fmt.Sprintf("deliveries pending: %+v", getStatus(f.t, f.state).Deliveries) }, func() bool {
		st := getStatus(f.t, f.state)
		return st.channelBacklog("hq").Pending == 0 && st.channelBacklog("journal").Pending == 0
	})
}

// runFault runs the common scenario: one error recorded normally, the
// fault, errors during it reaching the webhook, fshealth saying it is
// degraded, the repair, the history after recovery.
func runFault(t *testing.T, f *faultDaemon, breakIt, fix func(), causes ...string) {
	t.Helper()
	f.trigger("e2e: before the fault")
	waitErrors(t, f.state, 1)
	breakIt()
	for i := 1; i <= 3; i++ {
		f.trigger(fmt.Sprint("e2e: during the fault ", i))
	}
	f.waitStateAlert(causes...)
	f.checkDegraded()
	fix()
	f.waitRecovered()
	f.trigger("e2e: after the fault")
	f.checkHistory()
	if n := len(f.stateAlerts()); n != 2 {
		t.Errorf("%d alerts about the state, want 2 (degraded, resolved): %+v", n, f.stateAlerts())
	}
	f.d.stop()
}

// mountTmpfs mounts a tmpfs of size at a new directory, unmounted when the
// test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	testutil.RequireRoot(t)
	mp := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(mp, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mp, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mp, 0); err != nil {
			t.Errorf("unmounting %s: %v", mp, err)
		}
	})
	return mp
}

// fillUp writes a file in dir until the file system is full and returns
// its path.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// TestStateFilesystemFull: the tmpfs the state directory is on fills up;
// errors still reach the webhook, and once space is freed the history has
// them all, once.
func TestStateFilesystemFull(t *testing.T) {
	im := newFS(t) // first: its leak check runs last
	tmp := mountTmpfs(t, "4m")
	state := filepath.Join(tmp, "state")
	f := startFaultDaemon(t, im, state, "")
	var filler string
	runFault(t, f, func() { filler = fillUp(t, tmp) }, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}, "file system full")
}

// TestStateFilesystemRemountedReadOnly: the ext4 the state directory is on
// has an error and, mounted errors=remount-ro, the kernel makes it
// read-only; the alert says so. Remounted read-write, the history is
// recorded again.
func TestStateFilesystemRemountedReadOnly(t *testing.T) {
	im := newFS(t)
	sfs := testutil.NewImage(t, "ext4", 32<<20, "errors=remount-ro")
	state := filepath.Join(sfs.Mountpoint, "state")
	f := startFaultDaemon(t, im, state, "")
	runFault(t, f, func() {
		if err := sfs.TriggerError("e2e: the state file system fails"); err != nil {
			t.Fatal(err)
		}
	}, func() {
		// ext4 aborted its journal: it comes back only unmounted,
		// checked and mounted again, which fshealth, holding nothing
		// open there while degraded, does not prevent.
		mp := sfs.Mountpoint
		remountChecked(t, sfs, f.d, mp, "errors=remount-ro")
	}, "read-only", "the state directory's file system (ext4 "+sfs.Dev)
}

// TestRemountStateFilesystemReadOnly: a remount-ro rule for the file
// system that holds the state directory works — fshealth lets go of its
// database first instead of failing with EBUSY — and fshealth keeps
// watching it read-only, and records the history again once it is
// remounted read-write.
func TestRemountStateFilesystemReadOnly(t *testing.T) {
	im := newFS(t)
	state := filepath.Join(im.Mountpoint, "state")
	f := startFaultDaemon(t, im, state, `
[[rule]]
name = "protect"
actions = ["remount-ro"]
`)
	f.trigger("e2e: remount me")
	var sfs syscall.Statfs_t
	eventually(t, func() string { return "not remounted read-only:\n" + f.d.stderr.String() }, func() bool {
		return syscall.Statfs(im.Mountpoint, &sfs) == nil && sfs.Flags&0x1 != 0 // ST_RDONLY
	})
	f.waitStateAlert("released")
	f.checkDegraded()
	for i := 1; i <= 2; i++ {
		f.trigger(fmt.Sprint("e2e: while read-only ", i))
	}
	if out, err := exec.Command("mount", "-o", "remount,rw", im.Mountpoint).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-write: %v\n%s", err, out)
	}
	f.waitRecovered()
	f.checkHistory()
	out := f.statusText()
	if !strings.Contains(out, "remount-ro: remounted") {
		t.Errorf("status does not show the remount:\n%s", out)
	}
	f.d.stop()
}

// TestStateDeviceIOError: the state directory is on an ext4 on a loop
// device whose backing file is on an XFS that is then shut down, so every
// write to the state device fails with EIO. Errors still reach the
// webhook; once the XFS and the state file system are mounted again, the
// history has them all.
func TestStateDeviceIOError(t *testing.T) {
	im := newFS(t)
	testutil.RequireCommand(t, "xfs_io", "xfsprogs")
	host := testutil.NewImage(t, "xfs", 320<<20, "")
	sfs, err := loopfs.Create(host.Mountpoint, "ext4", 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	smp := filepath.Join(t.TempDir(), "statefs")
	if err := sfs.Mount(smp, "errors=continue"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sfs.Mounted() {
			if err := sfs.Unmount(); err != nil {
				t.Errorf("unmounting the state file system: %v", err)
			}
		}
	})
	state := filepath.Join(smp, "state")
	f := startFaultDaemon(t, im, state, "")
	hostMP := host.Mountpoint
	runFault(t, f, func() {
		if out, err := exec.Command("xfs_io", "-x", "-c", "shutdown", hostMP).CombinedOutput(); err != nil {
			t.Fatalf("shutting the XFS down: %v\n%s", err, out)
		}
	}, func() {
		// Take both down (fshealth holds nothing open there while
		// degraded) and bring them up again where they were.
		unmountEventually(t, sfs, f.d)
		if err := host.Unmount(); err != nil {
			t.Fatal(err)
		}
		if err := host.Mount(hostMP, ""); err != nil {
			t.Fatal(err)
		}
		remountChecked(t, sfs, f.d, smp, "errors=continue")
	}, "I/O error")
}

// unmountEventually unmounts im, retrying while the daemon's retries of
// its database keep it busy for a moment. It never unmounts lazily: a
// daemon that keeps files open there (it recorded its history on a file
// system being repaired) fails the test here, instead of leaving the old
// file system alive under a new mount.
func unmountEventually(t *testing.T, im *loopfs.Image, d *daemon) {
	t.Helper()
	var err error
	eventually(t, func() string {
		return fmt.Sprintf("unmounting %s: %v; daemon log:\n%s", im.Mountpoint, err, d.stderr.String())
	}, func() bool {
		err = syscall.Unmount(im.Mountpoint, 0)
		return err == nil || !errors.Is(err, syscall.EBUSY)
	})
	if err != nil {
		t.Fatalf("unmounting %s: %v", im.Mountpoint, err)
	}
	// Unmounted: this only waits for the loop device to go.
	if err := im.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// remountChecked unmounts im if mounted, checks it with e2fsck and mounts
// it at mp again with options.
func remountChecked(t *testing.T, im *loopfs.Image, d *daemon, mp, options string) {
	t.Helper()
	if im.Mounted() {
		unmountEventually(t, im, d)
	}
	if out, err := exec.Command("e2fsck", "-fy", im.File).CombinedOutput(); err != nil && !isFsckFixed(err) {
		t.Fatalf("e2fsck of %s: %v\n%s", im.File, err, out)
	}
	if err := im.Mount(mp, options); err != nil {
		t.Fatal(err)
	}
}

// isFsckFixed reports whether e2fsck's exit status says it fixed errors.
func isFsckFixed(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() <= 2
}

// TestGarbageDatabase: a history database overwritten with garbage is moved
// aside (kept) and a new one started; status says so.
func TestGarbageDatabase(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	garbage := []byte(strings.Repeat("this is not a database\n", 4000))
	writeFile(t, filepath.Join(state, "fshealth.db"), string(garbage), 0o600)
	f := startFaultDaemon(t, nil, state, "")
	f.trigger("e2e: after the garbage")
	f.checkHistory()
	checkMovedAside(t, f, garbage)
	f.d.stop()
}

// checkMovedAside checks that status names the database moved aside and
// that it holds what was there.
func checkMovedAside(t *testing.T, f *faultDaemon, content []byte) {
	t.Helper()
	aside, _ := filepath.Glob(filepath.Join(f.state, "fshealth.db.corrupt-*"))
	aside = slices.DeleteFunc(aside, func(p string) bool { return strings.HasSuffix(p, "-wal") })
	if len(aside) != 1 {
		t.Fatalf("moved aside: %v, want one database", aside)
	}
	if b, err := os.ReadFile(aside[0]); err != nil || string(b) != string(content) {
		t.Errorf("the database moved aside does not hold what was there (%v)", err)
	}
	if s := f.statusText(); !strings.Contains(s, "moved aside to "+aside[0]) {
		t.Errorf("status does not say the database was moved aside:\n%s", s)
	}
}

// TestTruncatedDatabase: a history database cut short is found damaged
// when the daemon starts, moved aside, and a new one started.
func TestTruncatedDatabase(t *testing.T) {
	im := newFS(t)
	state := filepath.Join(t.TempDir(), "state")
	f := startFaultDaemon(t, im, state, "")
	for i := 0; i < 20; i++ {
		trigger(t, im, fmt.Sprint("e2e: fill the history ", i))
	}
	waitErrors(t, state, 20)
	f.d.stop()
	db := filepath.Join(state, "fshealth.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	cut, _ := os.ReadFile(db)
	// The errors made while it was stopped are reported again by the
	// daemon (ext4 counts them); so is one more.
	g := startFaultDaemon(t, im, state, "")
	g.trigger("e2e: after the truncation")
	checkMovedAside(t, g, cut)
	eventually(t, func() string { return "the new history lacks the errors" }, func() bool { return errorSum(events(t, state)) >= 21 })
	g.d.stop()
}

// TestNewerSchemaDatabase: a database of a newer fshealth is never
// modified; the daemon runs degraded and says which version it needs.
func TestNewerSchemaDatabase(t *testing.T) {
	im := newFS(t)
	state := filepath.Join(t.TempDir(), "state")
	f := startFaultDaemon(t, im, state, "")
	f.d.stop()
	db := filepath.Join(state, "fshealth.db")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(`UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sum := func() [32]byte {
		b, err := os.ReadFile(db)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	before := sum()
	g := startFaultDaemon(t, im, state, "")
	g.trigger("e2e: newer schema")
	g.waitStateAlert("newer fshealth", "supports version")
	g.checkDegraded()
	if s := g.statusText(); !strings.Contains(s, "schema version 999") {
		t.Errorf("status does not name the schema version:\n%s", s)
	}
	g.d.stop()
	if sum() != before {
		t.Error("the database of the newer schema was modified")
	}
}

// TestSIGKILLDuringCommits: the daemon is killed while it commits a stream
// of errors; restarted, its history has every error ext4 counted, each
// once, and every event of the history reached the webhook (at least once:
// one delivered but not yet recorded as such when the daemon died is
// delivered again, with the same alert id).
func TestSIGKILLDuringCommits(t *testing.T) {
	im := newFS(t)
	state := filepath.Join(t.TempDir(), "state")
	f := startFaultDaemon(t, im, state, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if im.TriggerError(fmt.Sprint("e2e: stream ", i)) != nil {
				return
			}
		}
	}()
	waitErrors(t, state, 20)
	f.d.kill()
	<-done
	g := startFaultDaemonTo(t, im, f.wh, state, "")
	n, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	evs := waitErrors(t, state, uint64(n))
	if errorSum(evs) != uint64(n) {
		t.Errorf("history has %d errors, ext4 counted %d", errorSum(evs), n)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Errorf("event %s twice", e.ID)
		}
		ids[e.ID] = true
	}
	alerted := map[string]bool{}
	eventually(t, func() string { return fmt.Sprintf("%d of %d events have reached the webhook", len(alerted), len(ids)) }, func() bool {
		for _, a := range f.wh.accepted(t) {
			if a.Event != nil {
				alerted[a.Event.ID] = true
			}
		}
		for id := range ids {
			if !alerted[id] {
				return false
			}
		}
		return true
	})
	g.d.stop()
}

// TestUntrustedStateDirectory: a state directory a hostile user owns, or
// one whose pid file is a symbolic link, is refused — nothing in it is
// opened, a root file the pid file points to is not truncated — and the
// daemon watches and alerts anyway, degraded, saying why.
func TestUntrustedStateDirectory(t *testing.T) {
	for _, tc := range []struct {
		name  string
		owner int
		mode  os.FileMode
		cause string
	}{
		{"nobody's", 65534, 0o755, "owned by uid 65534"},
		{"group-writable", 0, 0o770, "writable by group or others"},
		{"root's with a symlinked pid file", 0, 0o700, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			if err := os.Chmod(base, 0o755); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(base, "victim")
			writeFile(t, victim, "precious root data\n", 0o644)
			state := filepath.Join(base, "state")
			if err := os.Mkdir(state, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(state, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, filepath.Join(state, "fshealth.pid")); err != nil {
				t.Fatal(err)
			}
			if err := os.Lchown(filepath.Join(state, "fshealth.pid"), tc.owner, tc.owner); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(state, tc.owner, tc.owner); err != nil {
				t.Fatal(err)
			}
			f := startFaultDaemon(t, nil, state, "")
			f.trigger("e2e: untrusted state")
			f.waitStateAlert(tc.cause)
			f.checkDegraded()
			f.d.stop()
			if b, err := os.ReadFile(victim); err != nil || string(b) != "precious root data\n" {
				t.Errorf("the file the pid file links to was changed: %q %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(state, "fshealth.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a database was created in the refused state directory (%v)", err)
			}
		})
	}
}

// TestStateReadOnlyAtStart: the daemon starts on a state directory whose
// file system is already read-only (as after errors=remount-ro of the root
// file system): it becomes ready and alerts; what the history recorded
// before is not reported again; remounted read-write, the history has every
// error once.
func TestStateReadOnlyAtStart(t *testing.T) {
	im := newFS(t)
	sfs := testutil.NewImage(t, "ext4", 32<<20, "errors=continue")
	state := filepath.Join(sfs.Mountpoint, "state")
	f := startFaultDaemon(t, im, state, "")
	f.trigger("e2e: before the restart")
	waitErrors(t, state, 1)
	f.d.stop()
	if out, err := exec.Command("mount", "-o", "remount,ro", sfs.Mountpoint).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-only: %v\n%s", err, out)
	}
	g := startFaultDaemon(t, im, state, "")
	g.waitStateAlert("read-only")
	g.checkDegraded()
	for i := 1; i <= 2; i++ {
		g.trigger(fmt.Sprint("e2e: read-only at start ", i))
	}
	if out, err := exec.Command("mount", "-o", "remount,rw", sfs.Mountpoint).CombinedOutput(); err != nil {
		t.Fatalf("remounting read-write: %v\n%s", err, out)
	}
	g.waitRecovered()
	// The first error's alert went to the first daemon's receiver.
	evs := waitErrors(t, state, 3)
	if n := errorSum(evs); n != 3 || len(evs) != 3 {
		t.Errorf("history has %d events with %d errors, want 3 of each (nothing reported twice): %+v", len(evs), n, evs)
	}
	if n := len(g.errorAlerts()); n != 2 {
		t.Errorf("the webhook got %d error alerts, want 2", n)
	}
	g.d.stop()
}

// TestStateAlertInAlertmanager: the alert about fshealth's own state fires
// in a real Alertmanager while the history is degraded (here: a state
// directory others may write to, refused) and is resolved there once the
// directory is fixed and the history recorded again.
func TestStateAlertInAlertmanager(t *testing.T) {
	im := newFS(t)
	am := startAlertmanager(t)
	base := t.TempDir()
	state := filepath.Join(base, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	f := startFaultDaemon(t, im, state, fmt.Sprintf(`
[[alertmanager]]
name = "am"
urls = [%s]
resend_interval = "1m"
`, tomlString(am)))
	f.waitStateAlert("writable by group or others")
	firing := func() bool {
		for _, a := range amAlerts(t, am) {
			if a.Labels["errno"] == stateAlertKind && a.Labels["severity"] == "critical" {
				return true
			}
		}
		return false
	}
	eventually(t, func() string { return fmt.Sprintf("no state alert in Alertmanager: %+v", amAlerts(t, am)) }, firing)
	f.trigger("e2e: while refused")
	if err := os.Chmod(state, 0o700); err != nil {
		t.Fatal(err)
	}
	f.waitRecovered()
	eventually(t, func() string { return fmt.Sprintf("the state alert still fires in Alertmanager: %+v", amAlerts(t, am)) },
		func() bool { return !firing() })
	f.checkHistory()
	f.d.stop()
}

// TestMemoryOutboxRetries: while the history is in memory, a receiver that
// refuses alerts gets them again, with the same id, until it accepts them —
// the in-memory outbox keeps the retry rules.
func TestMemoryOutboxRetries(t *testing.T) {
	im := newFS(t)
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o777); err != nil { // refused: degraded from the start
		t.Fatal(err)
	}
	wh := newReceiver(t)
	wh.status.Store(http.StatusServiceUnavailable)
	f := startFaultDaemonTo(t, im, wh, state, "")
	trigger(t, im, "e2e: refused at first")
	// refused counts the refused attempts of each alert, by kind and id:
	// the error's, and the one about the state, whichever the channel
	// (which delivers in order) has first.
	refused := func() map[string]map[string]int {
		n := map[string]map[string]int{"EUCLEAN": {}, stateAlertKind: {}}
		for _, q := range wh.requests() {
			var a alertBody
			if json.Unmarshal(q.Body, &a) == nil && n[a.ErrorKind] != nil && q.Status == http.StatusServiceUnavailable {
				n[a.ErrorKind][a.ID]++
			}
		}
		return n
	}
	eventually(t, func() string { return fmt.Sprintf("refused attempts: %v", refused()) }, func() bool {
		for _, ids := range refused() {
			for _, c := range ids {
				if c >= 3 {
					return true
				}
			}
		}
		return false
	})
	for kind, ids := range refused() {
		if len(ids) > 1 {
			t.Errorf("refused attempts for %d %s alerts, want one (retried under its id)", len(ids), kind)
		}
	}
	wh.status.Store(http.StatusOK)
	f.triggered = 1
	eventually(t, func() string { return "the alert was never accepted" }, func() bool { return len(f.errorAlerts()) == 1 })
	var missing []string
	eventually(t, func() string {
		return fmt.Sprintf("alerts %v were refused, and then not accepted under the same id: %+v", missing, f.wh.accepted(t))
	}, func() bool {
		accepted := f.wh.accepted(t)
		missing = nil
		for _, ids := range refused() {
			for id := range ids {
				if !slices.ContainsFunc(accepted, func(a alertBody) bool { return a.ID == id }) {
					missing = append(missing, id)
				}
			}
		}
		return len(missing) == 0
	})
	f.checkDegraded()
	f.d.stop()
}
