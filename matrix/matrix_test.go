package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sampleLog is a guest console log as the host reads it: firmware escape
// sequences before the first marker, go test -v output between markers.
const sampleLog = "\x1bc\x1b[?7l\x1b[2J@@MATRIX KERNEL 6.1.0-56-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-11-16)\n" +
	"@@MATRIX BEGIN fanotify\n" +
	"=== RUN   TestGroupReadsRealError\n" +
	"--- PASS: TestGroupReadsRealError (0.22s)\n" +
	"=== RUN   TestMountEvents\n" +
	"    group_linux_test.go:192: kernel has no mount events: needs Linux 6.15\n" +
	"--- SKIP: TestMountEvents (0.01s)\n" +
	"=== RUN   TestMarkErrorsAreTyped\n" +
	"=== RUN   TestMarkErrorsAreTyped/sub\n" +
	"    group_linux_test.go:160: /proc: no fsid\n" +
	"    --- FAIL: TestMarkErrorsAreTyped/sub (0.00s)\n" +
	"--- FAIL: TestMarkErrorsAreTyped (0.01s)\n" +
	"FAIL\n" +
	"@@MATRIX END fanotify rc=1 seconds=0\n" +
	"@@MATRIX BEGIN internal/watch\n" +
	"=== RUN   TestSuperblockError\n" +
	"    watch_test.go:10: still running when the guest died\n"

func sampleRun(t *testing.T, log string, version string) (*guestRun, *guestReport) {
	t.Helper()
	g := &guestRun{Kernel: &kernel{Image: &debPackage{Version: version}}, Lines: strings.Split(log, "\n"), LogPath: "guest.log", Wall: time.Minute}
	return g, parseConsole(g.Lines)
}

func TestParseConsole(t *testing.T) {
	_, r := sampleRun(t, sampleLog, "6.1.192-2")
	if r.Uname != "6.1.0-56-cloud-amd64" || !strings.Contains(r.Build, "Debian 6.1.192-2") || r.Done {
		t.Errorf("uname %q build %q done %v", r.Uname, r.Build, r.Done)
	}
	fan := r.Packages["fanotify"]
	if fan == nil || !fan.Ended || fan.Status != "1" {
		t.Fatalf("fanotify package: %+v", fan)
	}
	for name, want := range map[string]string{"TestGroupReadsRealError": "PASS", "TestMountEvents": "SKIP", "TestMarkErrorsAreTyped": "FAIL"} {
		if got := fan.Tests[name]; got == nil || got.Result != want {
			t.Errorf("%s: %+v, want %s", name, got, want)
		}
	}
	if got := fan.Tests["TestMountEvents"].Reason(); got != "kernel has no mount events: needs Linux 6.15" {
		t.Errorf("skip reason %q", got)
	}
	if _, ok := fan.Tests["TestMarkErrorsAreTyped/sub"]; ok {
		t.Error("a subtest was taken for a top-level test")
	}
	watch := r.Packages["internal/watch"]
	if watch == nil || watch.Ended || watch.Tests["TestSuperblockError"].Result != "" {
		t.Errorf("internal/watch: %+v", watch)
	}
}

