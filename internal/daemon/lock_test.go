package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	dir := t.TempDir() + "/state"
	if pid, err := RunningPID(dir); pid != 0 || err != nil {
		t.Fatalf("no daemon yet: pid %d err %v", pid, err)
	}
	l, err := AcquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := RunningPID(dir); pid == 0 {
		t.Error("the lock holder is not seen as running")
	}
	if _, err := AcquireLock(dir); err == nil || !strings.Contains(err.Error(), "another fshealth daemon") {
		t.Errorf("second lock: %v", err)
	}
	l.Release()
	if pid, _ := RunningPID(dir); pid != 0 {
		t.Errorf("after release: pid %d", pid)
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: time.Minute}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 7: time.Minute, 50: time.Minute} {
		d := b.Delay(attempts)
		if d > want || d < want*8/10 {
			t.Errorf("Delay(%d) = %v, want within 20%% below %v", attempts, d, want)
		}
	}
}

// TestLockRefusesUntrusted: a pid file that is a symbolic link is not
// followed (its target is not truncated), and a state directory others may
// write to is refused.
func TestLockRefusesUntrusted(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, lockName)); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLock(dir); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("pid file a symlink: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
	open := t.TempDir()
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLock(open); err == nil || !strings.Contains(err.Error(), "writable by group or others") || !strings.Contains(err.Error(), open) {
		t.Errorf("world-writable directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(open, lockName)); err == nil {
		t.Error("a pid file was created in the refused directory")
	}
}
