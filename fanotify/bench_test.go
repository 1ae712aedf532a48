package fanotify_test

import (
	"runtime"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
)

// benchBufferSize is the size of the benchmark's buffer: 64 KiB, the size of
// fanotify.ReadBufferSize (which exists on Linux only).
const benchBufferSize = 64 << 10

// benchBuffer fills a benchBufferSize buffer, as one full read(2) would, with
// FAN_FS_ERROR events laid out as the kernel writes them, alternating
// between errors not tied to an inode (FILEID_INVALID, 56 bytes) and ext4
// inode errors (8-byte FILEID_INO32_GEN handle, 64 bytes). It returns the
// buffer and the number of events in it.
func benchBuffer() ([]byte, int) {
	var buf []byte
	n := 0
	for {
		var ev []byte
		if n%2 == 0 {
			ev = sbErrorEvent(int32(1000+n), linuxEUCLEAN, uint32(1+n%5))
		} else {
			ev = inodeErrorEvent(int32(1000+n), linuxEUCLEAN, uint32(12+n), uint32(n*7919))
		}
		if len(buf)+len(ev) > benchBufferSize {
			return buf, n
		}
		buf = append(buf, ev...)
		n++
	}
}

// BenchmarkParse measures Parse over a full read buffer of error events,
// reusing the destination slice as a reading loop does. Besides ns/op and
// allocs/op (one op is one buffer), it reports events/s and
// allocs/event.
func BenchmarkParse(b *testing.B) {
	buf, n := benchBuffer()
	dst := make([]fanotify.Event, 0, n)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	iters := 0
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		var err error
		dst, err = fanotify.Parse(dst[:0], buf)
		if err != nil || len(dst) != n {
			b.Fatalf("Parse = %d events, %v; want %d", len(dst), err, n)
		}
		iters++
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(iters*n), "allocs/event")
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(iters*n)/s, "events/s")
	}
	b.ReportMetric(float64(n), "events/op")
}
