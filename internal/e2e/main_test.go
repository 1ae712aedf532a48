// Package e2e_test holds privileged end-to-end tests of `fshealth daemon`:
// they run the real fshealth binary against real ext4 file systems on loop
// devices and real (or in-process) receivers, and check what arrives.
//
// Each test watches only its own scratch file system (`[watch] paths`), keeps
// its state in t.TempDir() and serves metrics on a free loopback port, so the
// host's file systems and services are never involved. Daemons are started
// with Pdeathsig and killed when their test ends; loop devices and mounts go
// with the test (testutil.NewExt4, CheckNoLeaks) and with the mount namespace
// TestMain runs the tests in.
package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// binary is the fshealth executable under test.
var binary string

// wait is the generous deadline of every wait in these tests: they only
// ever wait for something to happen, never assert how fast it happens.
const wait = 30 * time.Second

// TestMain builds the binary once (or uses $FSHEALTH_BINARY) and runs the
// tests in a private mount namespace.
func TestMain(m *testing.M) {
	testutil.MainInMountNamespace(m, func() (func(), error) {
		if b := os.Getenv("FSHEALTH_BINARY"); b != "" {
			binary = b
			return nil, nil
		}
		dir, err := os.MkdirTemp("", "fshealth-e2e-test-")
		if err != nil {
			return nil, err
		}
		binary = filepath.Join(dir, "fshealth")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/fshealth/fshealth/cmd/fshealth").CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("building fshealth: %v\n%s", err, out)
		}
		return func() { os.RemoveAll(dir) }, nil
	})
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer = testutil.SyncBuffer

// eventually calls cond until it returns true, failing the test with what()
// after the deadline.
func eventually(t *testing.T, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", wait, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run runs fshealth with args and returns its output and exit status.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fshealth %s did not finish within %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), wait, &o, &e)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// mustRun runs fshealth and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, args...)
	if code != 0 {
		t.Fatalf("fshealth %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// runStatus runs `fshealth status` with args and returns its output and
// exit status, failing the test unless the status is one status documents
// for a status it could read: 0 (all healthy, daemon running), 1 (a file
// system unhealthy, or the history not recorded), 3 (daemon not running).
func runStatus(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, errOut, code := run(t, append([]string{"status"}, args...)...)
	if code != 0 && code != 1 && code != 3 {
		t.Fatalf("fshealth status %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, code
}

// statusOut is runStatus's output.
func statusOut(t *testing.T, args ...string) string {
	t.Helper()
	out, _ := runStatus(t, args...)
	return out
}

// cleanEnv is the environment fshealth runs with: ours without anything
// that would make it talk to a service manager or journal of the host.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM", "INVOCATION_ID", "LISTEN_FDS", "LISTEN_PID":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// notifySocket listens on a unixgram socket like systemd's and returns its
// path and the datagrams it receives.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// daemon is a running `fshealth daemon`.
type daemon struct {
	t        *testing.T
	cmd      *exec.Cmd
	stateDir string
	stderr   *syncBuffer
	exited   chan struct{}
	err      error // valid once exited is closed
	// metrics is the address metrics are served on ("" if off).
	metrics string
	// notes are the datagrams the daemon sends to its notify socket after
	// READY=1.
	notes <-chan string
}

// startDaemon runs `fshealth daemon --config config --state-dir stateDir
// --metrics-listen 127.0.0.1:PORT extra...` on a free PORT and waits until
// it has told its notify socket READY=1. It is killed when the test ends if
// still running. (The port is free when chosen; should another process take
// it first, the daemon is started again on another one.)
func startDaemon(t *testing.T, config, stateDir string, extra ...string) *daemon {
	t.Helper()
	return startDaemonWith(t, nil, config, stateDir, extra...)
}

// startDaemonWith is startDaemon, calling starting (if not nil) as soon as
// the process has started, before waiting for READY=1.
func startDaemonWith(t *testing.T, starting func(*daemon), config, stateDir string, extra ...string) *daemon {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d, err := tryStartDaemon(t, starting, config, stateDir, extra...)
		if err == nil {
			return d
		}
		if attempt == 3 || !strings.Contains(d.stderr.String(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("starting the daemon: %v; trying another port", err)
	}
}

func tryStartDaemon(t *testing.T, starting func(*daemon), config, stateDir string, extra ...string) (*daemon, error) {
	t.Helper()
	sock, notes := notifySocket(t)
	metrics := freeAddr(t)
	args := append([]string{"daemon", "--config", config, "--state-dir", stateDir, "--metrics-listen", metrics}, extra...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), "NOTIFY_SOCKET="+sock)
	d := spawnDaemon(t, &daemon{t: t, cmd: cmd, stateDir: stateDir, notes: notes, metrics: metrics}, false)
	if starting != nil {
		starting(d)
	}
	timeout := time.After(wait)
	for {
		select {
		case msg, ok := <-notes:
			if !ok {
				return d, errors.New("notify socket closed")
			}
			if strings.Contains(msg, "READY=1") {
				return d, nil
			}
		case <-d.exited:
			return d, fmt.Errorf("the daemon exited before READY=1: %v\n%s", d.err, d.stderr.String())
		case <-timeout:
			cmd.Process.Kill()
			return d, fmt.Errorf("no READY=1 within %v:\n%s", wait, d.stderr.String())
		}
	}
}

// spawnDaemon starts d.cmd, its output in d.stderr, dying with the test
// binary, and sets d.err and closes d.exited when it exits. When the test
// ends it is killed if still running (first the daemon in its pid file if
// viaPIDFile: d.cmd may run it under another program), and its log shown
// if the test failed.
func spawnDaemon(t *testing.T, d *daemon, viaPIDFile bool) *daemon {
	t.Helper()
	cmd := d.cmd
	d.stderr, d.exited = &syncBuffer{}, make(chan struct{})
	cmd.Stdout, cmd.Stderr = d.stderr, d.stderr
	// Die with the test binary, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			if viaPIDFile {
				if pid := d.daemonPID(); pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("daemon (pid %d) log:\n%s", cmd.Process.Pid, d.stderr.String())
		}
	})
	return d
}

// freeAddr returns a loopback address nothing listens on (now).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// pid is the daemon's process id.
func (d *daemon) pid() int { return d.cmd.Process.Pid }

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatalf("sending %v to the daemon: %v", sig, err)
	}
}

