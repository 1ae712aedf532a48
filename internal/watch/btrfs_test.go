package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestBtrfsSubvolumesOnly: a btrfs file system mounted only by subvolume
// (subvol=@, subvol=@home, and a bind mount of @), as distributions install
// it, is watched: the kernel refuses a fanotify mark on any of its mounts
// (EXDEV), so its top level is marked through a private detached mount;
// its checksum error, read through a subvolume, is reported once, with the
// device, UUID, type and every mount point.
func TestBtrfsSubvolumesOnly(t *testing.T) {
	testutil.CheckNoLeaks(t)
	b := testutil.NewBtrfsSubvolumesWithCorruptFile(t)
	for name, cfg := range map[string]Config{
		"everything":      {KernelLog: true, KernelLogHold: testHold},
		"configured path": {Paths: []string{b.Home}, KernelLog: true, KernelLogHold: testHold},
	} {
		t.Run(name, func(t *testing.T) {
			c := startConfig(t, cfg, false)
			fs := watchedBtrfs(t, c, b)
			if !strings.Contains(c.log.String(), `marked_through="its top-level subvolume`) {
				t.Errorf("the file system was not marked through its top level:\n%s", c.log.String())
			}
			if !markedSuperblock(t, fs.Major, fs.Minor) {
				t.Errorf("no fanotify mark on the superblock %s", fs.Dev())
			}
			// Each subtest's watcher starts from the counters as it
			// finds them: only its own read is reported.
			readCorrupt(t, c, b, fs)
		})
	}
}

// watchedBtrfs returns the watched file system of b, checking that it is
// listed once, with every mount point.
func watchedBtrfs(t *testing.T, c *collector, b *testutil.BtrfsSubvolumes) *enrich.Filesystem {
	t.Helper()
	var found []*enrich.Filesystem
	for _, w := range c.w.Watched() {
		if w.FSType == "btrfs" && w.Device == b.Dev {
			found = append(found, w)
		}
	}
	if len(found) != 1 {
		t.Fatalf("the btrfs file system on %s is watched %d times, want once; log:\n%s", b.Dev, len(found), c.log.String())
	}
	fs := found[0]
	if fmt.Sprint(fs.Mountpoints) != fmt.Sprint(b.Mountpoints()) || fs.UUID == "" {
		t.Errorf("watched as %s uuid %q at %q, want at %q", fs.Device, fs.UUID, fs.Mountpoints, b.Mountpoints())
	}
	return fs
}

// readCorrupt reads the corrupted file (caches dropped) and checks that the
// corruption counter's increase is reported, once, with the file system's
// identity and btrfs's message.
func readCorrupt(t *testing.T, c *collector, b *testutil.BtrfsSubvolumes, fs *enrich.Filesystem) {
	t.Helper()
	uuid, before, err := btrfs.Stats(b.Home, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	testutil.DropCaches(t)
	if _, err := os.ReadFile(b.File); !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading the corrupted file: %v, want EIO", err)
	}
	_, after, err := btrfs.Stats(b.Bind, "/sys")
	if err != nil {
		t.Fatal(err)
	}
	want := after[0].CorruptionErrs - before[0].CorruptionErrs
	if want == 0 {
		t.Fatalf("reading the corrupted file did not raise btrfs's corruption counter (%d)", after[0].CorruptionErrs)
	}
	var got uint64
	for got < want {
		e := c.next()
		if e.Kind != event.KindError || e.Source != event.SourceBtrfs || e.Btrfs == nil || e.Btrfs.Counter != btrfs.CounterCorruption ||
			e.Error != "EBADMSG" || e.Device != b.Dev || e.FSType != "btrfs" || e.UUID != uuid || e.UUID != fs.UUID ||
			fmt.Sprint(e.Mountpoints) != fmt.Sprint(b.Mountpoints()) || e.Btrfs.From != before[0].CorruptionErrs+got {
			t.Fatalf("btrfs event: %s; want a corruption increase from %d on %s (%s) at %q",
				event.AppendText(nil, &e), before[0].CorruptionErrs+got, b.Dev, uuid, b.Mountpoints())
		}
		if !strings.Contains(e.KernelMessage, "BTRFS") || !strings.Contains(e.KernelMessage, b.Name) {
			t.Errorf("btrfs event without btrfs's message about %s: %q", b.Name, e.KernelMessage)
		}
		got += uint64(e.ErrorCount)
		t.Logf("event: %s", event.AppendText(nil, &e))
	}
	if got != want {
		t.Errorf("%d corruption errors reported, the counter went up by %d", got, want)
	}
	c.none()
}

// markedSuperblock reports whether a fanotify group of this process has a
// file system mark on the superblock major:minor, as /proc/self/fdinfo
// lists it ("fanotify sdev:<dev in hex> ..."; the kernel's dev_t is
// major<<20 | minor).
func markedSuperblock(t *testing.T, major, minor uint32) bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fdinfo")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("fanotify sdev:%x ", uint64(major)<<20|uint64(minor))
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
		if err == nil && strings.Contains(string(b), want) {
			return true
		}
	}
	return false
}

// TestBtrfsWithoutMarkIsWatched: when a subvolume-only btrfs file system
// cannot be marked at all (here the top level's descriptor cannot be named:
// the watcher is given a /proc without /proc/self/fd), it is still watched,
// through the kernel log and its counters, and the log says why it has no
// mark; without the kernel log, a path on it cannot be watched, and the
// error says why.
func TestBtrfsWithoutMarkIsWatched(t *testing.T) {
	testutil.CheckNoLeaks(t)
	b := testutil.NewBtrfsSubvolumesWithCorruptFile(t)
	proc := t.TempDir()
	for _, f := range []string{"self/mountinfo", "filesystems"} {
		data, err := os.ReadFile(filepath.Join("/proc", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(proc, f)), 0o755)
		if err := os.WriteFile(filepath.Join(proc, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := New(Config{Paths: []string{b.Home}, ProcRoot: proc, FollowMounts: FollowOff, Sink: func([]event.Event) error { return nil }})
	if err == nil || !strings.Contains(err.Error(), "cannot watch "+b.Home) || !strings.Contains(err.Error(), "only subvolumes are mounted") {
		t.Errorf("without the kernel log: %v, want an error saying why %s cannot be watched", err, b.Home)
	}

	c := startConfig(t, Config{Paths: []string{b.Home}, ProcRoot: proc, FollowMounts: FollowOff, KernelLog: true, KernelLogHold: testHold}, false)
	fs := watchedBtrfs(t, c, b)
	if want := `msg="watching file system without a fanotify mark`; !strings.Contains(c.log.String(), want) ||
		!strings.Contains(c.log.String(), "the top level could not be marked") {
		t.Errorf("log lacks %q with the reason:\n%s", want, c.log.String())
	}
	if markedSuperblock(t, fs.Major, fs.Minor) {
		t.Errorf("a fanotify mark on %s, want none", fs.Dev())
	}
	readCorrupt(t, c, b, fs)
}
