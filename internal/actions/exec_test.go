package actions

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readPids waits for the helper to write its pid file and returns the pids
// in it.
func readPids(t *testing.T, path string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			var pids []int
			for _, f := range strings.Fields(string(b)) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pid file %s: %q", path, b)
				}
				pids = append(pids, n)
			}
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("helper did not write %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// requireGone fails the test unless every pid is gone (or a zombie) within
// a few seconds.
func requireGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				t.Errorf("process %d (%s) is still running", pid, strings.TrimSpace(string(comm)))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestCommandTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	r := &Runner{}
	start := time.Now()
	res := r.Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "spawn", pidFile), Timeout: 700 * time.Millisecond}, Target{})
	elapsed := time.Since(start)
	pids := readPids(t, pidFile)
	if len(pids) != 2 {
		t.Fatalf("pids %v", pids)
	}
	requireGone(t, pids...) // the helper and its sleep
	if res.OK || !strings.HasPrefix(res.Outcome, "failed: ") || !strings.Contains(res.Outcome, "timed out after 700ms; its process group was killed") {
		t.Errorf("outcome %q", res.Outcome)
	}
	if elapsed > 700*time.Millisecond+killGrace {
		t.Errorf("Run took %v", elapsed)
	}
	if res.Finished.Sub(res.Started) < 700*time.Millisecond {
		t.Errorf("Started %v, Finished %v: shorter than the timeout", res.Started, res.Finished)
	}
}

func TestCommandTimeoutSIGKILLAfterGrace(t *testing.T) {
	old := killGrace
	killGrace = 300 * time.Millisecond
	t.Cleanup(func() { killGrace = old })
	pidFile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "ignoreterm", pidFile), Timeout: 300 * time.Millisecond}, Target{})
	elapsed := time.Since(start)
	requireGone(t, readPids(t, pidFile)...)
	if res.OK || !strings.Contains(res.Outcome, "timed out") {
		t.Errorf("outcome %q", res.Outcome)
	}
	if elapsed < 600*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("Run took %v, want the timeout plus the grace period", elapsed)
	}
}

func TestCommandCanceled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		readPids(t, pidFile)
		cancel()
	}()
	res := (&Runner{}).Run(ctx, Spec{Name: Command, Argv: helperArgv(t, "spawn", pidFile)}, Target{})
	requireGone(t, readPids(t, pidFile)...)
	if res.OK || !strings.Contains(res.Outcome, "canceled after") {
		t.Errorf("outcome %q", res.Outcome)
	}
}

// TestCommandLeftoversKilled: a program that exits leaving a child behind
// holding its output pipe; Run returns at once and the child is killed.
func TestCommandLeftoversKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	start := time.Now()
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "background", pidFile)}, Target{})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %v", d)
	}
	pids := readPids(t, pidFile)
	requireGone(t, pids[1])
	if !res.OK {
		t.Errorf("outcome %q", res.Outcome)
	}
}

func TestCommandExitStatus(t *testing.T) {
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "exit", "3", "disk on fire")}, Target{})
	if res.OK || !strings.HasSuffix(res.Outcome, ": exit status 3: disk on fire") || !strings.HasPrefix(res.Outcome, "failed: ") {
		t.Errorf("outcome %q", res.Outcome)
	}
	if res.Output != "disk on fire\n" {
		t.Errorf("output %q", res.Output)
	}
}

func TestCommandOutputBounded(t *testing.T) {
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "output", "300000")}, Target{})
	if !res.OK {
		t.Fatalf("outcome %q", res.Outcome)
	}
	if len(res.Output) > MaxOutput || !strings.HasPrefix(res.Output, "HEADxxx") || !strings.HasSuffix(res.Output, "xxxTAIL") ||
		!strings.Contains(res.Output, "[... output truncated: ") {
		t.Errorf("output of %d bytes: %.100q ... %.100q", len(res.Output), res.Output, res.Output[max(0, len(res.Output)-100):])
	}
}

func TestCommandNotFound(t *testing.T) {
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: []string{"/nonexistent/fshealth-tool", "x"}}, Target{})
	if res.OK || !strings.HasPrefix(res.Outcome, "failed: program /nonexistent/fshealth-tool: ") {
		t.Errorf("outcome %q", res.Outcome)
	}
}

