package kmsg

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

func TestMain(m *testing.M) { testutil.MainInMountNamespace(m) }

// step is one result of a fakeSource Read: data, an error, or both.
type step struct {
	data string
	err  error
}

// fakeSource is a /dev/kmsg stand-in returning its steps in order, then
// io.EOF.
type fakeSource struct {
	mu     sync.Mutex
	steps  []step
	closed bool
}

func (f *fakeSource) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, os.ErrClosed
	}
	if len(f.steps) == 0 {
		return 0, io.EOF
	}
	s := f.steps[0]
	f.steps = f.steps[1:]
	return copy(p, s.data), s.err
}

func (f *fakeSource) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// rec returns a record line for sequence number seq.
func rec(seq uint64) string { return fmt.Sprintf("6,%d,%d,-;message %d\n", seq, seq*10, seq) }

// epipe is what os.File.Read on /dev/kmsg returns for lost records.
var epipe = &os.PathError{Op: "read", Path: "/dev/kmsg", Err: syscall.EPIPE}

// summary reads r to the end and describes what it returned, one word per
// item: "5" for record 5, "gap:3-4/2" for Gap{From: 3, Next: 5, Missed: 2},
// "gap:?<5" for a gap of unknown size, "err" for an ErrMalformed error.
func summary(t *testing.T, r *Reader) string {
	t.Helper()
	var out []string
	for {
		it, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrMalformed) {
			out = append(out, "err")
			continue
		}
		if err != nil {
			t.Fatalf("Next after %v: %v", out, err)
		}
		switch it := it.(type) {
		case Record:
			if it.Received.IsZero() {
				t.Errorf("record %d has no Received time", it.Seq)
			}
			out = append(out, fmt.Sprint(it.Seq))
		case Gap:
			if it.Missed == 0 {
				out = append(out, fmt.Sprintf("gap:?<%d", it.Next))
			} else {
				if it.Next-it.From != it.Missed {
					t.Errorf("inconsistent %+v", it)
				}
				out = append(out, fmt.Sprintf("gap:%d-%d/%d", it.From, it.Next-1, it.Missed))
			}
		default:
			t.Fatalf("unexpected item %T", it)
		}
	}
	return strings.Join(out, " ")
}

