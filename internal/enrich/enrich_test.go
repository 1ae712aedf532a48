package enrich

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/pathfind"
)

var (
	testTime = time.Date(2026, 11, 23, 21, 0, 0, 123, time.UTC)
	testFSID = fanotify.FSID{0x3434710c, 0x449b99e7}
)

// fixture returns an enricher whose registry holds one ext4 file system
// whose sysfs state lives in a copy of testdata/sys (so tests can change it).
func fixture(t testing.TB) (*Enricher, string) {
	t.Helper()
	sys := t.TempDir()
	src := "testdata/sys/fs/ext4/loop7"
	dst := filepath.Join(sys, "fs/ext4/loop7")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
	}
	reg := NewRegistry(sys)
	t.Cleanup(reg.Close)
	fs := &mounts.Filesystem{Major: 7, Minor: 7, FSType: "ext4", Source: "/dev/loop7",
		Mountpoints: []string{"/srv/a", "/srv/b"}, Mounts: []mounts.Mount{{Root: "/", Point: "/srv/a"}, {Root: "/", Point: "/srv/b"}}}
	if _, err := reg.Add(&mounts.Info{Filesystem: fs, FSID: testFSID, Device: "/dev/loop7", KernelName: "loop7",
		UUID: "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428", Label: "data"}); err != nil {
		t.Fatal(err)
	}
	e := &Enricher{Registry: reg, Now: func() time.Time { return testTime }, Ext4Later: true}
	return e, dst
}

func inodeHandle(ino, gen uint32) fanotify.Handle {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint32(b, ino)
	binary.NativeEndian.PutUint32(b[4:], gen)
	return fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: b}
}

func fsError(errno syscall.Errno, h fanotify.Handle) *fanotify.Event {
	return &fanotify.Event{Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 42, Records: fanotify.HasError | fanotify.HasFID,
		Errno: errno, ErrorCount: 1, FID: fanotify.FileID{FSID: testFSID, Handle: h}}
}

func TestSuperblockError(t *testing.T) {
	e, sys := fixture(t)
	os.WriteFile(filepath.Join(sys, "errors_count"), []byte("5\n"), 0o644)
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, fanotify.Handle{Type: fanotify.HandleInvalid}), &ev)
	if ev.Kind != event.KindError || ev.Errno != 117 || ev.Error != "EUCLEAN" || ev.ErrorText != "structure needs cleaning" ||
		ev.ErrorCount != 1 || ev.PID != 42 || ev.FSID != "3434710c:449b99e7" || ev.Device != "/dev/loop7" ||
		ev.DeviceNumber != "7:7" || ev.FSType != "ext4" || ev.UUID != "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428" || ev.Label != "data" {
		t.Errorf("wrong fields: %+v", ev)
	}
	if ev.Inode != nil || ev.Generation != nil || ev.Path != "" || ev.PathError != "" || ev.Handle != nil {
		t.Errorf("a superblock error names no inode: %+v", ev)
	}
	// ext4's record is not read on the event's way: it follows.
	if ev.Ext4 != nil || !ev.Ext4Pending {
		t.Errorf("ext4 record read with the event (%+v) or not pending (%v)", ev.Ext4, ev.Ext4Pending)
	}
	fs := e.Registry.Lookup(testFSID)
	if fs.Ext4Due() != testTime {
		t.Errorf("Ext4Due %v, want the event's time %v", fs.Ext4Due(), testTime)
	}
	st, done, err := fs.Ext4Detail(false)
	if err != nil || !done || st == nil || st.ErrorsCount != 5 || st.LastError.Function != "ext4_lookup" ||
		st.LastError.Inode != 13 || st.LastError.Error != "EUCLEAN" || st.FirstError.Line != 129 {
		t.Errorf("ext4 record: %+v done %v err %v", st, done, err)
	}
	if !fs.Ext4Due().IsZero() {
		t.Error("still due after the record was read")
	}
}

