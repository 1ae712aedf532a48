package kmsg

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fixture is a record of testdata/messages.txt and its expected class.
type fixture struct {
	line   int
	record string
	want   *Message // nil: not recognised
}

// readFixtures parses testdata/messages.txt (its format is described at
// its top).
func readFixtures(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open("testdata/messages.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	var rec strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") || line == "":
		case strings.HasPrefix(line, "=>"):
			if rec.Len() == 0 {
				t.Fatalf("messages.txt:%d: expectation without a record", n)
			}
			want, err := parseExpectation(strings.TrimSpace(strings.TrimPrefix(line, "=>")))
			if err != nil {
				t.Fatalf("messages.txt:%d: %v", n, err)
			}
			out = append(out, fixture{line: start, record: rec.String(), want: want})
			rec.Reset()
		case strings.HasPrefix(line, " "):
			if rec.Len() == 0 {
				t.Fatalf("messages.txt:%d: continuation line without a record", n)
			}
			rec.WriteString(line + "\n")
		default:
			if rec.Len() != 0 {
				t.Fatalf("messages.txt:%d: record without an expectation before it", n)
			}
			start = n
			rec.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if rec.Len() != 0 {
		t.Fatalf("messages.txt: last record has no expectation")
	}
	return out
}

// parseExpectation parses "none" or "FSTYPE DEVICE KIND key=value...".
func parseExpectation(s string) (*Message, error) {
	if s == "none" {
		return nil, nil
	}
	f := strings.Fields(s)
	if len(f) < 3 {
		return nil, fmt.Errorf("expectation %q: want FSTYPE DEVICE KIND [key=value...]", s)
	}
	m := &Message{FSType: f[0], Device: f[1], Kind: Kind(f[2])}
	for _, kv := range f[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("expectation %q: %q is not key=value", s, kv)
		}
		var err error
		var n uint64
		switch k {
		case "errno":
			n, err = strconv.ParseUint(v, 10, 16)
			m.Errno = syscall.Errno(n)
		case "inode":
			m.Inode, err = strconv.ParseUint(v, 10, 64)
		case "sector":
			m.Sector, err = strconv.ParseUint(v, 10, 64)
		case "func":
			m.Function = v
		case "path":
			m.DevicePath = v
		case "op":
			m.Op = v
		default:
			err = fmt.Errorf("unknown key")
		}
		if err != nil {
			return nil, fmt.Errorf("expectation %q: %s: %v", s, kv, err)
		}
	}
	return m, nil
}

func TestClassifyFixtures(t *testing.T) {
	fixtures := readFixtures(t)
	if len(fixtures) < 50 {
		t.Fatalf("only %d fixtures", len(fixtures))
	}
	kinds := map[Kind]bool{}
	for _, fx := range fixtures {
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			t.Errorf("messages.txt:%d: %v", fx.line, err)
			continue
		}
		got, ok := Classify(r)
		if fx.want == nil {
			if ok {
				t.Errorf("messages.txt:%d: %q classified as %s, want none", fx.line, r.Message, describe(got))
			}
			continue
		}
		if !ok {
			t.Errorf("messages.txt:%d: %q not classified, want %s", fx.line, r.Message, describe(*fx.want))
			continue
		}
		kinds[got.Kind] = true
		if got.Text != r.Message || got.Record.Seq != r.Seq {
			t.Errorf("messages.txt:%d: Text/Record not set: %+v", fx.line, got)
		}
		if describe(got) != describe(*fx.want) {
			t.Errorf("messages.txt:%d: %q\n got %s\nwant %s", fx.line, r.Message, describe(got), describe(*fx.want))
		}
	}
	for _, k := range []Kind{KindCorruption, KindIOError, KindShutdown, KindChecksum, KindDeviceError, KindError} {
		if !kinds[k] {
			t.Errorf("no fixture of kind %s", k)
		}
	}
}