func TestReaderGaps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  Options
		steps []step
		want  string
	}{
		{"consecutive", Options{}, []step{{data: rec(7)}, {data: rec(8)}, {data: rec(9)}}, "7 8 9"},
		{"EPIPE", Options{}, []step{{data: rec(7)}, {err: epipe}, {data: rec(12)}, {data: rec(13)}}, "7 gap:8-11/4 12 13"},
		{"EPIPE twice", Options{}, []step{{data: rec(7)}, {err: epipe}, {err: epipe}, {data: rec(20)}}, "7 gap:8-19/12 20"},
		{"jump without EPIPE", Options{}, []step{{data: rec(1)}, {data: rec(3)}, {data: rec(4)}}, "1 gap:2-2/1 3 4"},
		{"EPIPE first", Options{}, []step{{err: epipe}, {data: rec(100)}, {data: rec(101)}}, "gap:?<100 100 101"},
		{"EPIPE without jump", Options{}, []step{{data: rec(5)}, {err: epipe}, {data: rec(6)}}, "5 6"},
		{"backwards", Options{}, []step{{data: rec(5)}, {data: rec(2)}, {data: rec(3)}}, "5 2 3"},
		{"several per read", Options{}, []step{{data: rec(1) + rec(2) + "6,3,30,-;x\n K=v\n" + rec(5)}}, "1 2 3 gap:4-4/1 5"},
		{"data with error", Options{}, []step{{data: rec(1), err: epipe}, {data: rec(9)}}, "1 gap:2-8/7 9"},
		{"malformed", Options{}, []step{{data: rec(1)}, {data: "garbage\n"}, {data: rec(2)}}, "1 err 2"},
		{"blank", Options{}, []step{{data: "\n"}, {data: rec(1)}}, "1"},
		{"start seq", Options{Start: StartSeq, Seq: 3}, []step{{data: rec(1)}, {data: rec(2)}, {data: rec(3)}, {data: rec(4)}}, "3 4"},
		{"start seq overwritten", Options{Start: StartSeq, Seq: 3}, []step{{data: rec(10)}, {data: rec(11)}}, "gap:3-9/7 10 11"},
		{"start seq EPIPE", Options{Start: StartSeq, Seq: 3}, []step{{err: epipe}, {data: rec(8)}}, "gap:3-7/5 8"},
		{"start seq in future", Options{Start: StartSeq, Seq: 50}, []step{{data: rec(1)}, {data: rec(2)}}, ""},
		{"start oldest", Options{Start: StartOldest}, []step{{data: rec(0)}, {data: rec(1)}}, "0 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(&fakeSource{steps: tc.steps}, tc.opts)
			if got := summary(t, r); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if err := r.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	src := &fakeSource{steps: []step{{data: rec(1)}, {err: boom}, {data: rec(2)}}}
	r := NewReader(src, Options{})
	if it, err := r.Next(); err != nil || it.(Record).Seq != 1 {
		t.Fatalf("Next = %v, %v", it, err)
	}
	if _, err := r.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next error %v, want boom", err)
	}
	if it, err := r.Next(); err != nil || it.(Record).Seq != 2 {
		t.Fatalf("Next after an error = %v, %v", it, err)
	}
	if err := r.SetReadDeadline(time.Now()); !errors.Is(err, os.ErrNoDeadline) {
		t.Errorf("SetReadDeadline on a source without deadlines: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if !src.closed {
		t.Error("Close did not close the source")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}

// chunkSource returns data in pieces of n bytes.
type chunkSource struct {
	data string
	n    int
}

func (c *chunkSource) Read(p []byte) (int, error) {
	if c.data == "" {
		return 0, io.EOF
	}
	k := min(c.n, len(c.data), len(p))
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

func TestReaderStreamChunks(t *testing.T) {
	data := rec(1) + "3,2,20,-;with fields\n SUBSYSTEM=block\n DEVICE=b7:0\n" + rec(3) + rec(5) + "6,6,60,-;last, no newline"
	for n := 1; n <= len(data); n++ {
		r := newReader(&chunkSource{data: data, n: n}, Options{})
		r.stream = true
		var got []Record
		for {
			it, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("chunks of %d: %v", n, err)
			}
			if rec, ok := it.(Record); ok {
				got = append(got, rec)
			}
		}
		if len(got) != 5 || got[1].Fields["DEVICE"] != "b7:0" || got[1].Fields["SUBSYSTEM"] != "block" || got[4].Message != "last, no newline" {
			t.Fatalf("chunks of %d: got %+v", n, got)
		}
	}
}

func TestOpenFixtureFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "kmsg.txt")
	content := rec(1) + rec(2) + "3,3,30,-;I/O error, dev loop9, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n SUBSYSTEM=block\n" + rec(6)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{Start: StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, r); got != "1 2 3 gap:4-5/2 6" {
		t.Errorf("StartOldest: %q", got)
	}
	r.Close()

	r, err = Open(p, Options{Start: StartSeq, Seq: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, r); got != "2 3 gap:4-5/2 6" {
		t.Errorf("StartSeq 2: %q", got)
	}
	r.Close()

	r, err = Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(t, r); got != "" {
		t.Errorf("StartEnd: %q", got)
	}
	r.Close()

	if _, err := Open(filepath.Join(dir, "missing"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing file: %v", err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Error("Open of a directory succeeded")
	}
	if _, err := Open(p, Options{Start: 7}); err == nil {
		t.Error("Open with an invalid start succeeded")
	}
}

func TestOpenFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Nothing written yet: the deadline ends the wait, the Reader stays usable.
	r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Next with a deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})
	go func() {
		w.WriteString(rec(4))
		time.Sleep(10 * time.Millisecond)
		w.WriteString(rec(5) + rec(7))
	}()
	var got []string
	for len(got) < 4 {
		it, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%v", it))
	}
	if got[2] != "lost 1 kernel log records (6 to 6)" || !strings.Contains(got[3], "message 7") {
		t.Errorf("got %q", got)
	}

	// Close makes a pending Next return.
	done := make(chan error)
	go func() {
		_, err := r.Next()
		done <- err
	}()
	testutil.WaitBlocked(t, 1, "kmsg.(*Reader).Next")
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("pending Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

// writeKmsg writes text to /dev/kmsg as user space, with a fresh file each
// time (the kernel rate-limits writes per open file).
func writeKmsg(t testing.TB, text string) {
	t.Helper()
	if err := os.WriteFile(DefaultPath, []byte(text), 0); err != nil {
		t.Fatalf("writing to %s: %v", DefaultPath, err)
	}
}

// nextRecordMatching reads r until a record whose message contains s, with
// a deadline.
func nextRecordMatching(t testing.TB, r *Reader, s string) Record {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer r.SetReadDeadline(time.Time{})
	for {
		it, err := r.Next()
		if err != nil {
			t.Fatalf("waiting for a record with %q: %v", s, err)
		}
		if g, ok := it.(Gap); ok {
			t.Logf("gap while waiting for %q: %v", s, g)
		}
		if rec, ok := it.(Record); ok && strings.Contains(rec.Message, s) {
			return rec
		}
	}
}

func TestDevKmsg(t *testing.T) {
	testutil.RequireRoot(t)
	r, err := Open(DefaultPath, Options{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	marker := fmt.Sprintf("fshealth-kmsg-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	before := monotonicNow(t)
	writeKmsg(t, "<3>"+marker+"\n")
	m := nextRecordMatching(t, r, marker)
	if m.Facility != FacilityUser || m.Level != LevelErr || m.Kernel() {
		t.Errorf("record written by user space: facility %d level %d", m.Facility, m.Level)
	}
	if m.Time < before-time.Second || m.Time > monotonicNow(t)+time.Second {
		t.Errorf("record time %v, monotonic clock was %v before writing", m.Time, before)
	}
	if d := time.Since(m.WallTime()); d < -time.Second || d > 5*time.Second {
		t.Errorf("WallTime %v is %v from now", m.WallTime(), d)
	}

	// A user space record that looks like a file system error is not one.
	spoof := fmt.Sprintf("EXT4-fs error (device loop999): ext4_lookup:1787: inode #13: comm ls: %s", marker)
	writeKmsg(t, "<2>"+spoof+"\n")
	s := nextRecordMatching(t, r, spoof)
	if _, ok := Classify(s); ok {
		t.Errorf("user space record %q classified", s.String())
	}
	s.Facility = FacilityKern
	if _, ok := Classify(s); !ok {
		t.Errorf("the same record with facility 0 is not classified: the test is wrong")
	}

	// The oldest records are older than the marker; StartSeq finds it again.
	old, err := Open(DefaultPath, Options{Start: StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	it, err := old.Next()
	if err != nil {
		t.Fatal(err)
	}
	if first, ok := it.(Record); !ok || first.Seq >= m.Seq {
		t.Errorf("first record from the oldest is %v, marker is %d", it, m.Seq)
	}
	if again := nextRecordMatching(t, old, marker); again.Seq != m.Seq {
		t.Errorf("marker read again from the oldest as %d, was %d", again.Seq, m.Seq)
	}
	from, err := Open(DefaultPath, Options{Start: StartSeq, Seq: m.Seq})
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	from.SetReadDeadline(time.Now().Add(5 * time.Second))
	if it, err := from.Next(); err != nil || !reflect.DeepEqual(it.(Record).Message, m.Message) {
		t.Errorf("StartSeq %d: first item %v, %v", m.Seq, it, err)
	}

	// Close makes a pending Next return promptly.
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := r.Next(); err != nil {
				done <- err
				return
			}
		}
	}()
	testutil.WaitBlocked(t, 1, "kmsg.(*Reader).Next")
	start := time.Now()
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Next after Close: %v", err)
		}
		t.Logf("Close unblocked Next in %v", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Next")
	}
}

func TestBootID(t *testing.T) {
	id, err := BootID()
	if err != nil {
		t.Fatal(err) // every Linux kernel has /proc/sys/kernel/random/boot_id
	}
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("BootID() = %q", id)
	}
}

// TestDevKmsgFlood makes the kernel overwrite records before the Reader
// reads them, by writing more than the kernel's log buffer holds from user
// space, and checks that the loss is reported as a Gap. It wipes the kernel
// log of everything else, so it only runs when FSHEALTH_KMSG_FLOOD=1, or in
// CI (CI=true), on a machine of its own.
func TestDevKmsgFlood(t *testing.T) {
	testutil.RequireRoot(t)
	if os.Getenv("FSHEALTH_KMSG_FLOOD") != "1" && !testutil.InCI() {
		testutil.Skip(t, testutil.Missing, "set FSHEALTH_KMSG_FLOOD=1 to run (CI runs it): it floods the kernel log, which loses its older records")
	}
	r, err := Open(DefaultPath, Options{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tag := fmt.Sprintf("fshealth-kmsg-flood-%d-%d", os.Getpid(), time.Now().UnixNano())
	writeKmsg(t, "<6>"+tag+" start\n")
	start := nextRecordMatching(t, r, tag+" start")

	// Write until the oldest record in the kernel's buffer is newer than
	// the one read last, 256 KiB at a time, at most 64 MiB (the largest
	// buffer CONFIG_LOG_BUF_SHIFT allows is 32 MiB). The kernel
	// rate-limits user space writes per open file (10 at a time by
	// default): open the device anew for every 10 lines.
	pad := strings.Repeat("x", 900)
	line := 0
	for written := 0; oldestSeq(t) <= start.Seq+1; {
		if written >= 64<<20 {
			t.Fatalf("the kernel log still holds record %d after %d bytes", start.Seq+1, written)
		}
		for end := written + 256<<10; written < end; {
			f, err := os.OpenFile(DefaultPath, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				n, err := fmt.Fprintf(f, "<6>%s %d %s\n", tag, line, pad)
				if err != nil {
					f.Close()
					t.Fatalf("line %d: %v", line, err)
				}
				written += n
				line++
			}
			f.Close()
		}
	}
	writeKmsg(t, "<6>"+tag+" end\n")

	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	it, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	g, ok := it.(Gap)
	if !ok {
		t.Fatalf("first item after the flood is %v, want a Gap", it)
	}
	t.Logf("%v", g)
	if g.From != start.Seq+1 || g.Missed == 0 || g.Missed != g.Next-g.From {
		t.Errorf("gap %+v after record %d", g, start.Seq)
	}
	it, err = r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := it.(Record); !ok || rec.Seq != g.Next {
		t.Errorf("item after the gap: %v, want record %d", it, g.Next)
	}
	end := nextRecordMatching(t, r, tag+" end")
	t.Logf("flood: %d records from %d to %d, %d lost", end.Seq-start.Seq-1, start.Seq+1, end.Seq-1, g.Missed)
}

// oldestSeq returns the sequence number of the oldest record in the
// kernel log.
func oldestSeq(t *testing.T) uint64 {
	t.Helper()
	r, err := Open(DefaultPath, Options{Start: StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		it, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec, ok := it.(Record); ok {
			return rec.Seq
		}
	}
}