// TestDryRunRunsNothing proves that a dry run runs nothing: a command that
// would create a file does not, while the same command for real does.
func TestDryRunRunsNothing(t *testing.T) {
	dir := t.TempDir()
	touch, err := LookPath("touch")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: Command, Argv: []string{"touch", filepath.Join(dir, "{event_id}")}}
	target := Target{EventID: "created"}
	res := (&Runner{DryRun: true}).Run(context.Background(), spec, target)
	want := []string{touch, filepath.Join(dir, "created")}
	if !res.OK || !res.DryRun || !slices.Equal(res.Argv, want) || res.Outcome != "dry run: would run: "+FormatArgv(want) || res.Output != "" {
		t.Errorf("dry run: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "created")); !os.IsNotExist(err) {
		t.Fatalf("dry run created the file (stat: %v)", err)
	}
	res = (&Runner{}).Run(context.Background(), spec, target)
	if !res.OK || res.DryRun {
		t.Errorf("real run: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "created")); err != nil {
		t.Fatalf("real run did not create the file: %v", err)
	}
}

// TestCommandHostileValues: placeholder values with spaces, newlines,
// quotes and shell syntax reach the program as exact argv elements and as
// environment variables, and nothing in them is executed. (The privileged
// TestCommandHostileMountpoint does the same with a real mount point.)
func TestCommandHostileValues(t *testing.T) {
	dir := t.TempDir()
	hostile := "a b\n$(touch " + dir + "/pwned1); touch " + dir + "/pwned2 `touch " + dir + "/pwned3` '\"{device}"
	checkHostileCommand(t, dir, Target{
		Device:      "/dev/sda1; touch " + dir + "/pwned4",
		FSType:      "ext4",
		UUID:        "$(touch " + dir + "/pwned5)",
		Mountpoints: []string{hostile},
		EventID:     "{mountpoint}",
		Errno:       "EUCLEAN\nX=1",
	})
}

// checkHostileCommand runs the record helper for target with every
// placeholder and checks what it received and that nothing under dir named
// pwned* was created.
func checkHostileCommand(t *testing.T, dir string, target Target) {
	t.Helper()
	out := filepath.Join(dir, "record.json")
	argv := helperArgv(t, "record", out, "{mountpoint}", "--mp={mountpoint}!", "{device}", "{uuid}", "{fstype}", "{event_id}", "{errno}", "{{mountpoint}}")
	res := (&Runner{}).Run(context.Background(), Spec{Name: Command, Argv: argv}, target)
	if !res.OK {
		t.Fatalf("command failed: %+v", res)
	}
	if strings.ContainsAny(res.Outcome, "\n\r") {
		t.Errorf("outcome is not one line: %q", res.Outcome)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rec helperRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	mp := target.Mountpoints[0]
	want := append(argv[:4:4], mp, "--mp="+mp+"!", target.Device, target.UUID, target.FSType, target.EventID, target.Errno, "{mountpoint}")
	if !slices.Equal(rec.Argv, want) {
		t.Errorf("argv received:\n%q\nwant:\n%q", rec.Argv, want)
	}
	if !slices.Equal(res.Argv, want) {
		t.Errorf("Result.Argv:\n%q\nwant:\n%q", res.Argv, want)
	}
	wantEnv := []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"FSHEALTH_DEVICE=" + target.Device,
		"FSHEALTH_MOUNTPOINT=" + mp,
		"FSHEALTH_UUID=" + target.UUID,
		"FSHEALTH_FSTYPE=" + target.FSType,
		"FSHEALTH_EVENT_ID=" + target.EventID,
		"FSHEALTH_ERRNO=" + target.Errno,
	}
	slices.Sort(wantEnv)
	slices.Sort(rec.Env)
	if !slices.Equal(rec.Env, wantEnv) {
		t.Errorf("environment received:\n%q\nwant:\n%q", rec.Env, wantEnv)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "pwned*"))
	if len(matches) > 0 {
		t.Errorf("hostile values were executed: %v exist", matches)
	}
}