// TestEnrichWithoutExt4Later: without Ext4Later, events say nothing of
// ext4's record and nothing is due.
func TestEnrichWithoutExt4Later(t *testing.T) {
	e, _ := fixture(t)
	e.Ext4Later = false
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, fanotify.Handle{Type: fanotify.HandleInvalid}), &ev)
	if ev.Ext4 != nil || ev.Ext4Pending || !e.Registry.Lookup(testFSID).Ext4Due().IsZero() {
		t.Errorf("ext4 %+v pending %v", ev.Ext4, ev.Ext4Pending)
	}
}

// TestInodePathLookedUpApart: an event about an inode says its path is
// pending and goes on at once; the lookup's result arrives through the
// finder, and later events about the inode carry it without a new lookup.
// (The file system is given a device number no device has, so the lookup
// ends in an error naming it.)
func TestInodePathLookedUpApart(t *testing.T) {
	e, _ := fixture(t)
	fs := e.Registry.Lookup(testFSID)
	fs.Major, fs.Minor = 4095, 1048575
	found := make(chan pathfind.Result, 4)
	e.Paths = &pathfind.Finder{Found: func(r pathfind.Result) { found <- r }}
	t.Cleanup(e.Paths.Close)
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 777)), &ev)
	if ev.Inode == nil || *ev.Inode != 12 || *ev.Generation != 777 || !ev.PathPending || ev.Path != "" || ev.PathError != "" {
		t.Fatalf("got inode %v pending %v path %q err %q; want inode 12 with its path pending", ev.Inode, ev.PathPending, ev.Path, ev.PathError)
	}
	// A second event, while the lookup runs or after: pending still, or
	// the lookup's answer; never a second lookup (checked below).
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 777)), &ev)
	if !ev.PathPending && ev.PathError == "" {
		t.Errorf("second event: pending %v path_error %q", ev.PathPending, ev.PathError)
	}
	var r pathfind.Result
	select {
	case r = <-found:
	case <-time.After(time.Minute):
		t.Fatal("no lookup result within a minute")
	}
	if r.Inode != 12 || r.Generation != 777 || r.FSKey != testFSID.String() || r.Err == nil || !strings.Contains(r.Err.Error(), "no device node for block device 4095:1048575") {
		t.Errorf("result %+v, want an error about block device 4095:1048575", r)
	}
	pe := PathEvent(&r, testTime)
	if pe.Kind != event.KindPath || pe.Source != event.SourcePathfind || pe.Device != "/dev/loop7" || pe.UUID != "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428" ||
		*pe.Inode != 12 || *pe.Generation != 777 || pe.PathError != r.Err.Error() || strings.Join(pe.Mountpoints, ",") != "/srv/a,/srv/b" {
		t.Errorf("path event %+v", pe)
	}
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 777)), &ev)
	if ev.PathPending || ev.PathError != r.Err.Error() {
		t.Errorf("after the lookup: pending %v path_error %q, want the lookup's error", ev.PathPending, ev.PathError)
	}
	select {
	case r := <-found:
		t.Errorf("looked up again: %+v", r)
	default:
	}
}

// TestPathNotLookedUp: without a finder nothing is said about paths; on a
// file system pathfind does not read, the event says why there is no path.
func TestPathNotLookedUp(t *testing.T) {
	e, _ := fixture(t)
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 1)), &ev)
	if ev.Path != "" || ev.PathError != "" || ev.PathPending {
		t.Errorf("no finder: %+v", ev)
	}
	e.Paths = &pathfind.Finder{Found: func(r pathfind.Result) { t.Errorf("looked up: %+v", r) }}
	t.Cleanup(e.Paths.Close)
	e.Registry.Lookup(testFSID).FSType = "btrfs"
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 1)), &ev)
	if ev.PathPending || ev.PathError != pathfind.ErrUnsupported.Error() {
		t.Errorf("btrfs: pending %v path_error %q", ev.PathPending, ev.PathError)
	}
}

