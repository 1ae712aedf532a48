package main

import (
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {1, 1}, {50, 50}, {90, 90}, {99, 99}, {99.5, 100}, {100, 100}} {
		if got := percentile(ds, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]time.Duration{7}, 50); got != 7 {
		t.Errorf("percentile of one value = %v, want 7", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile of nothing = %v, want 0", got)
	}
}

func TestTailWriter(t *testing.T) {
	var out strings.Builder
	w := &tailWriter{prefix: "> ", out: &out}
	w.Write([]byte("one\ntw"))
	w.Write([]byte("o\nthree"))
	if got, want := out.String(), "> one\n> two\n"; got != want {
		t.Errorf("copied %q, want %q", got, want)
	}
	if tail := w.tail(); !strings.HasSuffix(tail, "one\n    two\n    three") {
		t.Errorf("tail() = %q", tail)
	}
}

// sampleEvent is what fshealth prints for an error raised through
// trigger_fs_error on a loop device.
func sampleEvent() *event.Event {
	last := &ext4.ErrorInfo{Time: time.Unix(1795471702, 0).UTC(), Function: "trigger_test_error", Line: 129, Code: 5, Error: "EUCLEAN"}
	first := *last
	return &event.Event{
		Kind: event.KindError, Time: event.Time{Time: time.Now()}, Source: event.SourceFanotify,
		Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: 1, PID: 4242,
		FSID: "52d90bec:8e5b9d1c", Device: "/dev/loop0", DeviceNumber: "7:0", FSType: "ext4",
		UUID:        "0b7e6d2c-4f1a-4e4e-9a57-3c1f2d9e8a10",
		Mountpoints: []string{"/tmp/fshealth-bench-123456789/mnt"},
		Ext4:        &ext4.State{ErrorsCount: 93, FirstError: &first, LastError: last},
	}
}

// BenchmarkAppendJSON measures the JSON encoding of one event, one of the
// per-event steps `fshealth-bench stages` times end to end.
func BenchmarkAppendJSON(b *testing.B) {
	ev := sampleEvent()
	var line []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if line, err = event.AppendJSON(line[:0], ev); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(line)))
}