// waitExit waits for the daemon to exit and returns how it ended.
func (d *daemon) waitExit() error {
	d.t.Helper()
	select {
	case <-d.exited:
		return d.err
	case <-time.After(wait):
		d.t.Fatalf("the daemon did not exit within %v:\n%s", wait, d.stderr.String())
	}
	return nil
}

// stop sends SIGTERM and requires exit status 0.
func (d *daemon) stop() {
	d.t.Helper()
	d.signal(syscall.SIGTERM)
	if err := d.waitExit(); err != nil {
		d.t.Errorf("after SIGTERM the daemon exited with %v, want status 0:\n%s", err, d.stderr.String())
	}
}

// kill sends SIGKILL and waits for the daemon to die.
func (d *daemon) kill() {
	d.t.Helper()
	d.signal(syscall.SIGKILL)
	err := d.waitExit()
	if ws, ok := d.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		d.t.Fatalf("the daemon ended with %v, want killed by SIGKILL", err)
	}
}

// waitLog waits until the daemon's log contains s at least n times.
func (d *daemon) waitLog(s string, n int) {
	d.t.Helper()
	eventually(d.t, func() string {
		return fmt.Sprintf("the daemon's log has %q %d times, want %d:\n%s", s, strings.Count(d.stderr.String(), s), n, d.stderr.String())
	}, func() bool { return strings.Count(d.stderr.String(), s) >= n })
}

// event is the part of a history event these tests look at.
type event struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Time        string   `json:"time"`
	Errno       int      `json:"errno"`
	Error       string   `json:"error"`
	ErrorCount  uint64   `json:"error_count"`
	Device      string   `json:"device"`
	FSType      string   `json:"fstype"`
	UUID        string   `json:"uuid"`
	Mountpoints []string `json:"mountpoints"`
	Inode       *uint64  `json:"inode"`
	Path        string   `json:"path"`
	PathPending bool     `json:"path_pending"`
	PathError   string   `json:"path_error"`
	Message     string   `json:"message"`
	Source      string   `json:"source"`
	// Ext4 is ext4's record of errors; Ext4Pending says it follows.
	Ext4 *struct {
		ErrorsCount uint64 `json:"errors_count"`
		LastError   *struct {
			Function string `json:"function"`
		} `json:"last_error"`
	} `json:"ext4"`
	Ext4Pending bool `json:"ext4_pending"`
	// KernelMessage and Btrfs come from the kernel log source.
	KernelMessage string `json:"kernel_message"`
	Btrfs         *struct {
		Counter string `json:"counter"`
		From    uint64 `json:"from"`
		To      uint64 `json:"to"`
	} `json:"btrfs"`
}

