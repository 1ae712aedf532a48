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

func TestLogFields(t *testing.T) {
	line := []byte(`time=2026-11-23T23:00:44.893Z level=ERROR msg="EUCLEAN on /dev/loop1 (\"x y\")" message_id=abc kind=error event_id=01JX error_count=17 device=/dev/loop1 mountpoint="/tmp/a b"`)
	got := logFields(line, "kind", "error_count", "device", "mountpoint", "msg")
	want := map[string]string{"kind": "error", "error_count": "17", "device": "/dev/loop1", "mountpoint": "/tmp/a b", "msg": `EUCLEAN on /dev/loop1 ("x y")`}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("logFields[%s] = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["event_id"]; ok {
		t.Errorf("logFields returned a key it was not asked for")
	}
}

func TestIsDaemonWarning(t *testing.T) {
	for line, want := range map[string]bool{
		`time=x level=WARN msg="alert delivery failed; will retry" channel=bench`:        true,
		`time=x level=ERROR msg="EUCLEAN on /dev/loop1" kind=error event_id=1 errno=117`: false,
		`time=x level=ERROR msg="critical alert" alert_id=abc-1 alert_type=error`:        false,
		`time=x level=INFO msg=ready filesystems=1`:                                      false,
	} {
		if got := isDaemonWarning([]byte(line)); got != want {
			t.Errorf("isDaemonWarning(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestHistogram(t *testing.T) {
	m := parseMetrics([]byte(`# HELP h x
# TYPE h histogram
h_bucket{le="0.001"} 10
h_bucket{le="0.004"} 90
h_bucket{le="+Inf"} 100
h_sum 0.25
h_count 100
other{channel="a"} 3
other{channel="b"} 4
`))
	if s := m.sum("other"); s != 7 {
		t.Errorf("sum(other) = %v, want 7", s)
	}
	h := m.histogram("h")
	if len(h.bounds) != 3 || h.count != 100 || h.sum != 0.25 {
		t.Fatalf("histogram = %+v", h)
	}
	// The 50th observation is 40 of the 80 in (0.001, 0.004].
	if q := h.quantile(0.5); q < 0.00249 || q > 0.00251 {
		t.Errorf("quantile(0.5) = %v, want 0.0025", q)
	}
	d := h.minus(histogram{bounds: h.bounds, counts: []float64{10, 10, 10}, sum: 0.01, count: 10})
	if d.count != 90 || d.counts[0] != 0 || d.counts[1] != 80 || d.counts[2] != 90 {
		t.Errorf("minus = %+v", d)
	}
}

func TestTOMLString(t *testing.T) {
	if got, want := tomlString("/tmp/a \"b\"\\c\n"), `"/tmp/a \"b\"\\c\u000A"`; got != want {
		t.Errorf("tomlString = %s, want %s", got, want)
	}
}
