package kmsg

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// forgeries are the kernel log messages a user without privileges can make
// the kernel print through a segfault report: the process name (15 bytes)
// starts the record and the program's file name follows " in ". One for
// every kind of message Classify recognises.
var forgeries = []struct{ comm, file string }{
	{"XFS (loop0): ", "Shutting down filesystem"},
	{"XFS (loop0): ", "User initiated shutdown received."},
	{"XFS (loop0): ", "Metadata corruption detected at xfs_x+0x1, inode 0x84 dinode"},
	{"XFS (loop0): ", "Corruption detected. Unmount and run xfs_repair"},
	{"x\nXFS (loop0): ", "Shutting down filesystem"},
	{"EXT4-fs (loop0)", ": Remounting filesystem read-only"},
	{"EXT4-fs error (", "device loop0): ext4_lookup:1: comm x: bogus i_mode"},
	{"Aborting journa", "l on device loop0-8."},
	{"JBD2: Detected ", "IO errors while flushing file data on loop0-8"},
	{"BTRFS info (dev", "ice loop0): forced readonly"},
	{"BTRFS error (de", "vice loop0): open_ctree failed: -5"},
	{"I/O error, dev ", "loop0, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"},
	{"Buffer I/O erro", "r on dev loop0, logical block 0, async page read"},
	{"loop0: lost fil", "esystem error report for type 2 error -117"},
}

// TestForgedKernelMessagesAreIgnored makes the kernel log, for real, every
// forgery above as uid 65534 and checks that none of the records is
// recognised as a file system error. It first checks that each forged
// record really came out as the user wanted it (the process name first,
// the file name in it), so the test cannot pass by the kernel printing
// something else.
func TestForgedKernelMessagesAreIgnored(t *testing.T) {
	s := testutil.NewSegfaulter(t)
	r, err := Open(DefaultPath, Options{Start: StartEnd})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, f := range forgeries {
		rec := forge(t, s, r, f.comm, f.file)
		if !strings.HasPrefix(rec.Message, f.comm) || !strings.Contains(rec.Message, " in "+f.file+"[") {
			t.Fatalf("the kernel's segfault report is not the forgery it should be:\n%s", rec.String())
		}
		if m, ok := Classify(rec); ok {
			t.Errorf("forged record classified as %s:\n%s", describe(m), rec.String())
		}
		t.Logf("ignored, as it must be: %q (level %d)", rec.Message, rec.Level)
	}
}

// forge runs the faulting program as comm/file and returns the kernel's
// record of its segfault. The kernel rate-limits these reports (10 every 5
// seconds), so the program runs again every 2 seconds until its report
// comes, for up to 30 seconds. A report without the file name is not the
// forgery (the kernel names the file only if it gets the faulting
// process's memory map lock at once, print_vma_addr's trylock, which a
// busy machine can miss): it must not be recognised either, and the
// program runs again.
func forge(t *testing.T, s *testutil.Segfaulter, r *Reader, comm, file string) Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var marks []string
	for time.Now().Before(deadline) {
		pid := s.Fault(comm, file)
		marks = append(marks, fmt.Sprintf("[%d]: segfault at ", pid))
		retry := time.Now().Add(2 * time.Second)
		for time.Now().Before(retry) {
			r.SetReadDeadline(retry)
			it, err := r.Next()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatalf("reading %s: %v", DefaultPath, err)
			}
			rec, ok := it.(Record)
			if !ok || !rec.Kernel() {
				continue
			}
			for _, m := range marks {
				if !strings.Contains(rec.Message, m) {
					continue
				}
				if strings.Contains(rec.Message, " in "+file+"[") {
					return rec
				}
				if m, ok := Classify(rec); ok {
					t.Errorf("a segfault report without its file name classified as %s:\n%s", describe(m), rec.String())
				}
				t.Logf("the kernel's report lacks the file name, faulting again: %q", rec.Message)
				retry = time.Now() // fault again at once
			}
		}
	}
	t.Fatalf("the kernel logged no segfault report for %q within 30s", comm)
	return Record{}
}
