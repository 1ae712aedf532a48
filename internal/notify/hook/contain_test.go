package hook

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/cgroup"
	"github.com/fshealth/fshealth/internal/testutil"
)

// setsidHook is a hook that starts a grandchild in a session (and process
// group) of its own, writes the grandchild's pid and its own cgroup to
// $OUT, then, with hang, waits.
func setsidHook(m string, hang bool) string {
	s := `#!/bin/sh
setsid sleep ` + m + ` </dev/null >/dev/null 2>&1 &
echo $! > "$OUT/pid.tmp" && mv "$OUT/pid.tmp" "$OUT/pid"
cat /proc/self/cgroup > "$OUT/cgroup"
`
	if hang {
		s += "sleep " + m + "\n"
	}
	return s
}

// grandchild reads the pid the hook wrote.
func grandchild(t *testing.T, out string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || len(stat) <= i+2 || stat[i+2] != 'Z'
}

// waitGone waits up to 10s for pid to be gone, and reports whether it is.
func waitGone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// hookCgroupDir returns the directory of the cgroup the hook saw itself in.
func hookCgroupDir(t *testing.T, out string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := cgroup.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			if !strings.Contains(filepath.Base(p), "fshealth-hook-") {
				t.Fatalf("the hook ran in cgroup %q, not one of its own", p)
			}
			// The hook's cgroup is a child of the manager's base.
			return filepath.Join(m.Base(), filepath.Base(p))
		}
	}
	t.Fatalf("no cgroup v2 line in %q", b)
	return ""
}

// requireCgroups skips (fails under CI) when this machine has no usable
// cgroup v2.
func requireCgroups(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := cgroup.Default()
	if err == nil {
		var g *cgroup.Group
		if g, err = m.New("probe"); err == nil {
			err = g.Remove(time.Second)
		}
	}
	if err != nil {
		testutil.Skip(t, testutil.Missing, "no usable cgroup v2: %v", err)
	}
}

func TestSetsidGrandchildKilledWhenHookExits(t *testing.T) {
	requireCgroups(t)
	dir, out := t.TempDir(), t.TempDir()
	writeHook(t, dir, "10-escape", setsidHook(marker(), false))
	n := newNotifier(t, Config{Dir: dir, Timeout: time.Minute, Env: []string{"OUT=" + out}})
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	pid := grandchild(t, out)
	if !waitGone(pid) {
		syscallKill(pid)
		t.Fatalf("the hook's setsid grandchild %d survived the hook", pid)
	}
	cg := hookCgroupDir(t, out)
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("the hook's cgroup %s is still there (%v)", cg, err)
	}
}

func TestSetsidGrandchildKilledOnTimeout(t *testing.T) {
	requireCgroups(t)
	dir, out := t.TempDir(), t.TempDir()
	writeHook(t, dir, "10-hang", setsidHook(marker(), true))
	n := newNotifier(t, Config{Dir: dir, Timeout: time.Second, Env: []string{"OUT=" + out}})
	err := n.Send(context.Background(), testAlert("/x"))
	if err == nil || !strings.Contains(err.Error(), "10-hang: timed out after 1s; it was killed with everything it started") {
		t.Errorf("err = %v", err)
	}
	pid := grandchild(t, out)
	if !waitGone(pid) {
		syscallKill(pid)
		t.Fatalf("the hook's setsid grandchild %d survived the timeout", pid)
	}
	cg := hookCgroupDir(t, out)
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Errorf("the hook's cgroup %s is still there (%v)", cg, err)
	}
}

// TestWithoutCgroupSetsidEscapes shows what the cgroup is for: with only a
// process group, the setsid grandchild survives the hook (and the warning
// says so).
func TestWithoutCgroupSetsidEscapes(t *testing.T) {
	useCgroups = false
	defer func() { useCgroups = true }()
	dir, out := t.TempDir(), t.TempDir()
	writeHook(t, dir, "10-escape", setsidHook(marker(), false))
	log, lb := newLogger()
	n := newNotifier(t, Config{Dir: dir, Timeout: time.Minute, Env: []string{"OUT=" + out}, Logger: log})
	for range 2 {
		if err := n.Send(context.Background(), testAlert("/x")); err != nil {
			t.Fatal(err)
		}
		pid := grandchild(t, out)
		if !alive(pid) {
			t.Errorf("the grandchild %d is gone: the process group alone contained it?", pid)
		}
		syscallKill(pid)
	}
	if c := strings.Count(lb.String(), "hooks run without a cgroup of their own"); c != 1 {
		t.Errorf("warning logged %d times, want once:\n%s", c, lb)
	}
}

