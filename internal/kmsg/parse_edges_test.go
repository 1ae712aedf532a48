package kmsg

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnescapeEveryHexDigit: \xNN escapes are undone for every hexadecimal
// digit, lower and upper case (the kernel writes lower case; a tab is
// \x09), and kept as they are for the characters just outside each digit
// range.
func TestUnescapeEveryHexDigit(t *testing.T) {
	for in, want := range map[string]string{
		`a\x09b`:                  "a\tb",
		`\x30\x39`:                "09",
		`\x6a\x6f\x4A\x4F`:        "joJO",
		`\x0a\x0A\xa0\xA0`:        "\n\n\xa0\xa0",
		`\x7f\x7F`:                "\x7f\x7f",
		`end \x09`:                "end \t",
		`\x/0 \x:0 \x0/ \x0:`:     `\x/0 \x:0 \x0/ \x0:`,
		"\\x`0 \\xg0 \\x0` \\x0g": "\\x`0 \\xg0 \\x0` \\x0g",
		`\x@0 \xG0 \x0@ \x0G`:     `\x@0 \xG0 \x0@ \x0G`,
		`\x0`:                     `\x0`,
		`\\x41`:                   `\A`,
	} {
		r, err := ParseRecord([]byte("6,1,2,-;" + in + "\n K=" + in + "\n"))
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if r.Message != want || r.Fields["K"] != want {
			t.Errorf("%q: message %q, field %q; want %q", in, r.Message, r.Fields["K"], want)
		}
	}
}

// TestParseRecordBounds: the largest priority and timestamp are accepted,
// one more is not; an unknown flag with a "c" marks a continuation.
func TestParseRecordBounds(t *testing.T) {
	if r, err := ParseRecord([]byte(fmt.Sprintf("255,1,%d,-;x", maxDurationMicros))); err != nil || r.Facility != 31 || r.Level != 7 {
		t.Errorf("largest prio and timestamp: %+v, %v", r, err)
	}
	for _, in := range []string{"256,1,2,-;x", fmt.Sprintf("6,1,%d,-;x", maxDurationMicros+1)} {
		if _, err := ParseRecord([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	for flags, cont := range map[string]bool{"-": false, "c": true, "+": false, "xc": true, "x": false} {
		r, err := ParseRecord([]byte("6,1,2," + flags + ";x"))
		if err != nil || r.Continued != cont {
			t.Errorf("flags %q: continued %v (%v), want %v", flags, r.Continued, err, cont)
		}
	}
}

// TestClassifyLengthLimit: a message of maxTextLen bytes can still be the
// kernel's; one byte more cannot.
func TestClassifyLengthLimit(t *testing.T) {
	head := "EXT4-fs error (device sda1): ext4_lookup:1787: inode #13: comm ls: iget: bogus i_mode "
	msg := head + strings.Repeat("x", maxTextLen-len(head))
	if len(msg) != maxTextLen {
		t.Fatalf("test message is %d bytes", len(msg))
	}
	if _, ok := Classify(Record{Level: LevelCrit, Message: msg}); !ok {
		t.Errorf("a %d-byte message is not classified", len(msg))
	}
	if m, ok := Classify(Record{Level: LevelCrit, Message: msg + "x"}); ok {
		t.Errorf("a %d-byte message is classified: %+v", len(msg)+1, m.Device)
	}
}

// TestRecordsOverTheReadBuffer: a regular file is read as a stream of
// records: records of over 4,096 bytes, and records (and their
// continuation lines) that straddle the 32 KiB read buffer, come out whole.
func TestRecordsOverTheReadBuffer(t *testing.T) {
	var b strings.Builder
	var want []string
	for seq := 1; b.Len() < 3*readBufferSize; seq++ {
		text := fmt.Sprintf("record %d %s", seq, strings.Repeat("y", (seq*977)%6000))
		fmt.Fprintf(&b, "6,%d,%d,-;%s\n SUBSYSTEM=block\n DEVICE=+blk:%d\n", seq, seq, text, seq)
		want = append(want, text)
	}
	p := filepath.Join(t.TempDir(), "kmsg")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p, Options{Start: StartOldest})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	long := 0
	for i := 0; ; i++ {
		it, err := r.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("%d records, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatalf("record %d: %v", i+1, err)
		}
		rec, ok := it.(Record)
		if !ok || i >= len(want) || rec.Message != want[i] || rec.Fields["DEVICE"] != fmt.Sprintf("+blk:%d", i+1) || rec.Fields["SUBSYSTEM"] != "block" {
			t.Fatalf("item %d: %+v", i+1, it)
		}
		if len(rec.Message) > 4096 {
			long++
		}
	}
	if long == 0 {
		t.Error("no record over 4,096 bytes: the test proves nothing")
	}
}

// TestFIFOWriteOfManyRecords: one write to a FIFO holding several whole
// records (each with continuation lines) is split into those records.
func TestFIFOWriteOfManyRecords(t *testing.T) {
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
	data := "6,1,10,-;one\\x09tab\n K=v\\x3d1\n" + "6,2,20,-;two\n" + "6,3,30,-;three\n A=1\n B=2\n"
	if _, err := w.WriteString(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got := summary(t, r); got != "1 2 3" {
		t.Errorf("got %q, want the three records", got)
	}
}

// TestClassifyErrnoBounds: error numbers are taken from 1 to 4095, the
// kernel's MAX_ERRNO; 0 and larger numbers are no errno.
func TestClassifyErrnoBounds(t *testing.T) {
	for _, c := range []struct {
		level int
		msg   string
		errno int
	}{
		{LevelAlert, "XFS (loop1): log I/O error -4095", 4095},
		{LevelAlert, "XFS (loop1): log I/O error -1", 1},
		{LevelAlert, "XFS (loop1): log I/O error -4096", 0},
		{LevelAlert, "XFS (loop1): log I/O error 0", 0},
		{LevelCrit, "EXT4-fs error (device sda1) in ext4_foo:12: error -4095", 4095},
		{LevelCrit, "EXT4-fs error (device sda1) in ext4_foo:12: error 1", 1},
		{LevelCrit, "EXT4-fs error (device sda1) in ext4_foo:12: error -4096", 0},
		{LevelCrit, "EXT4-fs error (device sda1) in ext4_foo:12: error 0", 0},
	} {
		m, ok := Classify(Record{Level: c.level, Message: c.msg})
		if !ok {
			t.Errorf("%q not classified", c.msg)
			continue
		}
		if int(m.Errno) != c.errno {
			t.Errorf("%q: errno %d, want %d", c.msg, m.Errno, c.errno)
		}
	}
}
