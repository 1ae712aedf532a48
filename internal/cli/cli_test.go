package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// binary is the fshealth executable built for these tests.
var binary string

// TestMain builds the binary once, or uses $FSHEALTH_BINARY (where there is
// no Go toolchain, as in the kernel matrix's guests).
func TestMain(m *testing.M) {
	testutil.MainInMountNamespace(m, func() (func(), error) {
		if b := os.Getenv("FSHEALTH_BINARY"); b != "" {
			binary = b
			return nil, nil
		}
		dir, err := os.MkdirTemp("", "fshealth-cli-test-")
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

// notifySocket listens on a unixgram socket like systemd's and returns its
// path and a channel of received datagrams.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return path, ch
}

// watchProc is a running `fshealth watch`.
type watchProc struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *bytes.Buffer
}

func startWatch(t *testing.T, env []string, args ...string) *watchProc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"watch"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &watchProc{cmd: cmd, lines: make(chan string, 64), stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p
}

func (p *watchProc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("fshealth exited; stderr:\n%s", p.stderr)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no output within 10s; stderr:\n%s", p.stderr)
	}
	return ""
}

func (p *watchProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after %v fshealth exited with %v, want status 0; stderr:\n%s", sig, err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("fshealth did not exit within 10s of %v", sig)
	}
}

func waitReady(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case msg := <-ch:
		if !strings.Contains(msg, "READY=1") {
			t.Fatalf("notify message %q lacks READY=1", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no READY=1 within 10s")
	}
}

func TestWatchJSONEndToEnd(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	sock, notes := notifySocket(t)
	p := startWatch(t, []string{"NOTIFY_SOCKET=" + sock}, "--json", im.Mountpoint)
	waitReady(t, notes)
	if err := im.TriggerError("cli test"); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	l := p.line(t)
	if err := json.Unmarshal([]byte(l), &m); err != nil {
		t.Fatalf("not JSON: %q: %v", l, err)
	}
	for k, want := range map[string]any{"kind": "error", "errno": 117.0, "error": "EUCLEAN", "error_count": 1.0, "device": im.Dev, "fstype": "ext4"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	for _, k := range []string{"time", "pid", "fsid", "uuid", "mountpoints"} {
		if _, ok := m[k]; !ok {
			t.Errorf("key %q missing from %s", k, l)
		}
	}
	for _, k := range []string{"inode", "generation", "path"} {
		if _, ok := m[k]; ok {
			t.Errorf("key %q present in a superblock-level error: %s", k, l)
		}
	}
	if ts, _ := m["time"].(string); len(ts) != len("2006-01-02T15:04:05.000000000Z") {
		t.Errorf("time %q is not RFC 3339 with nanoseconds", ts)
	}
	p.stop(t, syscall.SIGTERM)
	for _, want := range []string{"watching file system", "msg=ready"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	}
}

func TestWatchTextAndSIGINT(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	sock, notes := notifySocket(t)
	p := startWatch(t, []string{"NOTIFY_SOCKET=" + sock}, im.Mountpoint)
	waitReady(t, notes)
	if err := im.Abort(); err != nil {
		t.Fatal(err)
	}
	l := p.line(t)
	if !strings.Contains(l, " ESHUTDOWN ") || !strings.Contains(l, im.Dev) || !strings.Contains(l, "(whole file system)") {
		t.Errorf("unexpected line %q", l)
	}
	p.stop(t, syscall.SIGINT)
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestWatchBadPathAndUsage(t *testing.T) {
	testutil.RequireRoot(t)
	_, stderr, code := run(t, "watch", "/no/such/dir")
	if code == 0 || !strings.Contains(stderr, "cannot watch /no/such/dir") {
		t.Errorf("exit %d, stderr %q: want a failure naming the path", code, stderr)
	}
	_, stderr, code = run(t, "watch", "/proc")
	if code == 0 || !strings.Contains(stderr, "cannot watch /proc") {
		t.Errorf("exit %d, stderr %q: want a failure naming /proc", code, stderr)
	}
	_, stderr, code = run(t, "watch", "--bogus")
	if code != 2 || !strings.Contains(stderr, "unknown flag: --bogus") || !strings.Contains(stderr, "Run 'fshealth watch --help' for usage.") {
		t.Errorf("exit %d, stderr %q: want a usage error (status 2)", code, stderr)
	}
	_, stderr, code = run(t, "bogus")
	if code != 2 || !strings.Contains(stderr, `unknown command "bogus"`) {
		t.Errorf("exit %d, stderr %q: want a usage error (status 2)", code, stderr)
	}
	_, stderr, code = run(t, "resolve")
	if code != 2 || !strings.Contains(stderr, "accepts 1 arg(s), received 0") {
		t.Errorf("resolve without its argument: exit %d, stderr %q: want a usage error (status 2)", code, stderr)
	}
}

func TestCompletionAndHelp(t *testing.T) {
	out, _, code := run(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_fshealth") {
		t.Errorf("completion bash: exit %d, %d bytes", code, len(out))
	}
	out, _, code = run(t, "watch", "--help")
	if code != 0 || !strings.Contains(out, "--json") {
		t.Errorf("watch --help: exit %d: %s", code, out)
	}
}

func TestDemo(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	stdout, stderr, code := run(t, "demo", "--json")
	if code != 0 {
		t.Fatalf("demo failed with %d:\n%s\n%s", code, stdout, stderr)
	}
	var errs []string
	for _, l := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var m struct {
			Kind        string  `json:"kind"`
			Error       string  `json:"error"`
			Inode       *uint64 `json:"inode"`
			Path        string  `json:"path"`
			PathPending bool    `json:"path_pending"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Kind == "path":
			errs = append(errs, "path:"+filepath.Base(filepath.Dir(m.Path))+"/"+filepath.Base(m.Path))
		case m.Inode != nil && !m.PathPending:
			t.Errorf("the inode error's path is not pending: %s", l)
		default:
			errs = append(errs, fmt.Sprintf("%s/%v", m.Error, m.Inode != nil))
		}
	}
	got := strings.Join(errs, " ")
	if !strings.HasPrefix(got, "EUCLEAN/false EUCLEAN/true") || !strings.Contains(got, "EUCLEAN/true path:data/broken") || !strings.HasSuffix(got, "ESHUTDOWN/false") {
		t.Errorf("demo events %q, want a superblock error, an inode error, its path, ..., an abort\n%s", got, stdout)
	}
	if !strings.Contains(stdout, "ext4 has counted 2 errors: the 2 the demo caused, none raised by fshealth") {
		t.Errorf("the demo does not show that fshealth raised no error of its own:\n%s", stdout)
	}
	if strings.Contains(stdout+stderr, "fshealth-demo-") {
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mounts), "fshealth-demo-") {
			t.Error("the demo left its mount behind")
		}
	}
}
