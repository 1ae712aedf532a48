package loopfs

import "time"

// SetUnmountTimeouts shortens Unmount's busy retries and detach wait for a
// test and returns a function restoring the previous values.
func SetUnmountTimeouts(retries int, delay, detach time.Duration) (restore func()) {
	r, d, w := busyRetries, busyDelay, detachTimeout
	busyRetries, busyDelay, detachTimeout = retries, delay, detach
	return func() { busyRetries, busyDelay, detachTimeout = r, d, w }
}