func TestUnknownFilesystem(t *testing.T) {
	e, _ := fixture(t)
	refreshed := 0
	e.Refresh = func() bool { refreshed++; return false }
	raw := fsError(syscall.EIO, inodeHandle(5, 5))
	raw.FID.FSID = fanotify.FSID{1, 2}
	var ev event.Event
	e.Enrich(raw, &ev)
	if refreshed != 1 || ev.Device != "" || ev.Ext4 != nil || ev.Error != "EIO" || ev.PathError != "" {
		t.Errorf("refreshed %d, event %+v", refreshed, ev)
	}
	b, _ := json.Marshal(&ev)
	var m map[string]any
	json.Unmarshal(b, &m)
	if mp, ok := m["mountpoints"].([]any); !ok || len(mp) != 0 {
		t.Errorf("mountpoints must be an empty array, not null: %s", b)
	}
}

func TestOverflow(t *testing.T) {
	e, _ := fixture(t)
	var ev event.Event
	e.Enrich(&fanotify.Event{Mask: fanotify.QueueOverflow, FD: fanotify.NoFD}, &ev)
	if ev.Kind != event.KindOverflow || ev.Message == "" || ev.Errno != 0 {
		t.Errorf("%+v", ev)
	}
}

func TestUndecodableHandleKeptRaw(t *testing.T) {
	e, _ := fixture(t)
	e.Paths = &pathfind.Finder{}
	t.Cleanup(e.Paths.Close)
	var ev event.Event
	e.Enrich(fsError(syscall.EIO, fanotify.Handle{Type: 0x4d, Bytes: []byte{1, 2, 3}}), &ev)
	if ev.Inode != nil || ev.Handle == nil || ev.Handle.Type != 0x4d || ev.Handle.Bytes != "010203" || !strings.Contains(ev.PathError, "no inode number") {
		t.Errorf("%+v %+v", ev, ev.Handle)
	}
}

// TestExt4DetailWaitsForTheCount: the record is read only once
// errors_count moved (ext4 publishes it after it reported the error), or
// when forced (a file system that cannot record errors never moves it).
func TestExt4DetailWaitsForTheCount(t *testing.T) {
	e, sys := fixture(t) // errors_count stays 4, as registered
	fs := e.Registry.Lookup(testFSID)
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, fanotify.Handle{Type: fanotify.HandleInvalid}), &ev)
	if st, done, err := fs.Ext4Detail(false); st != nil || done || err != nil {
		t.Errorf("count unchanged: got %+v done %v err %v, want to wait", st, done, err)
	}
	if st, done, err := fs.Ext4Detail(true); err != nil || !done || st == nil || st.ErrorsCount != 4 {
		t.Errorf("forced: got %+v done %v err %v, want the state as it stands", st, done, err)
	}
	if st, done, _ := fs.Ext4Detail(true); st != nil || !done {
		t.Errorf("nothing due: got %+v done %v", st, done)
	}
	e.Enrich(fsError(syscall.EUCLEAN, fanotify.Handle{Type: fanotify.HandleInvalid}), &ev)
	os.WriteFile(filepath.Join(sys, "errors_count"), []byte("6\n"), 0o644)
	if st, done, err := fs.Ext4Detail(false); err != nil || !done || st == nil || st.ErrorsCount != 6 {
		t.Errorf("count moved: got %+v done %v err %v", st, done, err)
	}
}

// BenchmarkEnrich: one FAN_FS_ERROR event about an inode of a registered
// ext4 file system, enriched as the watcher does (ext4's record left for
// later), without a path finder.
func BenchmarkEnrich(b *testing.B) {
	e, _ := fixture(b)
	raw := fsError(syscall.EUCLEAN, inodeHandle(12, 777))
	var ev event.Event
	b.ReportAllocs()
	for b.Loop() {
		e.Enrich(raw, &ev)
	}
}

// BenchmarkExt4Detail: reading ext4's record once its count moved, as the
// watcher does after the sink (the fixture's sysfs files are on the test's
// file system, not sysfs: this is the cost of the reads and the parse).
func BenchmarkExt4Detail(b *testing.B) {
	e, _ := fixture(b)
	fs := e.Registry.Lookup(testFSID)
	raw := fsError(syscall.EUCLEAN, inodeHandle(12, 777))
	var ev event.Event
	b.ReportAllocs()
	for b.Loop() {
		e.Enrich(raw, &ev)
		fs.Ext4Detail(true)
	}
}
