package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

// helperEnv makes the test binary act as a daemon calling Init and
// printing where it ended up.
const helperEnv = "FSHEALTH_CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		mgr, err := Init()
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(0)
		}
		own, _ := ownCgroup()
		fmt.Printf("base %s\nown %s\n", mgr.Base(), own)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func manager(t *testing.T) *Manager {
	t.Helper()
	testutil.RequireRoot(t)
	m, err := Default()
	if err != nil {
		testutil.Skip(t, testutil.Missing, "no usable cgroup v2: %v", err)
	}
	return m
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) <= i+2 || s[i+2] != 'Z'
}

// procs returns the pids in g, waiting up to 10s for there to be n.
func procs(t *testing.T, g *Group, n int) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(g.Path(), "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		var pids []int
		for _, f := range strings.Fields(string(b)) {
			p, _ := strconv.Atoi(f)
			pids = append(pids, p)
		}
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("cgroup has pids %v, want %d", pids, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRemoveKillsEverything(t *testing.T) {
	m := manager(t)
	for _, killFile := range []bool{true, false} {
		t.Run(fmt.Sprintf("cgroup.kill=%v", killFile), func(t *testing.T) {
			useKillFile = killFile
			defer func() { useKillFile = true }()
			g, err := m.New("test")
			if err != nil {
				t.Fatal(err)
			}
			// A process and a grandchild in a session of its own.
			cmd := exec.Command("/bin/sh", "-c", "setsid sleep 1000 & exec sleep 1000")
			cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: g.FD(), Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			pids := procs(t, g, 2)
			if err := g.Remove(10 * time.Second); err != nil {
				for _, p := range pids {
					unix.Kill(p, unix.SIGKILL)
				}
				t.Fatal(err)
			}
			if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("the process ended with %v, want killed", err)
			}
			for _, p := range pids {
				if alive(p) {
					unix.Kill(p, unix.SIGKILL)
					t.Errorf("process %d survived", p)
				}
			}
			if _, err := os.Stat(g.Path()); !os.IsNotExist(err) {
				t.Errorf("cgroup %s still there: %v", g.Path(), err)
			}
		})
	}
}

// runHelper runs the test binary as the helper in cgroup g with env, and
// returns what it printed.
func runHelper(t *testing.T, g *Group, env ...string) string {
	t.Helper()
	cmd := testutil.HelperCommand(t, time.Minute, os.Args[0])
	cmd.Env = append(append(os.Environ(), helperEnv+"=1"), env...)
	cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, g.FD()
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestInitMovesIntoLeaf: in a cgroup that systemd marks as delegated
// (Delegate=yes), Init moves the daemon into a leaf "daemon" cgroup and
// creates its programs' cgroups beside it; in a systemd service's cgroup
// that is not delegated, it refuses to touch the cgroup.
func TestInitMovesIntoLeaf(t *testing.T) {
	m := manager(t)
	g, err := m.New("unit")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.Remove(filepath.Join(g.Path(), DaemonLeaf))
		if err := g.Remove(5 * time.Second); err != nil {
			t.Error(err)
		}
	}()
	rel := strings.TrimPrefix(g.Path(), mountOf(t))

	// Not delegated, under systemd: refused.
	out := runHelper(t, g, "INVOCATION_ID=0123456789abcdef")
	if want := "error: the cgroup " + g.Path() + " belongs to systemd: the unit needs Delegate=yes\n"; out != want {
		t.Errorf("not delegated: %q, want %q", out, want)
	}
	// Delegated: moved into the leaf.
	if err := unix.Setxattr(g.Path(), "trusted.delegate", []byte("1"), 0); err != nil {
		t.Fatalf("marking the cgroup delegated: %v", err)
	}
	out = runHelper(t, g, "INVOCATION_ID=0123456789abcdef")
	if want := "base " + g.Path() + "\nown " + rel + "/" + DaemonLeaf + "\n"; out != want {
		t.Errorf("delegated: %q, want %q", out, want)
	}
}

func mountOf(t *testing.T) string {
	t.Helper()
	mnt, _, err := cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	return mnt
}
