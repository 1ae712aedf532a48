package kmsg

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// monotonicNow returns the current CLOCK_MONOTONIC reading.
func monotonicNow(t testing.TB) time.Duration {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
