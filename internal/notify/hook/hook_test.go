package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// writeHook writes an executable script into dir.
func writeHook(t *testing.T, dir, name, script string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func newNotifier(t *testing.T, cfg Config) *Notifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }

// testAlert returns an alert whose event has path as its file name.
func testAlert(path string) *alert.Alert {
	t := time.Date(2026, 3, 4, 5, 6, 7, 8, time.UTC)
	ev := &event.Event{
		ID: "01JEVENT000000000000000001", Kind: event.KindError, Time: event.Time{Time: t}, Source: event.SourceFanotify,
		Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 3, PID: 42,
		FSID: "1:2", Device: "/dev/loop0", FSType: "ext4", UUID: "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428",
		Mountpoints: []string{"/srv/a b", "/mnt/x\ny"}, Inode: ptr(uint64(13)), Generation: ptr(uint32(7)), Path: path,
		KernelMessage: "EXT4-fs error (device loop0): " + path,
		Storage: []storage.Layer{
			{Name: "loop0", Kind: storage.KindLoop, Node: "/dev/loop0", BackingFile: "/srv/img", On: []string{"sda2"}},
			{Name: "sda2", Kind: storage.KindPartition, Node: "/dev/sda2", On: []string{"sda"}},
			{Name: "sda", Kind: storage.KindDisk, Node: "/dev/sda", Disk: &storage.Disk{Vendor: "ATA", Model: "FOO", Serial: "S123"}},
		},
	}
	return &alert.Alert{
		ID: "01JALERT000000000000000001", Type: alert.TypeError, Severity: alert.SeverityCritical, Rule: "default",
		Host: "host1", Time: t, Summary: event.Summary(ev),
		Filesystem: alert.Filesystem{UUID: ev.UUID, Device: ev.Device, FSType: ev.FSType, Mountpoints: ev.Mountpoints, Label: "data"},
		ErrorKind:  "EUCLEAN", Count: 5, Since: t.Add(-time.Hour), Event: ev,
	}
}

func TestStdinAndEnvironment(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	pwned := filepath.Join(out, "pwned")
	hostile := "/srv/a b/evil\n2026-01-01 forged line \"q\" 'sq' $(touch " + pwned + ") `touch " + pwned + "` ; touch " + pwned + " {{.ID}} </script> $HOME \\ *"
	writeHook(t, dir, "10-record", `#!/bin/sh
cat > "$OUT/stdin.json"
cat /proc/$$/environ > "$OUT/environ"
printf '%s' "$FSHEALTH_PATH" > "$OUT/path"
pwd > "$OUT/pwd"
`)
	t.Setenv("FSHEALTH_LEAK", "from the daemon")
	n := newNotifier(t, Config{Name: "h", Dir: dir, Env: []string{"OUT=" + out, "LANG=en_US.UTF-8"}})
	a := testAlert(hostile)
	a.Test = true
	if err := n.Send(context.Background(), a); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("a command in the file name was executed")
	}

	stdin, err := os.ReadFile(filepath.Join(out, "stdin.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(a)
	if string(stdin) != string(want)+"\n" {
		t.Errorf("stdin:\n%s\nwant:\n%s", stdin, want)
	}
	if p, _ := os.ReadFile(filepath.Join(out, "path")); string(p) != hostile {
		t.Errorf("FSHEALTH_PATH = %q, want %q", p, hostile)
	}
	if p, _ := os.ReadFile(filepath.Join(out, "pwd")); string(p) != "/\n" {
		t.Errorf("working directory %q", p)
	}

	raw, _ := os.ReadFile(filepath.Join(out, "environ"))
	got := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
	wantEnv := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=en_US.UTF-8",
		"OUT=" + out,
		"FSHEALTH_ALERT_ID=01JALERT000000000000000001",
		"FSHEALTH_ALERT_TYPE=error",
		"FSHEALTH_SEVERITY=critical",
		"FSHEALTH_RULE=default",
		"FSHEALTH_HOST=host1",
		"FSHEALTH_SUMMARY=" + a.Summary,
		"FSHEALTH_TIME=2026-03-04T05:06:07.000000008Z",
		"FSHEALTH_SINCE=2026-03-04T04:06:07.000000008Z",
		"FSHEALTH_EVENT_ID=01JEVENT000000000000000001",
		"FSHEALTH_ERRNO=117",
		"FSHEALTH_ERROR=EUCLEAN",
		"FSHEALTH_ERROR_COUNT=5",
		"FSHEALTH_DEVICE=/dev/loop0",
		"FSHEALTH_FSTYPE=ext4",
		"FSHEALTH_UUID=0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428",
		"FSHEALTH_LABEL=data",
		"FSHEALTH_MOUNTPOINT=/srv/a b",
		"FSHEALTH_MOUNTPOINTS=/srv/a b\n/mnt/x\ny",
		"FSHEALTH_INODE=13",
		"FSHEALTH_PATH=" + hostile,
		"FSHEALTH_SOURCE=fanotify",
		"FSHEALTH_KERNEL_MESSAGE=EXT4-fs error (device loop0): " + hostile,
		`FSHEALTH_STORAGE=loop0 file /srv/img → sda2 → sda "ATA FOO" serial S123`,
		"FSHEALTH_DISKS=/dev/sda",
		"FSHEALTH_TEST=1",
	}
	// The shell may add PWD (and nothing else of the daemon's leaks in).
	got = slices.DeleteFunc(got, func(s string) bool { return strings.HasPrefix(s, "PWD=") })
	sort.Strings(got)
	sort.Strings(wantEnv)
	if !slices.Equal(got, wantEnv) {
		t.Errorf("environment:\n%q\nwant:\n%q", got, wantEnv)
	}
}

