package kmsg

import (
	"fmt"
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

// uname returns the running kernel's release (uname -r).
func uname(t testing.TB) string {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t testing.TB, major, minor int) bool {
	t.Helper()
	var ma, mi int
	if _, err := fmt.Sscanf(uname(t), "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", uname(t), err)
	}
	return ma > major || ma == major && mi >= minor
}
