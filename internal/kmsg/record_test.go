package kmsg

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Record
	}{
		{"6,4176,3969939906,-;XFS (loop1): Ending clean mount\n",
			Record{Facility: 0, Level: 6, Seq: 4176, Time: 3969939906 * time.Microsecond, Message: "XFS (loop1): Ending clean mount"}},
		{"13,4169,3961948564,-;kmsgexp test", // no trailing newline
			Record{Facility: 1, Level: 5, Seq: 4169, Time: 3961948564 * time.Microsecond, Message: "kmsgexp test"}},
		{"3,5004,5000004,-;I/O error, dev sda, sector 8\n SUBSYSTEM=block\n DEVICE=b8:0\n",
			Record{Level: 3, Seq: 5004, Time: 5000004 * time.Microsecond, Message: "I/O error, dev sda, sector 8",
				Fields: map[string]string{"SUBSYSTEM": "block", "DEVICE": "b8:0"}}},
		{"4,1,2,c,caller=T123,future=x;part\\x0aline \\x5cx41 \\xzz \\x4\n",
			Record{Level: 4, Seq: 1, Time: 2 * time.Microsecond, Continued: true, Caller: "T123",
				Message: "part\nline \\x41 \\xzz \\x4"}},
		{"0,0,0,-;\n", Record{}},
		{"255,18446744073709551615,0,-;x;y\n ODD\n =v\nnot a continuation\n K=a=b\n",
			Record{Facility: 31, Level: 7, Seq: 1<<64 - 1, Message: "x;y", Fields: map[string]string{"K": "a=b"}}},
	} {
		got, err := ParseRecord([]byte(tc.in))
		if err != nil {
			t.Errorf("ParseRecord(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseRecord(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseRecordMalformed(t *testing.T) {
	for _, in := range []string{
		"", "\n", "no header", "6,1,2;too few", "x,1,2,-;bad prio", "256,1,2,-;prio too big",
		"-1,1,2,-;negative", "6,x,2,-;bad seq", "6,1,-2,-;bad ts", "6,1,99999999999999999999,-;ts overflow",
		"6,1,9223372036854775807,-;ts overflows a Duration", "6,1,2,;empty flags",
		" 6,1,2,-;leading space",
	} {
		if r, err := ParseRecord([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseRecord(%q) = %+v, %v; want ErrMalformed", in, r, err)
		}
	}
}

func TestRecordStringRoundTrip(t *testing.T) {
	in := "4,1,2,c,caller=T123;a\\x0ab\\x5c\\xff\n K\\x3dx=v\\x0a\n Z=1\n"
	r, err := ParseRecord([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.String(); got != in {
		t.Errorf("String() = %q, want %q", got, in)
	}
	if !r.Continued || r.Fields["K=x"] != "v\n" || r.Message != "a\nb\\\xff" {
		t.Errorf("parsed %+v", r)
	}
}

func TestRecordKernel(t *testing.T) {
	for in, want := range map[string]bool{"3,1,1,-;x": true, "11,1,1,-;x": false, "7,1,1,-;x": true, "8,1,1,-;x": false} {
		r, err := ParseRecord([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if r.Kernel() != want {
			t.Errorf("%q: Kernel() = %v, want %v", in, r.Kernel(), want)
		}
	}
}

func TestWallTime(t *testing.T) {
	// A record logged "now" by the log clock must map to about now.
	var r Record
	r.Time = monotonicNow(t)
	if d := time.Since(r.WallTime()); d < -time.Second || d > time.Second {
		t.Errorf("WallTime of a record logged now is %v away from now", d)
	}
}

// FuzzParseRecord checks that ParseRecord never panics and that a parsed
// record survives String and ParseRecord again unchanged.
func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{
		"6,4176,3969939906,-;XFS (loop1): Ending clean mount\n",
		"3,5004,5000004,-;I/O error, dev sda, sector 8\n SUBSYSTEM=block\n DEVICE=b8:0\n",
		"4,1,2,c,caller=T123;part\\x0aline\\x5c\n",
		"2,4418,4030202392,-;EXT4-fs error (device loop1): ext4_lookup:1787: inode #13: comm ls: iget: bogus i_mode (377)\n",
		"255,18446744073709551615,0,-;x;y\n ODD\n =v\n K=a=b\n",
		"", ";", ",,,;", "\\x", "6,1,2,-;\\x4",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if r.Facility < 0 || r.Facility > 31 || r.Level < 0 || r.Level > 7 || r.Time < 0 {
			t.Fatalf("out of range: %+v", r)
		}
		s := r.String()
		r2, err := ParseRecord([]byte(s))
		if err != nil {
			t.Fatalf("ParseRecord(String()) of %q (%q): %v", data, s, err)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip of %q via %q:\n got %+v\nwant %+v", data, s, r2, r)
		}
		Classify(r) // must not panic either
		if strings.Count(s, "\n") != 1+len(r.Fields) {
			t.Fatalf("String() %q has the wrong number of lines for %d fields", s, len(r.Fields))
		}
	})
}
