package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// startWatchdogDaemon runs `fshealth daemon` as systemd would with
// WatchdogSec=: NOTIFY_SOCKET names a datagram listener of the test and
// WATCHDOG_USEC the interval. It returns once READY=1 arrived.
func startWatchdogDaemon(t *testing.T, config, stateDir string, interval time.Duration) *daemon {
	t.Helper()
	return launchDaemon(t, []string{binary, "daemon", "--config", config, "--state-dir", stateDir, "--metrics-listen", ""}, stateDir, interval)
}

// launchDaemon runs argv, which runs `fshealth daemon` on stateDir (itself
// or under another program), with a notify socket and a watchdog of the
// given interval, and returns once READY=1 arrived. When the test ends the
// daemon (found by its pid file) and argv's process are killed if still
// running.
func launchDaemon(t *testing.T, argv []string, stateDir string, interval time.Duration) *daemon {
	t.Helper()
	sock, notes := notifySocket(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+sock, fmt.Sprintf("WATCHDOG_USEC=%d", interval.Microseconds()))
	d := spawnDaemon(t, &daemon{t: t, cmd: cmd, stateDir: stateDir, notes: notes}, true)
	if msg := d.nextNote(); !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", msg)
	}
	return d
}

// daemonPID returns the pid in the daemon's pid file, or 0.
func (d *daemon) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(d.stateDir, "fshealth.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// nextNote returns the next datagram the daemon sent its notify socket.
func (d *daemon) nextNote() string {
	d.t.Helper()
	select {
	case msg, ok := <-d.notes:
		if !ok {
			d.t.Fatal("the notify socket was closed")
		}
		return msg
	case <-d.exited:
		d.t.Fatalf("the daemon exited: %v\n%s", d.err, d.stderr.String())
	case <-time.After(wait):
		d.t.Fatalf("no notification within %v:\n%s", wait, d.stderr.String())
	}
	return ""
}

const notFed = "STATUS=NOT feeding the watchdog: "

// fsfreeze freezes (-f) or thaws (-u) the file system mounted at dir.
func fsfreeze(t *testing.T, op, dir string) error {
	tool, err := loopfs.FindTool("fsfreeze")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, op, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("fsfreeze %s %s: %v: %s", op, dir, err, out)
	}
	return nil
}

// TestWatchdogStopsWhenCommitIsStuck: a healthy idle daemon feeds systemd's
// watchdog (WATCHDOG=1 on a real notify socket). When its state file system
// is frozen (fsfreeze) and a real ext4 error comes, the history commit
// blocks in write(2) and the fanotify reader with it: WATCHDOG=1 stops and
// STATUS= names the reader and the database, tick after tick. Thawed, the
// daemon feeds the watchdog again and the error reaches the history and a
// webhook, once.
func TestWatchdogStopsWhenCommitIsStuck(t *testing.T) {
	testutil.RequireCommand(t, "fsfreeze", "util-linux")
	im := newFS(t)
	stateFS := testutil.NewExt4(t, 0)
	state := filepath.Join(stateFS.Mountpoint, "state")
	dir := t.TempDir()
	wh := newReceiver(t)
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint)+fmt.Sprintf(`
[[webhook]]
name = "hq"
url = %s
`, tomlString(wh.URL())), 0o600)
	d := startWatchdogDaemon(t, cfg, state, 2*time.Second)

	// Idle and healthy: fed at every tick.
	for i := 0; i < 3; i++ {
		if msg := d.nextNote(); msg != "WATCHDOG=1" {
			t.Fatalf("a healthy idle daemon sent %q, want WATCHDOG=1", msg)
		}
	}

	if err := fsfreeze(t, "-f", stateFS.Mountpoint); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := fsfreeze(t, "-u", stateFS.Mountpoint); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(thaw) // before the daemon is killed: it cannot die in write(2) on a frozen file system
	trigger(t, im, "e2e: watchdog")

	// Until the reader's probe goes unanswered for the grace period, the
	// watchdog may still be fed; after, never while frozen.
	for {
		msg := d.nextNote()
		if strings.HasPrefix(msg, notFed) {
			break
		}
		if msg != "WATCHDOG=1" {
			t.Fatalf("while the commit is stuck: %q", msg)
		}
	}
	// Three ticks at least, and until the database's probe (asked at a
	// tick after the commit began) has gone unanswered too.
	both := false
	for i := 0; i < 3 || !both && i < 8; i++ {
		msg := d.nextNote()
		if !strings.HasPrefix(msg, notFed) || strings.Contains(msg, "WATCHDOG=1") ||
			!strings.Contains(msg, "the fanotify reader has not answered for") ||
			!strings.Contains(msg, "handing a batch of events to the history commit") {
			t.Fatalf("tick %d with the commit stuck: sent %q, want only a STATUS= naming the reader in the commit", i, msg)
		}
		both = strings.Contains(msg, "the history database has not answered")
		t.Logf("tick %d: %s", i, msg)
	}
	if !both {
		t.Errorf("while the commit is stuck the database probe was never reported")
	}
	if !strings.Contains(d.stderr.String(), "NOT feeding the watchdog") {
		t.Errorf("the daemon did not log that it stopped feeding the watchdog")
	}

	thaw()
	for {
		msg := d.nextNote()
		if msg == "WATCHDOG=1\nSTATUS=" {
			break
		}
		if !strings.HasPrefix(msg, notFed) {
			t.Fatalf("after the thaw: %q, want STATUS= until WATCHDOG=1 with STATUS= cleared", msg)
		}
	}
	if msg := d.nextNote(); msg != "WATCHDOG=1" {
		t.Errorf("healthy again: sent %q, want WATCHDOG=1", msg)
	}
	d.waitLog("feeding the watchdog again", 1)
	if evs := waitErrors(t, state, 1); errorSum(evs) != 1 {
		t.Errorf("history has %d errors, want 1", errorSum(evs))
	}
	wh.waitAccepted(t, 1)
	d.stop()
	if n := len(wh.requests()); n != 1 {
		t.Errorf("the webhook got %d requests, want 1", n)
	}
}