func TestNULInValue(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	writeHook(t, dir, "h", "#!/bin/sh\nprintf '%s' \"$FSHEALTH_PATH\" > \"$OUT/path\"\n")
	n := newNotifier(t, Config{Dir: dir, Env: []string{"OUT=" + out}})
	if err := n.Send(context.Background(), testAlert("/a\x00b")); err != nil {
		t.Fatal(err)
	}
	if p, _ := os.ReadFile(filepath.Join(out, "path")); string(p) != "/a\uFFFDb" {
		t.Errorf("FSHEALTH_PATH = %q", p)
	}
}

func TestSelectionAndOrder(t *testing.T) {
	dir, out, elsewhere := t.TempDir(), t.TempDir(), t.TempDir()
	rec := "#!/bin/sh\necho \"$(basename \"$0\")\" >> \"$OUT/order\"\n"
	for _, name := range []string{"20-second", "10-first", ".hidden", "30-backup~", "40-x.bak", "50-y.dpkg-old", "51-z.dpkg-dist", "52-w.rpmsave", "53-v.ucf-dist", "54-u.orig"} {
		writeHook(t, dir, name, rec)
	}
	if err := os.WriteFile(filepath.Join(dir, "60-noexec"), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "70-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := writeHook(t, elsewhere, "real", rec)
	if err := os.Symlink(target, filepath.Join(dir, "80-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "missing"), filepath.Join(dir, "90-broken")); err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger()
	n := newNotifier(t, Config{Dir: dir, Env: []string{"OUT=" + out}, Logger: log})
	hooks, err := n.Hooks()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hooks {
		names = append(names, h.Name)
	}
	if want := []string{"10-first", "20-second", "80-link"}; !slices.Equal(names, want) {
		t.Errorf("Hooks = %v, want %v", names, want)
	}
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	// $0 of the symlinked hook is the link's path (argv[0] = path in Dir).
	if b, _ := os.ReadFile(filepath.Join(out, "order")); string(b) != "10-first\n20-second\n80-link\n" {
		t.Errorf("ran %q", b)
	}
	// The directory is read again at each Send.
	writeHook(t, dir, "15-new", rec)
	os.Remove(filepath.Join(out, "order"))
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "order")); string(b) != "10-first\n15-new\n20-second\n80-link\n" {
		t.Errorf("ran %q", b)
	}
}

func TestNoHooks(t *testing.T) {
	empty := t.TempDir()
	onlyData := t.TempDir()
	os.WriteFile(filepath.Join(onlyData, "README"), []byte("x"), 0o644)
	for _, dir := range []string{filepath.Join(empty, "missing"), empty, onlyData} {
		log, lb := newLogger()
		n := newNotifier(t, Config{Dir: dir, Logger: log})
		if err := n.Send(context.Background(), testAlert("/x")); err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		if !strings.Contains(lb.String(), "level=DEBUG msg=\"no hooks to run\"") {
			t.Errorf("%s: log %s", dir, lb)
		}
	}
}

func TestFailures(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	writeHook(t, dir, "10-ok", "#!/bin/sh\ntouch \"$OUT/10\"\n")
	writeHook(t, dir, "20-exit3", "#!/bin/sh\necho 'first line' >&2\necho 'disk full' >&2\nexit 3\n")
	writeHook(t, dir, "30-badinterp", "#!/nonexistent/interpreter\n")
	writeHook(t, dir, "40-killed", "#!/bin/sh\nkill -TERM $$\n")
	ww := writeHook(t, dir, "45-worldwritable", "#!/bin/sh\ntouch \"$OUT/45\"\n")
	if err := os.Chmod(ww, 0o757); err != nil {
		t.Fatal(err)
	}
	writeHook(t, dir, "50-ok", "#!/bin/sh\ntouch \"$OUT/50\"\n")
	log, lb := newLogger()
	n := newNotifier(t, Config{Name: "ops", Dir: dir, Env: []string{"OUT=" + out}, Logger: log})
	err := n.Send(context.Background(), testAlert("/x"))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	t.Log(msg)
	for _, want := range []string{
		`hooks "ops": 4 of 6 hooks failed: `,
		`20-exit3: exit status 3 (stderr: "disk full")`,
		`30-badinterp: cannot start: no such file or directory (is the interpreter on its #! line missing?)`,
		`40-killed: killed by signal SIGTERM`,
		`45-worldwritable: refusing to run it: "` + ww + `" is writable by its group or by every user (owner `,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if strings.Contains(msg, "10-ok") || strings.Contains(msg, "50-ok") {
		t.Errorf("error names a hook that succeeded")
	}
	for _, f := range []string{"10", "50"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("hook %s did not run", f)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "45")); err == nil {
		t.Error("the world-writable hook ran")
	}
	if !strings.Contains(lb.String(), `level=WARN msg="hook failed" channel=ops hook=20-exit3`) {
		t.Errorf("log:\n%s", lb)
	}
}

// marker returns a sleep duration no other process on the machine uses, to
// find our sleeps in /proc.
func marker() string {
	return fmt.Sprintf("9%04d.%d", os.Getpid()%10000, time.Now().UnixNano()%1000000)
}

// live returns the pids of live processes whose command line contains s.
func live(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), s) {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// eventually waits up to 5s for the processes with s in their command line
// to be gone (killed processes take a moment to be torn down).
func eventually(t *testing.T, s string) {
	t.Helper()
	for i := 0; ; i++ {
		pids := live(s)
		if len(pids) == 0 {
			return
		}
		if i == 100 {
			for _, p := range pids {
				syscallKill(p)
			}
			t.Fatalf("processes survived: %v", pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	m := marker()
	writeHook(t, dir, "10-hang", `#!/bin/sh
sleep `+m+` &
sh -c 'sleep `+m+`; echo never' &
echo started
echo oops >&2
sleep `+m+`
`)
	log, lb := newLogger()
	n := newNotifier(t, Config{Dir: dir, Timeout: 500 * time.Millisecond, Logger: log})
	err := n.Send(context.Background(), testAlert("/x"))
	t.Log(err)
	if err == nil || !strings.Contains(err.Error(), `10-hang: timed out after 500ms; it was killed with everything it started (stderr: "oops")`) {
		t.Errorf("err = %v", err)
	}
	eventually(t, m)
	if !strings.Contains(lb.String(), `hook=10-hang alert_id=01JALERT000000000000000001 stream=stdout line=started`) {
		t.Errorf("output not logged:\n%s", lb)
	}
}

func TestLeftoversKilled(t *testing.T) {
	dir := t.TempDir()
	m := marker()
	// The background sleep keeps stdout open: Send must not wait for it.
	writeHook(t, dir, "10-bg", "#!/bin/sh\nsleep "+m+" &\necho done\n")
	n := newNotifier(t, Config{Dir: dir, Timeout: time.Minute})
	done := make(chan error, 1)
	go func() { done <- n.Send(context.Background(), testAlert("/x")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Send waited for the hook's background process")
	}
	eventually(t, m)
}

func TestContextCanceled(t *testing.T) {
	dir := t.TempDir()
	m := marker()
	writeHook(t, dir, "10-hang", "#!/bin/sh\nsleep "+m+"\n")
	n := newNotifier(t, Config{Dir: dir, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := n.Send(ctx, testAlert("/x"))
	if err == nil || !strings.Contains(err.Error(), "10-hang: interrupted (context deadline exceeded); it was killed with everything it started") {
		t.Errorf("err = %v", err)
	}
	eventually(t, m)
	if err := n.Send(ctx, testAlert("/x")); err == nil || !strings.Contains(err.Error(), "10-hang: not run: context deadline exceeded") {
		t.Errorf("err = %v", err)
	}
}

func TestConcurrencyCap(t *testing.T) {
	const limit, sends = 2, 6
	dir, out := t.TempDir(), t.TempDir()
	script := `#!/bin/sh
echo "$(date +%s%N) 1" >> "$OUT/log"
sleep 0.4
echo "$(date +%s%N) -1" >> "$OUT/log"
`
	writeHook(t, dir, "10-a", script)
	writeHook(t, dir, "20-b", script)
	n := newNotifier(t, Config{Dir: dir, MaxConcurrent: limit, Env: []string{"OUT=" + out}})
	var wg sync.WaitGroup
	errs := make(chan error, sends)
	for range sends {
		wg.Go(func() { errs <- n.Send(context.Background(), testAlert("/x")) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "log"))
	if err != nil {
		t.Fatal(err)
	}
	type mark struct{ t, d int64 }
	var marks []mark
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m mark
		if _, err := fmt.Sscan(l, &m.t, &m.d); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		marks = append(marks, m)
	}
	if len(marks) != 2*2*sends {
		t.Fatalf("%d marks, want %d", len(marks), 2*2*sends)
	}
	// Ends sort before starts at the same instant.
	sort.Slice(marks, func(i, j int) bool {
		if marks[i].t != marks[j].t {
			return marks[i].t < marks[j].t
		}
		return marks[i].d < marks[j].d
	})
	running, most := 0, 0
	for _, m := range marks {
		running += int(m.d)
		most = max(most, running)
	}
	t.Logf("at most %d hooks ran at once", most)
	if most > limit {
		t.Errorf("%d hooks ran at once, cap %d", most, limit)
	}
	if most < 2 {
		t.Errorf("hooks never overlapped: the test proves nothing")
	}
}

func TestOutputLogged(t *testing.T) {
	dir := t.TempDir()
	writeHook(t, dir, "10-talk", `#!/bin/sh
printf 'hello\nworld\r\n'
printf 'bad \033[31mred\n' >&2
head -c 100000 /dev/zero | tr '\0' 'x'
`)
	log, lb := newLogger()
	n := newNotifier(t, Config{Name: "talk", Dir: dir, Logger: log})
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	s := lb.String()
	for _, want := range []string{
		`level=INFO msg="hook output" channel=talk hook=10-talk alert_id=01JALERT000000000000000001 stream=stdout line=hello`,
		`stream=stdout line=world` + "\n",
		`level=WARN msg="hook output" channel=talk hook=10-talk alert_id=01JALERT000000000000000001 stream=stderr line="bad \\x1b[31mred"`,
		`level=WARN msg="hook output truncated" channel=talk hook=10-talk alert_id=01JALERT000000000000000001 stream=stdout kept_bytes=65536 dropped_bytes=34477`,
		`level=INFO msg="hook ran" channel=talk hook=10-talk`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(s, "\x1b") {
		t.Error("an escape sequence reached the log")
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "a"}, `hooks "a": no directory`},
		{Config{Name: "b", Dir: "/x", Env: []string{"NOEQUALS"}}, `hooks "b": environment entry NOEQUALS is not NAME=value`},
		{Config{Name: "c", Dir: "/x", Env: []string{"FSHEALTH_PATH=/"}}, `hooks "c": environment variable FSHEALTH_PATH is reserved`},
		{Config{Name: "d", Dir: "/x", Env: []string{"A=b\x00c"}}, `hooks "d": environment variable A contains a NUL byte`},
		{Config{Name: "e", Dir: "/x", Timeout: -time.Second}, `hooks "e": timeout must not be negative`},
		{Config{Name: "f", Dir: "/x", MaxConcurrent: -1}, `hooks "f": max_concurrent must not be negative`},
		{Config{Name: "g", Dir: "/x", Env: []string{"1A=b"}}, `hooks "g": environment entry 1A=b is not NAME=value`},
	} {
		if _, err := New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %s", tc.cfg.Name, err, tc.want)
		}
	}
	n, err := New(Config{Dir: "relative"})
	if err != nil || !filepath.IsAbs(n.dir) || n.Name() != "hooks" {
		t.Errorf("New: %v %+v", err, n)
	}
}

func TestEnvironmentWithoutEvent(t *testing.T) {
	a := &alert.Alert{ID: "x", Type: alert.TypeResolved, Severity: alert.SeverityInfo,
		Filesystem: alert.Filesystem{Device: "/dev/sdb", Mountpoints: []string{}}}
	env := Environment(a)
	if len(env) != 25 {
		t.Errorf("%d variables", len(env))
	}
	for _, want := range []string{"FSHEALTH_ERRNO=", "FSHEALTH_INODE=", "FSHEALTH_PATH=", "FSHEALTH_MOUNTPOINT=", "FSHEALTH_DEVICE=/dev/sdb", "FSHEALTH_TEST=", "FSHEALTH_TIME=", "FSHEALTH_STORAGE=", "FSHEALTH_DISKS="} {
		if !slices.Contains(env, want) {
			t.Errorf("missing %q in %q", want, env)
		}
	}
}

func syscallKill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// TestAttemptTimeout: an attempt may take a timeout per hook, plus one
// for a free slot, so the outbox does not cut slow but allowed hooks off.
func TestAttemptTimeout(t *testing.T) {
	dir := t.TempDir()
	n := newNotifier(t, Config{Name: "h", Dir: dir, Timeout: time.Minute})
	if got, want := n.AttemptTimeout(), time.Minute+alert.AttemptMargin; got != want {
		t.Errorf("no hooks: %v, want %v", got, want)
	}
	writeHook(t, dir, "a", "#!/bin/sh\n")
	writeHook(t, dir, "b", "#!/bin/sh\n")
	if got, want := n.AttemptTimeout(), 3*time.Minute+alert.AttemptMargin; got != want {
		t.Errorf("two hooks: %v, want %v", got, want)
	}
}
