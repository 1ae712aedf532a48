package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/testutil"
)

// Lines as `fshealth watch` logs them (slog text).
const (
	watchingLine = `time=2026-12-03T16:47:48.640Z level=INFO msg="watching file system" fstype=ext4 device=/dev/loop3 uuid=0b7e6d2c-4f1a-4e4e-9a57-3c1f2d9e8a10 mountpoints="[/tmp/fshealth-bench-1/mnt7 /srv/x]"`
	droppedLine  = `time=2026-12-03T16:47:48.702Z level=INFO msg="file system no longer mounted; not watched any more (its history stays)" fstype=ext4 device=/dev/loop3 uuid=0b7e6d2c-4f1a-4e4e-9a57-3c1f2d9e8a10 mountpoints=[]`
	cannotLine   = `time=2026-12-03T16:47:48.702Z level=WARN msg="cannot watch file system" fstype=ext4 source=/dev/loop3 mountpoint=/tmp/fshealth-bench-1/mnt7 reason="operation not permitted (EPERM)"`
	fanotifyLine = `time=2026-12-03T16:47:48.640Z level=INFO msg="following mounts" with="fanotify mount events (FAN_MNT_ATTACH/FAN_MNT_DETACH)"`
	mountinfoLn  = `time=2026-12-03T16:47:48.640Z level=INFO msg="following mounts" with="mountinfo change notifications (POLLPRI on /proc/self/mountinfo)"`
)

func TestLogLine(t *testing.T) {
	const dev, mp = "/dev/loop3", "/tmp/fshealth-bench-1/mnt7"
	w := parseLogLine([]byte(watchingLine))
	if !w.watching(dev, mp) {
		t.Errorf("watching(%s, %s) = false for %s", dev, mp, watchingLine)
	}
	if w.watching("/dev/loop30", mp) || w.watching(dev, "/tmp/fshealth-bench-1/mnt") {
		t.Errorf("watching matches another device or mount point")
	}
	if single := parseLogLine([]byte(`level=INFO msg="watching file system" device=/dev/loop3 mountpoints=[/tmp/fshealth-bench-1/mnt7]`)); !single.watching(dev, mp) {
		t.Errorf("watching = false with an unquoted single mount point")
	}
	if w.dropped(dev) || w.cannotWatch(dev, mp) || w.isWarning() || w.followMode() != "" {
		t.Errorf("the watching line also counts as something else: %+v", w)
	}

	d := parseLogLine([]byte(droppedLine))
	if !d.dropped(dev) || d.dropped("/dev/loop31") || d.watching(dev, mp) {
		t.Errorf("dropped line misread: %+v", d)
	}

	c := parseLogLine([]byte(cannotLine))
	if !c.cannotWatch(dev, mp) || !c.isWarning() || c.reason != "operation not permitted (EPERM)" {
		t.Errorf("cannot-watch line misread: %+v", c)
	}
	if c.cannotWatch("/dev/loop4", "/tmp/other") {
		t.Errorf("cannotWatch matches another file system")
	}

	for line, want := range map[string]string{fanotifyLine: "fanotify", mountinfoLn: "mountinfo", watchingLine: ""} {
		if got := parseLogLine([]byte(line)).followMode(); got != want {
			t.Errorf("followMode(%s) = %q, want %q", line, got, want)
		}
	}
}

func TestHasMountpoint(t *testing.T) {
	for _, c := range []struct {
		rendered, mp string
		want         bool
	}{
		{"[/a]", "/a", true},
		{"[/a /b/c]", "/b/c", true},
		{"[/a /b/c]", "/b", false},
		{"[]", "/a", false},
		{"", "/a", false},
	} {
		if got := hasMountpoint(c.rendered, c.mp); got != c.want {
			t.Errorf("hasMountpoint(%q, %q) = %v, want %v", c.rendered, c.mp, got, c.want)
		}
	}
}

// chunkReader returns its chunks one per Read, sleeping before each.
type chunkReader struct {
	chunks []string
	gap    time.Duration
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.gap)
	n := copy(p, r.chunks[0])
	r.chunks = r.chunks[1:]
	return n, nil
}

func TestReadStamped(t *testing.T) {
	r := &chunkReader{chunks: []string{"one\ntw", "o\nthree\nfour\n", "tail without newline"}, gap: 20 * time.Millisecond}
	ch := make(chan stampedLine, 10)
	start := time.Now()
	readStamped(r, ch, make(chan struct{}), nil)
	var got []stampedLine
	for s := range ch {
		got = append(got, s)
	}
	want := []string{"one", "two", "three", "four"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d: %v", len(got), len(want), got)
	}
	for i, s := range got {
		if string(s.line) != want[i] {
			t.Errorf("line %d = %q, want %q", i, s.line, want[i])
		}
	}
	// A line is stamped when the read that completed it returned: "one"
	// after the first read, "two", "three" and "four" after the second.
	if d := got[0].at.Sub(start); d < r.gap {
		t.Errorf("first line stamped %v after start, before its read returned", d)
	}
	if !got[1].at.Equal(got[2].at) || !got[2].at.Equal(got[3].at) || !got[1].at.After(got[0].at) {
		t.Errorf("stamps %v %v %v %v: want lines 2-4 stamped together, after line 1", got[0].at, got[1].at, got[2].at, got[3].at)
	}
}

// seccompChildEnv makes the test binary run the seccomp check as a child: the
// filter cannot be removed, so it must not land on the test process itself.
const seccompChildEnv = "FSHEALTH_BENCH_TEST_SECCOMP"

func TestRefuseMountEvents(t *testing.T) {
	if os.Getenv(seccompChildEnv) == "1" {
		seccompChild()
		return
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		testutil.Skip(t, testutil.NotApplicable, "the filter is written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	cmd := testutil.HelperCommand(t, time.Minute, os.Args[0], "-test.run=^TestRefuseMountEvents$", "-test.count=1")
	cmd.Env = append(os.Environ(), seccompChildEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// seccompChild installs the filter on its thread and checks fanotify_init:
// FAN_REPORT_MNT is refused with EINVAL; other flags reach the kernel, which
// answers success (as root) or EPERM, never the filter's EINVAL.
func seccompChild() {
	runtime.LockOSThread()
	fail := func(format string, args ...any) {
		os.Stderr.WriteString("seccomp child: " + fmt.Sprintf(format, args...) + "\n")
		os.Exit(1)
	}
	if err := refuseMountEvents(); err != nil {
		fail("%v", err)
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_MNT|unix.FAN_CLOEXEC, unix.O_RDONLY)
	if !errors.Is(err, unix.EINVAL) {
		fail("fanotify_init(FAN_REPORT_MNT) = %d, %v; want EINVAL", fd, err)
	}
	fd, err = unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_CLOEXEC, unix.O_RDONLY)
	if errors.Is(err, unix.EINVAL) {
		fail("fanotify_init(FAN_REPORT_FID) = EINVAL: the filter refuses more than FAN_REPORT_MNT")
	}
	if err == nil {
		unix.Close(fd)
	}
	os.Exit(0)
}
