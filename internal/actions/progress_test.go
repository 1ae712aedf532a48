package actions

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestParseE2fsckProgressRecorded: every line e2fsck really wrote to its
// progress descriptor (testdata/README.md says how it was recorded)
// parses, the passes come in order, and the last line is the end of pass 5.
func TestParseE2fsckProgressRecorded(t *testing.T) {
	b, err := os.ReadFile("testdata/e2fsck-progress.txt")
	if err != nil {
		t.Fatal(err)
	}
	var got []Progress
	if err := readLines(bytes.NewReader(b), func(line []byte) {
		p, ok := parseE2fsckProgress(line, time.Time{})
		if !ok {
			t.Errorf("refused the real line %q", line)
		}
		got = append(got, p)
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) < 100 {
		t.Fatalf("%d lines parsed, want the recording's 188", len(got))
	}
	passes := map[string]bool{}
	for i, p := range got {
		passes[p.Phase] = true
		if i > 0 && p.Phase < got[i-1].Phase {
			t.Errorf("line %d: %s after %s", i+1, p.Phase, got[i-1].Phase)
		}
	}
	if len(passes) != 5 {
		t.Errorf("passes seen: %v, want all 5", passes)
	}
	if first := got[0]; first.String() != "pass 1 of 5: 0% (0 of 32)" {
		t.Errorf("first line: %q", first.String())
	}
	if last := got[len(got)-1]; last.String() != "pass 5 of 5: 100% (64 of 64)" || last.Percent != 100 {
		t.Errorf("last line: %q (%v%%)", last.String(), last.Percent)
	}
}

// TestParseE2fsckProgressRefuses: lines that are not e2fsck's exact format
// are refused whole.
func TestParseE2fsckProgressRefuses(t *testing.T) {
	good := "3 12 40 /dev/sdb1"
	if p, ok := parseE2fsckProgress([]byte(good), time.Time{}); !ok || p.Phase != "pass 3 of 5" || p.Done != 12 || p.Total != 40 || p.Percent != 30 {
		t.Fatalf("%q: %+v %v", good, p, ok)
	}
	for _, line := range []string{
		"", "3", "3 12", "3 12 40", "3 12 40 ", "0 1 2 dev", "6 1 2 dev", "3 41 40 dev", "3 1 0 dev",
		"-3 1 2 dev", "3 -1 2 dev", "+3 1 2 dev", " 3 1 2 dev", "3  1 2 dev", "3\t1 2 dev", "03 1 2 dev",
		"3 1 2x dev", "3 1 99999999999999999999 dev", "3 1 184467440737095516160 dev", "3 1 2 dev\nX",
		"pass 3 of 5", "3 1.5 2 dev", "\x003 1 2 dev",
	} {
		if p, ok := parseE2fsckProgress([]byte(line), time.Time{}); ok {
			t.Errorf("accepted %q: %+v", line, p)
		}
	}
}

// FuzzParseE2fsckProgress: no input makes the parser panic or give a
// progress out of its bounds.
func FuzzParseE2fsckProgress(f *testing.F) {
	b, _ := os.ReadFile("testdata/e2fsck-progress.txt")
	for _, l := range strings.Split(string(b), "\n")[:10] {
		f.Add([]byte(l))
	}
	f.Add([]byte("5 18446744073709551615 18446744073709551615 x"))
	f.Fuzz(func(t *testing.T, line []byte) {
		p, ok := parseE2fsckProgress(line, time.Time{})
		if !ok {
			return
		}
		if p.Total == 0 || p.Done > p.Total || p.Percent < 0 || p.Percent > 100 || !strings.HasPrefix(p.Phase, "pass ") {
			t.Errorf("%q: %+v", line, p)
		}
		_ = p.String()
	})
}

// FuzzReadLines: every line passed on is at most maxProgressLine bytes
// and holds no newline, and reading ends.
func FuzzReadLines(f *testing.F) {
	f.Add([]byte("1 2 3 dev\n4 5 6 dev\n"), uint16(0))
	f.Add([]byte(strings.Repeat("x", maxProgressLine+10)+"\n1 2 3 d\n"), uint16(maxProgressLine))
	f.Fuzz(func(t *testing.T, data []byte, long uint16) {
		in := append(bytes.Repeat([]byte{'7'}, int(long)), data...)
		readLines(bytes.NewReader(in), func(line []byte) {
			if len(line) > maxProgressLine || bytes.IndexByte(line, '\n') >= 0 {
				t.Errorf("line of %d bytes passed on", len(line))
			}
		})
	})
}

// TestReadLinesBounds: a line over the bound is skipped whole, up to its
// newline, and the lines after it are read; a last line without its
// newline is dropped.
func TestReadLinesBounds(t *testing.T) {
	exact := strings.Repeat("a", maxProgressLine)
	in := "one\n" + strings.Repeat("b", 3*maxProgressLine) + "\n" + exact + "\ntwo\ncut"
	var got []string
	err := readLines(strings.NewReader(in), func(l []byte) { got = append(got, string(l)) })
	if want := []string{"one", exact, "two"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %d %q..., want one, %d a's, two", len(got), got[0], maxProgressLine)
	}
	if err != errLineTooLong {
		t.Errorf("error %v, want %v", err, errLineTooLong)
	}
}

func TestProgressString(t *testing.T) {
	p, _ := newProgress("", 13250000000, 32212254720, UnitBytes, time.Time{})
	if s := p.String(); s != "41% (12.3 GiB of 30.0 GiB)" {
		t.Errorf("got %q", s)
	}
	if p, _ := newProgress("", 2, 3, "", time.Time{}); p.Percent != 66.66 || p.String() != "66% (2 of 3)" {
		t.Errorf("2 of 3: %v%%, %q", p.Percent, p.String())
	}
	if p, _ := newProgress("", 1<<64-2, 1<<64-1, "", time.Time{}); p.Percent >= 100 {
		t.Errorf("not done, but %v%%", p.Percent)
	}
	if p, ok := newProgress("", 5, 0, UnitBytes, time.Time{}); ok {
		t.Errorf("a total of 0 gave %+v", p)
	}
	if p, _ := newProgress("", 50, 40, UnitBytes, time.Time{}); p.Done != 40 || p.Percent != 100 {
		t.Errorf("done past the total: %+v", p)
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536 << 20: "1.5 GiB", 1<<64 - 1: "16.0 EiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestCommandProgressFD: a command given {progress_fd} writes e2fsck's
// progress lines to it and they are reported, in order; it gets
// FSHEALTH_PROGRESS_FD too; a command without it gets neither.
func TestCommandProgressFD(t *testing.T) {
	defer func(d time.Duration) { progressEvery = d }(progressEvery)
	progressEvery = 0
	var mu sync.Mutex
	var got []string
	r := &Runner{Progress: func(p Progress) {
		mu.Lock()
		got = append(got, p.String())
		mu.Unlock()
	}}
	res := r.Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "progress", "{progress_fd}")}, Target{Device: "/dev/x"})
	if !res.OK || res.Argv[len(res.Argv)-1] != "3" {
		t.Fatalf("%+v", res)
	}
	mu.Lock()
	want := []string{"pass 1 of 5: 0% (0 of 10)", "pass 1 of 5: 50% (5 of 10)", "pass 2 of 5: 100% (3 of 3)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("progress %q, want %q", got, want)
	}
	mu.Unlock()
	if !strings.HasPrefix(res.Output, "3\n") {
		t.Errorf("output %q: FSHEALTH_PROGRESS_FD is not 3", res.Output)
	}

	got = nil
	res = r.Run(context.Background(), Spec{Name: Command, Argv: helperArgv(t, "progress", "none")}, Target{Device: "/dev/x"})
	if res.OK || len(got) != 0 || !strings.HasPrefix(res.Output, "\n") {
		t.Errorf("without {progress_fd}: %+v, progress %q", res, got)
	}
}