func TestHookRunsAsUser(t *testing.T) {
	testutil.RequireRoot(t) // to change user
	// nobody must be able to reach the hook.
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeHook(t, dir, "10-id", "#!/bin/sh\necho \"uid=$(id -u) gid=$(id -g)\"\n")
	log, lb := newLogger()
	n := newNotifier(t, Config{Dir: dir, User: "nobody", Logger: log})
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lb.String(), "line=\"uid=65534 gid=65534\"") {
		t.Errorf("hook did not run as nobody:\n%s", lb)
	}
	n = newNotifier(t, Config{Dir: dir, User: "65534", Group: "0", Logger: log})
	if err := n.Send(context.Background(), testAlert("/x")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lb.String(), "line=\"uid=65534 gid=0\"") {
		t.Errorf("hook did not run as 65534:0:\n%s", lb)
	}
}

func TestUnknownUser(t *testing.T) {
	for _, c := range []struct{ user, group, want string }{
		{"no-such-user-fshealth", "", `no user "no-such-user-fshealth" in the user database`},
		{"nobody", "no-such-group-fshealth", `no group "no-such-group-fshealth" in the group database`},
		{"", "nogroup", `group "nogroup" needs a user`},
	} {
		_, err := New(Config{Dir: "/nonexistent", User: c.user, Group: c.group})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(user %q, group %q) = %v, want %q", c.user, c.group, err, c.want)
		}
	}
}

// TestUntrustedHooksRefused: a hooks directory, or a hook, that belongs to
// another user is refused and the hook never runs.
func TestUntrustedHooksRefused(t *testing.T) {
	testutil.RequireRoot(t) // chown
	const nobody = 65534
	for _, c := range []struct {
		name     string
		chownDir bool
		want     string
	}{
		{"directory and hook owned by nobody", true, `refusing to run hooks: "DIR" is a directory owned by another user (owner nobody (uid 65534), mode 0755)`},
		{"hook owned by nobody", false, `10-hook: refusing to run it: "DIR/10-hook" is owned by another user (owner nobody (uid 65534), mode 0755)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hooks")
			out := t.TempDir()
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			h := writeHook(t, dir, "10-hook", "#!/bin/sh\ntouch \"$OUT/ran\"\n")
			if err := os.Chown(h, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			if c.chownDir {
				if err := os.Chown(dir, nobody, nobody); err != nil {
					t.Fatal(err)
				}
			}
			n := newNotifier(t, Config{Dir: dir, Env: []string{"OUT=" + out}})
			err := n.Send(context.Background(), testAlert("/x"))
			want := strings.ReplaceAll(c.want, "DIR", dir)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v\nwant %s", err, want)
			}
			if _, err := os.Stat(filepath.Join(out, "ran")); err == nil {
				t.Error("the untrusted hook ran")
			}
			problems := CheckDir(dir)
			if len(problems) != 1 || !strings.Contains(problems[0], want[strings.Index(want, ": ")+2:]) {
				t.Errorf("CheckDir = %q", problems)
			}
		})
	}
}

// TestUntrustedInterpreter: a script whose #! interpreter others can write
// is refused.
func TestUntrustedInterpreter(t *testing.T) {
	testutil.RequireRoot(t)
	dir, bin := t.TempDir(), t.TempDir()
	interp := filepath.Join(bin, "sh")
	b, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(interp, b, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(interp, 0o777); err != nil {
		t.Fatal(err)
	}
	writeHook(t, dir, "10-hook", "#!"+interp+"\nexit 0\n")
	n := newNotifier(t, Config{Dir: dir})
	err = n.Send(context.Background(), testAlert("/x"))
	if err == nil || !strings.Contains(err.Error(), `its interpreter: "`+interp+`" is writable by its group or by every user`) {
		t.Errorf("err = %v", err)
	}
}

// BenchmarkHookRun measures one trivial hook's run with and without its
// own cgroup (creating, entering, killing and removing it).
func BenchmarkHookRun(b *testing.B) {
	for _, withCgroup := range []bool{true, false} {
		b.Run(map[bool]string{true: "cgroup", false: "process-group"}[withCgroup], func(b *testing.B) {
			if withCgroup {
				if _, err := cgroup.Default(); err != nil || os.Geteuid() != 0 {
					testutil.Skip(b, testutil.Missing, "no usable cgroup v2")
				}
			}
			useCgroups = withCgroup
			defer func() { useCgroups = true }()
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "10-true"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
				b.Fatal(err)
			}
			n, err := New(Config{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			a := testAlert("/x")
			for b.Loop() {
				if err := n.Send(context.Background(), a); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
