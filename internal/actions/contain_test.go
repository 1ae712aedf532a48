package actions

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/cgroup"
	"github.com/fshealth/fshealth/internal/testutil"
)

// escapeScript writes a script that starts a grandchild in a session of
// its own, writes the grandchild's pid and the script's cgroup to out, then
// exits (or, with hang, waits).
func escapeScript(t *testing.T, out string, hang bool) string {
	t.Helper()
	s := "#!/bin/sh\nsetsid sleep 1000 </dev/null >/dev/null 2>&1 &\necho $! > " + out + "/pid.tmp && mv " + out + "/pid.tmp " + out + "/pid\ncat /proc/self/cgroup > " + out + "/cgroup\n"
	if hang {
		s += "exec sleep 1000\n"
	}
	p := filepath.Join(t.TempDir(), "escape")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCommandDescendantsKilled(t *testing.T) {
	testutil.RequireRoot(t) // cgroups
	m, err := cgroup.Default()
	if err != nil {
		testutil.Skip(t, testutil.Missing, "no usable cgroup v2: %v", err)
	}
	for _, hang := range []bool{false, true} {
		t.Run("hang="+strconv.FormatBool(hang), func(t *testing.T) {
			out := t.TempDir()
			r := &Runner{}
			res := r.Run(context.Background(), Spec{Name: Command, Argv: []string{escapeScript(t, out, hang)}, Timeout: 2 * time.Second}, Target{})
			if res.OK == hang {
				t.Errorf("result %+v", res)
			}
			b, err := os.ReadFile(filepath.Join(out, "pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			requireGone(t, pid)
			if alive(pid) {
				syscallKill(pid)
			}
			b, err = os.ReadFile(filepath.Join(out, "cgroup"))
			if err != nil {
				t.Fatal(err)
			}
			_, cg, _ := strings.Cut(strings.TrimSpace(string(b)), "0::")
			if !strings.Contains(cg, "fshealth-action-") {
				t.Fatalf("the command ran in cgroup %q, not one of its own", b)
			}
			if _, err := os.Stat(filepath.Join(m.Base(), filepath.Base(cg))); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left behind (%v)", cg, err)
			}
		})
	}
}

func TestUntrustedCommandRefused(t *testing.T) {
	testutil.RequireRoot(t) // chown
	out := t.TempDir()
	p := escapeScript(t, out, false)
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		r := &Runner{DryRun: dry}
		res := r.Run(context.Background(), Spec{Name: Command, Argv: []string{p}}, Target{})
		want := "failed: refusing to run " + p + `: "` + p + `" is owned by another user (owner nobody (uid 65534), mode 0755)`
		if res.OK || !strings.HasPrefix(res.Outcome, want) {
			t.Errorf("dry run %v: outcome %q\nwant %q", dry, res.Outcome, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "pid")); err == nil {
		t.Error("the untrusted program ran")
	}
}

func syscallKill(pid int) { _ = syscall.Kill(pid, syscall.SIGKILL) }

// TestWithoutCgroupsWarnsOnce: without cgroups, the setsid grandchild of a
// command survives it, and the log says once that it cannot be contained.
func TestWithoutCgroupsWarnsOnce(t *testing.T) {
	useCgroups, noCgroupOnce = false, sync.Once{}
	defer func() { useCgroups = true }()
	var buf bytes.Buffer
	r := &Runner{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	for range 2 {
		out := t.TempDir()
		res := r.Run(context.Background(), Spec{Name: Command, Argv: []string{escapeScript(t, out, false)}}, Target{})
		if !res.OK {
			t.Fatalf("result %+v", res)
		}
		b, err := os.ReadFile(filepath.Join(out, "pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if !alive(pid) {
			t.Errorf("the grandchild %d is gone without a cgroup?", pid)
		}
		syscallKill(pid)
	}
	if n := strings.Count(buf.String(), "run without a cgroup of their own"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, buf.String())
	}
}
