package kmsg

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFd: a Reader made by NewReader has no descriptor (-1, which poll(2)
// ignores, rather than 1, standard output); one made by Open returns the
// descriptor it reads, until Close.
func TestFd(t *testing.T) {
	if fd := NewReader(strings.NewReader(""), Options{}).Fd(); fd != -1 {
		t.Errorf("NewReader: Fd() = %d, want -1", fd)
	}
	p := filepath.Join(t.TempDir(), "kmsg.txt")
	if err := os.WriteFile(p, []byte(rec(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nowait := range []bool{false, true} {
		r, err := Open(p, Options{Start: StartOldest, NoWait: nowait})
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(r.Fd(), &st); err != nil {
			t.Errorf("NoWait %v: Fd() = %d: %v", nowait, r.Fd(), err)
		} else if fi, err := os.Stat(p); err != nil || st.Ino != fi.Sys().(*syscall.Stat_t).Ino {
			t.Errorf("NoWait %v: Fd() = %d is not the file opened (%v)", nowait, r.Fd(), err)
		}
		r.Close()
	}
}

// TestStreamIsReadIncrementally: a regular file is read a buffer at a
// time, records being returned as they are complete, not once the whole
// file is read: after the first record of a file of many buffers, at most
// one buffer has been read; then every record comes, in order, each once.
func TestStreamIsReadIncrementally(t *testing.T) {
	var b strings.Builder
	const n = 5000
	for i := uint64(1); i <= n; i++ {
		b.WriteString(rec(i))
		if i%7 == 0 {
			b.WriteString(" SUBSYSTEM=block\n DEVICE=b7:1\n")
		}
	}
	if b.Len() < 4*readBufferSize {
		t.Fatalf("the file is %d bytes, not several buffers", b.Len())
	}
	p := filepath.Join(t.TempDir(), "kmsg.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{Start: StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	it, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if rc, ok := it.(Record); !ok || rc.Seq != 1 {
		t.Fatalf("first item %#v", it)
	}
	off, err := unix.Seek(r.Fd(), 0, unix.SEEK_CUR)
	if err != nil {
		t.Fatal(err)
	}
	if off > readBufferSize {
		t.Errorf("%d bytes read for the first record, more than the %d-byte buffer", off, readBufferSize)
	}
	for want := uint64(2); ; want++ {
		it, err := r.Next()
		if err == io.EOF {
			if want != n+1 {
				t.Errorf("EOF after record %d, want %d", want-1, n)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rc, ok := it.(Record)
		if !ok || rc.Seq != want {
			t.Fatalf("item %#v, want record %d", it, want)
		}
		if wantFields := want%7 == 0; (rc.Fields["DEVICE"] == "b7:1") != wantFields {
			t.Errorf("record %d: fields %v", want, rc.Fields)
		}
	}
}

// TestUnknownFlags: a flags field the ABI may grow (more letters) is
// accepted; the record is a continuation fragment when "c" is among them,
// first or not.
func TestUnknownFlags(t *testing.T) {
	for flags, want := range map[string]bool{"cx": true, "xc": true, "x": false, "-x": false, "c-": true} {
		r, err := ParseRecord([]byte("6,1,2," + flags + ";text\n"))
		if err != nil {
			t.Errorf("flags %q: %v", flags, err)
			continue
		}
		if r.Continued != want || r.Message != "text" {
			t.Errorf("flags %q: Continued %v, message %q; want %v, \"text\"", flags, r.Continued, r.Message, want)
		}
	}
}

// TestStringEscapesLikeTheKernel: String escapes what the kernel escapes —
// bytes below space, DEL (127) and up, the backslash — and nothing else:
// space and "~" (126) stay as they are.
func TestStringEscapesLikeTheKernel(t *testing.T) {
	r := Record{Level: LevelErr, Seq: 7, Time: 5, Message: "\x1f \x7e\x7f\x80\\", Fields: map[string]string{"K": "~\x7f"}}
	want := "3,7,0,-;\\x1f ~\\x7f\\x80\\x5c\n K=~\\x7f\n"
	if got := r.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
