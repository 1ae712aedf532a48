package hook

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// withoutSystemdBus makes PID 1 look like systemd (booted) or not, with
// its bus unreachable, for this test.
func withoutSystemdBus(t *testing.T, booted bool) {
	t.Helper()
	oldBus, oldRun := systemdBus, systemdRunDir
	systemdBus = filepath.Join(t.TempDir(), "no-such-socket")
	systemdRunDir = filepath.Join(t.TempDir(), "no-such-dir")
	if booted {
		systemdRunDir = t.TempDir()
	}
	t.Cleanup(func() { systemdBus, systemdRunDir = oldBus, oldRun })
}

// TestIsolationFallback: with isolation "auto" and PID 1 systemd but its
// bus unreachable, hooks run as the daemon's children (logged once) and
// work; with "unit" they fail, saying why; "cgroup" never asks systemd.
// (Hooks in real transient units are tested under a real systemd by
// internal/systemdtest.)
func TestIsolationFallback(t *testing.T) {
	withoutSystemdBus(t, true)
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "ran")
	writeHook(t, dir, "h", "#!/bin/sh\necho ran >> "+out+"\n")
	log, lb := newLogger()
	auto := newNotifier(t, Config{Dir: dir, Logger: log})
	for i := 0; i < 2; i++ {
		if err := auto.Send(context.Background(), testAlert("/x")); err != nil {
			t.Fatalf("auto: %v", err)
		}
	}
	if n := strings.Count(lb.String(), "systemd could not be asked to run them"); n != 1 {
		t.Errorf("the fallback is logged %d times, want once:\n%s", n, lb.String())
	}
	if !strings.Contains(lb.String(), "no-such-socket") {
		t.Errorf("the fallback does not say why:\n%s", lb.String())
	}

	unit := newNotifier(t, Config{Dir: dir, Isolation: IsolationUnit, Timeout: 5 * time.Second})
	err := unit.Send(context.Background(), testAlert("/x"))
	if err == nil || !strings.Contains(err.Error(), "h: cannot start: connecting to systemd") {
		t.Errorf("unit without a bus: %v", err)
	}

	log, lb = newLogger()
	cg := newNotifier(t, Config{Dir: dir, Isolation: IsolationCgroup, Logger: log})
	if err := cg.Send(context.Background(), testAlert("/x")); err != nil || strings.Contains(lb.String(), "systemd") {
		t.Errorf("cgroup: %v\n%s", err, lb.String())
	}

	if _, err := New(Config{Dir: dir, Isolation: "scope"}); err == nil || !strings.Contains(err.Error(), `isolation must be "auto", "unit" or "cgroup": "scope"`) {
		t.Errorf("bad isolation: %v", err)
	}
}

// TestUnitProperties: the transient unit runs the hook's path itself, with
// no $VARIABLE expansion of its argv, the whole environment (values made
// valid UTF-8, as systemd requires), the hook's timeout, its user, and
// everything in its cgroup killed with SIGKILL.
func TestUnitProperties(t *testing.T) {
	n := newNotifier(t, Config{Dir: t.TempDir(), Timeout: 7 * time.Second, User: "nobody", Group: "nogroup"})
	path := "/etc/fshealth/hooks.d/$HOME x"
	props := map[string]any{}
	for _, p := range n.unitProperties(path, nil, nil, nil, []string{"FSHEALTH_PATH=a\xffb\nc"}) {
		props[p.Name] = p.Value.Value()
	}
	ex := props["ExecStartEx"].([]execStartEx)
	if len(ex) != 1 || ex[0].Path != path || len(ex[0].Argv) != 1 || ex[0].Argv[0] != path || ex[0].Flags[0] != "no-env-expand" {
		t.Errorf("ExecStartEx %+v", ex)
	}
	if env := props["Environment"].([]string); len(env) != 1 || env[0] != "FSHEALTH_PATH=a\uFFFDb\nc" {
		t.Errorf("Environment %q", env)
	}
	for name, want := range map[string]any{"RuntimeMaxUSec": uint64(7e6), "KillMode": "control-group", "KillSignal": int32(9),
		"User": "nobody", "Group": "nogroup", "Type": "exec", "WorkingDirectory": "/", "RemainAfterExit": true} {
		if props[name] != want {
			t.Errorf("%s = %v, want %v", name, props[name], want)
		}
	}
}
