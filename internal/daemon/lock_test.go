package daemon

import (
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
