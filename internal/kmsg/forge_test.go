package kmsg

import (
	"fmt"
	"strings"
	"testing"
)

// positives returns the records of testdata/messages.txt that Classify
// must recognise, with the line they are on.
func positives(t *testing.T) map[int]Record {
	t.Helper()
	out := map[int]Record{}
	for _, fx := range readFixtures(t) {
		if fx.want == nil {
			continue
		}
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := Classify(r); !ok {
			t.Fatalf("messages.txt:%d is not recognised to begin with", fx.line)
		}
		out[fx.line] = r
	}
	if len(out) < 50 {
		t.Fatalf("only %d recognised fixtures", len(out))
	}
	return out
}

// mustClassify classifies a record known to be recognised.
func mustClassify(t *testing.T, r Record) Message {
	t.Helper()
	m, ok := Classify(r)
	if !ok {
		t.Fatalf("%q is not recognised", r.Message)
	}
	return m
}

// TestClassifyLevelIsChecked: a record of a level the kernel never prints
// a message at is not that message.
func TestClassifyLevelIsChecked(t *testing.T) {
	for line, r := range positives(t) {
		ok := 0
		for lv := LevelEmerg; lv <= LevelDebug; lv++ {
			r.Level = lv
			if _, recognised := Classify(r); recognised {
				ok++
			}
		}
		// btrfs messages print their level as a word, so exactly one level
		// fits them; every other message has one or two.
		if ok < 1 || ok > 2 {
			t.Errorf("messages.txt:%d %q is recognised at %d of 8 levels, want 1 or 2", line, r.Message, ok)
		}
	}
}

// TestClassifyRejectsForgedPrefixes: a record is recognised only from its
// first byte, so anything in front of a real message — the
// "COMM[PID]: " of a process the user named — makes it unrecognisable. (A
// message that starts with its device name, such as fserror's lost
// reports, then names another device, which no file system is on.)
func TestClassifyRejectsForgedPrefixes(t *testing.T) {
	for line, r := range positives(t) {
		for _, pre := range []string{"x", " ", "a[1]: ", "bash[4242]: segfault at 0 ip 0 sp 0 error 6 in ", "\n", "systemd[1]: "} {
			f := r
			f.Message = pre + r.Message
			if m, ok := Classify(f); ok && m.Device == mustClassify(t, r).Device {
				t.Errorf("messages.txt:%d with %q in front classified as %s", line, pre, describe(m))
			}
		}
	}
}

// freeTail lists the messages whose format ends in text of the kernel's
// that no fixed pattern can spell out (a btrfs tree checker's reason, the
// path scrub prints, btrfs_handle_fs_error's own message): for them a
// suffix changes nothing, and nothing a user chooses can reach their start.
var freeTail = []string{" comm ", "corrupt leaf", "corrupt node", "checksum error at logical", "tree first key", "tree level mismatch", "bad tree block level", ": errno=", "physical"}

// TestClassifyRejectsForgedSuffixes: a message with more after its end is
// not that message.
func TestClassifyRejectsForgedSuffixes(t *testing.T) {
	for line, r := range positives(t) {
		free := false
		for _, s := range freeTail {
			free = free || strings.Contains(r.Message, s)
		}
		if free {
			continue
		}
		for _, suf := range []string{" in Shutting down filesystem[55d0+1000]", " x", "\nXFS (loop0): User initiated shutdown received."} {
			f := r
			f.Message = r.Message + suf
			if m, ok := Classify(f); ok && m.Device == mustClassify(t, r).Device {
				t.Errorf("messages.txt:%d with %q after it classified as %s", line, suf, describe(m))
			}
		}
	}
}

// TestClassifyRejectsSegfaultReports builds, from every recognised
// message, the segfault reports a user can make the kernel print: the
// process name (15 bytes at most) is the message's start, the name of the
// file that faulted is all of it. None is recognised, at the level the
// kernel prints them (KERN_INFO, KERN_EMERG for init) or at the message's
// own level.
func TestClassifyRejectsSegfaultReports(t *testing.T) {
	for line, r := range positives(t) {
		for cut := 1; cut <= maxComm && cut <= len(r.Message); cut++ {
			comm := r.Message[:cut]
			for _, lv := range []int{LevelInfo, LevelEmerg, r.Level} {
				f := r
				f.Level = lv
				f.Message = fmt.Sprintf("%s[4242]: segfault at 0 ip 000055d0c0de1129 sp 00007ffc0de04f00 error 6 in %s[55d0c0de1000+1000] likely on CPU 1 (core 1, socket 0)", comm, r.Message)
				if m, ok := Classify(f); ok {
					t.Errorf("messages.txt:%d: segfault report with comm %q classified as %s", line, comm, describe(m))
				}
				f.Message = fmt.Sprintf("%s: page allocation failure: order:0, mode:0x40cc0(GFP_KERNEL|__GFP_COMP), nodemask=(null),cpuset=/,mems_allowed=0", comm)
				if m, ok := Classify(f); ok {
					t.Errorf("messages.txt:%d: allocation failure with comm %q classified as %s", line, comm, describe(m))
				}
			}
		}
	}
}

// TestExt4CommCannotSteerKind: the process name in an ext4 error is the
// user's; words in it must not change what kind of error it is.
func TestExt4CommCannotSteerKind(t *testing.T) {
	const real = "EXT4-fs error (device loop1): ext4_lookup:1787: inode #13: comm %s: iget: bogus i_mode (377)"
	for _, comm := range []string{"ls", "x: i/o error", "a: checksum", "abc: ", ": csum: ", "io failure: x"} {
		r := Record{Level: LevelCrit, Message: fmt.Sprintf(real, comm)}
		m, ok := Classify(r)
		if !ok {
			t.Fatalf("comm %q: not classified", comm)
		}
		if m.Kind != KindCorruption {
			t.Errorf("comm %q: kind %s, want %s", comm, m.Kind, KindCorruption)
		}
	}
	for rest, want := range map[string]string{
		"ls: iget: bogus":            "bogus",
		"x: i/o error: iget: bogus":  "iget: bogus",
		"kworker/u8:1: Detected abo": "Detected abo",
		"no separator":               "",
		"0123456789abcdef: text":     "",
		"0123456789abcde: text":      "text",
		// A ": " that ends the record can end the name too (a name
		// "x: corrupt:" and no text): none of the name is returned.
		"x: corrupt: ": "",
	} {
		if got := ext4CommText(rest); got != want {
			t.Errorf("ext4CommText(%q) = %q, want %q", rest, got, want)
		}
	}
}