// describe formats the classified fields of m in the expectation syntax.
func describe(m Message) string {
	s := fmt.Sprintf("%s %s %s", m.FSType, m.Device, m.Kind)
	if m.Errno != 0 {
		s += fmt.Sprintf(" errno=%d", uint(m.Errno))
	}
	if m.Inode != 0 {
		s += fmt.Sprintf(" inode=%d", m.Inode)
	}
	if m.Function != "" {
		s += " func=" + m.Function
	}
	if m.DevicePath != "" {
		s += " path=" + m.DevicePath
	}
	if m.Op != "" {
		s += " op=" + m.Op
	}
	if m.Sector != 0 {
		s += fmt.Sprintf(" sector=%d", m.Sector)
	}
	return s
}

func TestClassifyRejectsUserSpace(t *testing.T) {
	for _, fx := range readFixtures(t) {
		if fx.want == nil {
			continue
		}
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			t.Fatal(err)
		}
		for _, fac := range []int{FacilityUser, 3, 23} {
			r.Facility = fac
			if m, ok := Classify(r); ok {
				t.Errorf("messages.txt:%d with facility %d classified as %s", fx.line, fac, describe(m))
			}
		}
	}
}

func TestJournalDevice(t *testing.T) {
	for in, want := range map[string]string{
		"loop0-8": "loop0", "dm-0-8": "dm-0", "sda1-8": "sda1", "sda-8": "sda", "nvme0n1p2-8": "nvme0n1p2",
		"dm-3": "dm-3", "sdb": "sdb", "x-": "x-", "-8": "-8", "loop1-j": "loop1-j", "md0-12": "md0",
		// The journal inode's number is any decimal number: the digits at
		// both ends of the range, and the characters just outside it.
		"loop0-90": "loop0", "loop0-109": "loop0", "loop0-8/": "loop0-8/", "loop0-:8": "loop0-:8",
	} {
		if got := journalDevice(in); got != want {
			t.Errorf("journalDevice(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClassify checks that Classify never panics and that whatever it
// recognises has a device, a known type and kind, and the record's text.
func FuzzClassify(f *testing.F) {
	for _, fx := range readFixtures(f) {
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Message)
	}
	fstypes := map[string]bool{FSExt4: true, FSXFS: true, FSBtrfs: true, FSBlock: true, FSGeneric: true}
	kinds := map[Kind]bool{KindCorruption: true, KindIOError: true, KindShutdown: true, KindChecksum: true, KindDeviceError: true, KindError: true}
	f.Fuzz(func(t *testing.T, text string) {
		m, ok := Classify(Record{Level: LevelErr, Message: text})
		if !ok {
			return
		}
		if m.Device == "" || !fstypes[m.FSType] || !kinds[m.Kind] || m.Text != text || m.Errno >= 4096 {
			t.Fatalf("Classify(%q) = %+v", text, m)
		}
		if strings.ContainsAny(m.Device, " \n") {
			t.Fatalf("Classify(%q): device %q has white space", text, m.Device)
		}
	})
}

// BenchmarkClassify measures Classify over the fixtures, most of which are
// recognised, and over a long line that starts like an XFS message.
func BenchmarkClassify(b *testing.B) {
	var recs []Record
	for _, fx := range readFixtures(b) {
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, r)
	}
	b.Run("fixtures", func(b *testing.B) {
		for b.Loop() {
			for _, r := range recs {
				Classify(r)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
	})
	b.Run("long", func(b *testing.B) {
		r := Record{Level: LevelErr, Message: "XFS (loop0): " + strings.Repeat("detected at 0x1 Shutting down ", 130)}
		for b.Loop() {
			Classify(r)
		}
	})
}

func TestClassifyLostReports(t *testing.T) {
	for _, line := range []string{
		"3,1,1,-;loop0: lost filesystem error report for type 2 error -117",
		"3,2,2,-;dm-3: lost file I/O error report for ino 1234 type 1 pos 0x1000 len 0x200 error -5",
	} {
		r, err := ParseRecord([]byte(line))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := Classify(r)
		if !ok || !m.LostReport || m.FSType != FSGeneric {
			t.Errorf("%q: %+v, %v; want a lost report", line, m, ok)
		}
	}
	r, _ := ParseRecord([]byte("2,3,3,-;EXT4-fs error (device loop0): ext4_lookup:1859: inode #12: comm ls: iget: bogus i_mode (377)"))
	if m, ok := Classify(r); !ok || m.LostReport {
		t.Errorf("an ext4 error is not a lost report: %+v", m)
	}
}
