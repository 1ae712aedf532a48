package testutil

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// WaitBlocked waits until at least n goroutines are blocked in the
// runtime's network poller (a read on a file descriptor with nothing to
// read) with a function whose name contains fn on their stack, such as
// "fanotify.(*Group).Read"; it fails t if that does not happen within 10
// seconds. It replaces a fixed sleep "to let the read block".
func WaitBlocked(t testing.TB, n int, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		all := buf[:runtime.Stack(buf, true)]
		for _, g := range bytes.Split(all, []byte("\n\n")) {
			if bytes.Contains(g, []byte("runtime_pollWait")) && bytes.Contains(g, []byte(fn)) {
				got++
			}
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines blocked reading in %s after 10s, want %d", got, fn, n)
		}
		time.Sleep(time.Millisecond)
	}
}