func TestEvaluate(t *testing.T) {
	mnt := &feature{Name: "mount events", Since: "6.15"}
	known := []knownFailure{{Before: "6.7", Match: `^/proc: no fsid$`, Reason: "old kernels"}}
	otherKnown := []knownFailure{{Match: `^something else$`, Reason: "r"}}
	timedOut := func(g *guestRun) { g.TimedOut = true }
	for _, c := range []struct {
		name    string
		test    guestTest
		version string
		change  func(*guestRun)
		want    cellState
		note    string // regexp
	}{
		{"pass", guestTest{Pkg: "./fanotify", Name: "TestGroupReadsRealError"}, "6.1.192-2", nil, cellPass, "^$"},
		{"skip where the feature is missing", guestTest{Pkg: "./fanotify", Name: "TestMountEvents", Needs: mnt}, "6.1.192-2", nil, cellSkip, "^kernel has no mount events"},
		{"skip where the feature exists", guestTest{Pkg: "./fanotify", Name: "TestMountEvents", Needs: mnt}, "6.18.15-1~bpo13+1", nil, cellFail, "^skipped on Linux 6.18.15, which has mount events"},
		{"skip without a feature", guestTest{Pkg: "./fanotify", Name: "TestMountEvents"}, "6.1.192-2", nil, cellFail, "^skipped: "},
		{"known failure", guestTest{Pkg: "./fanotify", Name: "TestMarkErrorsAreTyped", Known: known}, "6.1.192-2", nil, cellKnown, "^old kernels$"},
		{"known failure on another kernel", guestTest{Pkg: "./fanotify", Name: "TestMarkErrorsAreTyped", Known: known}, "6.12.117-1", nil, cellFail, "^failed: /proc: no fsid$"},
		{"failing another way", guestTest{Pkg: "./fanotify", Name: "TestMarkErrorsAreTyped", Known: otherKnown}, "6.1.192-2", nil, cellFail, "^failed: "},
		{"known failure that passes", guestTest{Pkg: "./fanotify", Name: "TestGroupReadsRealError", Known: otherKnown}, "6.1.192-2", nil, cellPass, "remove the entry"},
		{"crashed while running", guestTest{Pkg: "./internal/watch", Name: "TestSuperblockError"}, "6.1.192-2", nil, cellFail, "^not reported: the guest stopped .* while ./internal/watch ran$"},
		{"timed out while running", guestTest{Pkg: "./internal/watch", Name: "TestSuperblockError"}, "6.1.192-2", timedOut, cellFail, "^not reported: the guest timed out after 1m0s"},
		{"binary exited first", guestTest{Pkg: "./fanotify", Name: "TestMissing"}, "6.1.192-2", nil, cellFail, "exited with status 1 first$"},
		{"package never started", guestTest{Pkg: "./internal/cli", Name: "TestWatchJSONEndToEnd"}, "6.1.192-2", nil, cellFail, "^not run: .* before ./internal/cli started$"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, r := sampleRun(t, sampleLog, c.version)
			if c.change != nil {
				c.change(g)
			}
			got := evaluate(c.test, g, r)
			if got.State != c.want || !regexp.MustCompile(c.note).MatchString(got.Note) {
				t.Errorf("got state %d note %q, want %d matching %q", got.State, got.Note, c.want, c.note)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	for v, want := range map[string]string{"6.1.192-2": "6.1.192", "7.3.4-1~bpo13+1": "7.3.4", "6.12.117-1~deb12u1": "6.12.117", "1:6.2-3": "6.2"} {
		if got := upstreamVersion(v); got != want {
			t.Errorf("upstreamVersion(%q) = %q, want %q", v, got, want)
		}
	}
	if !inSeries("6.1.192", "6.1") || inSeries("6.12.117", "6.1") || !inSeries("7.3.4", "7") || inSeries("6.18.15", "7") {
		t.Error("inSeries")
	}
	for _, c := range []struct {
		a, b string
		want int
	}{{"6.1.192", "6.15", -1}, {"6.15", "6.15", 0}, {"6.18.15", "6.15", 1}, {"7.0", "6.19.14", 1}, {"6.7", "6.7.0", 0}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestParseStanza(t *testing.T) {
	p := parseStanza([]byte("Package: linux-image-cloud-amd64\nVersion: 7.3.4-1~bpo13+1\nSize: 1928\n" +
		"Depends: linux-base-cloud-amd64 (= 7.3.4-1~bpo13+1), linux-image-7.3.4+deb13-cloud-amd64 (= 7.3.4-1~bpo13+1), dracut | initramfs-tools (>= 0.120)\n\nPackage: other\n"))
	want := []dependency{{"linux-base-cloud-amd64", "7.3.4-1~bpo13+1"}, {"linux-image-7.3.4+deb13-cloud-amd64", "7.3.4-1~bpo13+1"}, {"dracut", ""}, {"initramfs-tools", ""}}
	if p.Name != "linux-image-cloud-amd64" || p.Version != "7.3.4-1~bpo13+1" || p.Size != 1928 || len(p.Depends) != len(want) {
		t.Fatalf("%+v", p)
	}
	for i, d := range want {
		if p.Depends[i] != d {
			t.Errorf("dependency %d: %+v, want %+v", i, p.Depends[i], d)
		}
	}
	if !versionedImage.MatchString("linux-image-6.1.0-56-cloud-amd64") || versionedImage.MatchString("linux-image-6.12-cloud-amd64x") ||
		versionedImage.MatchString("linux-image-cloud-amd64") {
		t.Error("versionedImage")
	}
}

// cpioEntry is one entry read back from a newc archive.
type cpioEntry struct {
	name  string
	mode  uint64
	data  string
	rdevs [2]uint64
}

// readCPIO parses a newc archive, checking its alignment.
func readCPIO(t *testing.T, b []byte) []cpioEntry {
	t.Helper()
	var entries []cpioEntry
	for off := 0; ; {
		if off%4 != 0 || len(b) < off+110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) uint64 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		size, namesize := int(field(6)), int(field(11))
		e := cpioEntry{name: string(b[off+110 : off+110+namesize-1]), mode: field(1), rdevs: [2]uint64{field(9), field(10)}}
		off = (off + 110 + namesize + 3) &^ 3
		if e.name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("archive is %d bytes, trailer ends at %d", len(b), off)
			}
			return entries
		}
		e.data = string(b[off : off+size])
		entries = append(entries, e)
		off = (off + size + 3) &^ 3
	}
}

func TestCPIO(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("hello"), 0o644)
	var buf bytes.Buffer
	w := newCPIO(&buf)
	w.File("/matrix/plan", 0o644, []byte("abc"))
	w.CopyFile("usr/sbin/tool", 0o755, src)
	w.Symlink("usr/sbin/alias", "tool")
	w.CharDevice("dev/console", 0o600, 5, 1)
	w.Dir("tmp", 0o755)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range readCPIO(t, buf.Bytes()) {
		got = append(got, e.name+" "+strconv.FormatUint(e.mode, 8)+" "+e.data+" "+strconv.FormatUint(e.rdevs[0], 10))
	}
	want := []string{"matrix 40755  0", "matrix/plan 100644 abc 0", "usr 40755  0", "usr/sbin 40755  0",
		"usr/sbin/tool 100755 hello 0", "usr/sbin/alias 120777 tool 0", "dev 40755  0", "dev/console 20600  5", "tmp 40755  0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("archive:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestGuestTestsExist checks the in-guest set against the sources: every
// entry is well formed and names a test function of its package, so that a
// renamed test is caught by `make test`, not only by the matrix.
func TestGuestTestsExist(t *testing.T) {
	for _, gt := range guestTests {
		if err := checkTest(gt); err != nil {
			t.Errorf("%s %s: %v", gt.Pkg, gt.Name, err)
			continue
		}
		files, _ := filepath.Glob(filepath.Join("..", gt.Pkg, "*_test.go"))
		found := false
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if regexp.MustCompile(`(?m)^func ` + gt.Name + `\(t \*testing\.T\)`).Match(src) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s has no func %s(t *testing.T)", gt.Pkg, gt.Name)
		}
	}
}

func TestPlanPackages(t *testing.T) {
	pkgs := planPackages([]guestTest{{Pkg: "./fanotify", Name: "TestA"}, {Pkg: "./internal/watch", Name: "TestB"}, {Pkg: "./fanotify", Name: "TestC"}})
	if len(pkgs) != 2 || pkgs[0].Binary != "fanotify.test" || pkgs[0].Runs() != "^(TestA|TestC)$" || pkgs[1].Binary != "internal_watch.test" {
		t.Errorf("%+v", pkgs)
	}
}

func TestMarkdownEscapesTildes(t *testing.T) {
	g, r := sampleRun(t, sampleLog, "6.12.117-1~deb12u1")
	g.Kernel.Spec = kernelSpecs[1]
	g.Kernel.Via = "linux-image-6.12-cloud-amd64 6.12.117-1~deb12u1"
	g.Kernel.Packages = []*debPackage{g.Kernel.Image}
	m := newReport([]*kernel{g.Kernel}, guestTests[:1], []*guestRun{g})
	if !r.Packages["fanotify"].Ended {
		t.Fatal("sample log not parsed")
	}
	md := m.Markdown()
	if regexp.MustCompile("(^|[^\\\\`0-9])~").MatchString(md) {
		t.Errorf("unescaped ~ outside code spans:\n%s", md)
	}
	if !strings.Contains(md, "| `fanotify TestGroupReadsRealError` | pass |") {
		t.Errorf("no pass row:\n%s", md)
	}
}

func TestSpliceMarkdown(t *testing.T) {
	p := filepath.Join(t.TempDir(), "README.md")
	orig := "# x\n\nbefore\n" + markerBegin + "\nold table\n" + markerEnd + "\nafter\n"
	if err := os.WriteFile(p, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // twice: the result has the markers again
		if err := spliceMarkdown(p, "| new | table |\n"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(p)
	if want := "# x\n\nbefore\n" + markerBegin + "\n\n| new | table |\n\n" + markerEnd + "\nafter\n"; string(b) != want {
		t.Errorf("spliced:\n%s\nwant:\n%s", b, want)
	}
	if err := os.WriteFile(p, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spliceMarkdown(p, "x"); err == nil || !strings.Contains(err.Error(), markerBegin) {
		t.Errorf("without markers: %v", err)
	}
}