// events returns `fshealth events --json --state-dir dir args...`.
func events(t *testing.T, dir string, args ...string) []event {
	t.Helper()
	out := mustRun(t, append([]string{"events", "--json", "--state-dir", dir}, args...)...)
	var evs []event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("events --json: line %q: %v", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs
}

// errorSum adds up the events' error counts.
func errorSum(evs []event) uint64 {
	var n uint64
	for _, e := range evs {
		n += e.ErrorCount
	}
	return n
}

// waitErrors waits until the history in dir holds at least n errors (the
// sum of error_count) and returns its events.
func waitErrors(t *testing.T, dir string, n uint64) []event {
	t.Helper()
	var evs []event
	eventually(t, func() string { return fmt.Sprintf("history has %d errors, want %d: %+v", errorSum(evs), n, evs) },
		func() bool {
			evs = events(t, dir)
			return errorSum(evs) >= n
		})
	return evs
}

// status is `fshealth status --json`.
type status struct {
	Daemon struct {
		Running  bool   `json:"running"`
		PID      int    `json:"pid"`
		StateDir string `json:"state_dir"`
	} `json:"daemon"`
	Filesystems []struct {
		UUID        string   `json:"uuid"`
		Device      string   `json:"device"`
		FSType      string   `json:"fstype"`
		Mountpoints []string `json:"mountpoints"`
		Watched     bool     `json:"watched"`
		Health      string   `json:"health"`
		Errors      uint64   `json:"errors"`
		TotalErrors uint64   `json:"total_errors"`
		Events      uint64   `json:"events"`
		FirstError  *string  `json:"first_error"`
		LastError   *string  `json:"last_error"`
		LastErrno   string   `json:"last_errno"`
		LastEventID string   `json:"last_event_id"`
		LastInode   *uint64  `json:"last_inode"`
		LastPath    string   `json:"last_path"`
		LastPending bool     `json:"last_path_pending"`
	} `json:"filesystems"`
	Deliveries []backlog `json:"deliveries"`
}

// backlog is one channel's delivery backlog in `status --json`. The store
// encodes it without JSON tags, so both spellings are accepted.
type backlog struct {
	Channel   string `json:"channel"`
	Pending   int    `json:"pending"`
	Failed    int    `json:"failed"`
	LastError string `json:"last_error"`
}

func (b *backlog) UnmarshalJSON(data []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	get := func(v any, names ...string) error {
		for _, n := range names {
			if raw, ok := m[n]; ok {
				return json.Unmarshal(raw, v)
			}
		}
		return fmt.Errorf("backlog %s: no %v", data, names)
	}
	if err := get(&b.Channel, "channel", "Channel"); err != nil {
		return err
	}
	if err := get(&b.Pending, "pending", "Pending"); err != nil {
		return err
	}
	if err := get(&b.Failed, "failed", "Failed"); err != nil {
		return err
	}
	return get(&b.LastError, "last_error", "LastError")
}

// getStatus returns `fshealth status --json --state-dir dir`.
func getStatus(t *testing.T, dir string) status {
	t.Helper()
	out := statusOut(t, "--json", "--state-dir", dir)
	var s status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v:\n%s", err, out)
	}
	return s
}

// fsHealth returns the health `fshealth status` gives the file system on
// device, or "" if it lists none.
func fsHealth(t *testing.T, dir, device string) string {
	t.Helper()
	for _, f := range getStatus(t, dir).Filesystems {
		if f.Device == device {
			return f.Health
		}
	}
	return ""
}

// channelBacklog returns the backlog of channel in s.
func (s status) channelBacklog(channel string) backlog {
	for _, b := range s.Deliveries {
		if b.Channel == channel {
			return b
		}
	}
	return backlog{Channel: channel}
}

// writeFile writes a test file and fails the test on error.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// baseConfig is the start of every test configuration: only mountpoint is
// watched, events are logged on stderr, retries are quick and every error
// is alerted at once (no anti-flood folding, no reminders), so that each
// error is one alert per channel.
func baseConfig(mountpoint string) string {
	return fmt.Sprintf(`hostname = "e2e-host"

[watch]
paths = [%s]

[journal]
mode = "stderr"

[delivery]
initial_backoff = "100ms"
max_backoff = "500ms"

[flood]
window = "0s"
reminder_initial = "0s"
`, tomlString(mountpoint))
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	b, _ := json.Marshal(s) // JSON string escapes are valid TOML escapes for these paths
	return string(b)
}

// ext4UUID reads the file system UUID from the image's superblock.
func ext4UUID(t *testing.T, im *loopfs.Image) string {
	t.Helper()
	f, err := os.Open(im.File)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var u [16]byte
	if _, err := f.ReadAt(u[:], 1024+0x68); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// newFS creates a scratch ext4 file system for the test, checking that
// nothing is left behind when it ends.
func newFS(t *testing.T) *loopfs.Image {
	t.Helper()
	testutil.CheckNoLeaks(t)
	return testutil.NewExt4(t, 0)
}

// trigger makes ext4 report one error (EUCLEAN, no inode) on im.
func trigger(t *testing.T, im *loopfs.Image, msg string) {
	t.Helper()
	if err := im.TriggerError(msg); err != nil {
		t.Fatal(err)
	}
}
