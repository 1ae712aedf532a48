package enrich

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/mounts"
)

var (
	testTime = time.Date(2026, 11, 23, 21, 0, 0, 123, time.UTC)
	testFSID = fanotify.FSID{0x3434710c, 0x449b99e7}
)

// fixture returns an enricher whose registry holds one ext4 file system
// whose sysfs state lives in a copy of testdata/sys (so tests can change it).
func fixture(t *testing.T) (*Enricher, string) {
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
	e := &Enricher{Registry: reg, Now: func() time.Time { return testTime }, Ext4Settle: time.Millisecond,
		ResolvePath: func(string, int32, []byte) (string, error) {
			t.Fatal("ResolvePath called unexpectedly")
			return "", nil
		}}
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
	if ev.Ext4 == nil || ev.Ext4.ErrorsCount != 5 || ev.Ext4.LastError.Function != "ext4_lookup" ||
		ev.Ext4.LastError.Inode != 13 || ev.Ext4.LastError.Error != "EUCLEAN" || ev.Ext4.FirstError.Line != 129 {
		t.Errorf("ext4 state: %+v", ev.Ext4)
	}
}

func TestInodePathResolved(t *testing.T) {
	e, sys := fixture(t)
	os.WriteFile(filepath.Join(sys, "last_error_ino"), []byte("99\n"), 0o644)
	calls := 0
	e.ResolvePath = func(mnt string, typ int32, h []byte) (string, error) {
		calls++
		if mnt != "/srv/a" || typ != fanotify.HandleIno32Gen || len(h) != 8 {
			t.Errorf("ResolvePath(%q, %d, %x)", mnt, typ, h)
		}
		return "/srv/a/dir/file", nil
	}
	var ev event.Event
	for i := 0; i < 2; i++ {
		e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(12, 777)), &ev)
		if ev.Inode == nil || *ev.Inode != 12 || *ev.Generation != 777 || ev.Path != "/srv/a/dir/file" || ev.PathError != "" {
			t.Errorf("got inode %v path %q err %q", ev.Inode, ev.Path, ev.PathError)
		}
	}
	if calls != 2 {
		t.Errorf("a resolvable inode is resolved each time (paths change): %d calls", calls)
	}
}

func TestStaleInodeOpenedOnlyOnce(t *testing.T) {
	e, sys := fixture(t)
	os.WriteFile(filepath.Join(sys, "last_error_func"), []byte("ext4_map_blocks\n"), 0o644)
	calls := 0
	e.ResolvePath = func(string, int32, []byte) (string, error) {
		calls++
		return "", &os.PathError{Op: "open_by_handle_at", Err: syscall.ESTALE}
	}
	var ev event.Event
	for i := 0; i < 3; i++ {
		e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(13, 1)), &ev)
		if ev.Path != "" || ev.PathError == "" {
			t.Errorf("path %q, path_error %q", ev.Path, ev.PathError)
		}
	}
	if calls != 1 {
		t.Errorf("an inode that failed to open was opened %d times, want 1", calls)
	}
}

func TestErrorRaisedByOwnOpenIsLabelled(t *testing.T) {
	e, _ := fixture(t)
	e.PID = 4242
	e.IsKernelThread = func(pid int) bool { return pid == 11 }
	e.ResolvePath = func(string, int32, []byte) (string, error) { return "", syscall.EUCLEAN }
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, inodeHandle(13, 1)), &ev) // pid 42: someone else
	if ev.Message != "" || !strings.Contains(ev.PathError, "EUCLEAN") {
		t.Errorf("first event: message %q path_error %q", ev.Message, ev.PathError)
	}
	own := fsError(syscall.EUCLEAN, inodeHandle(13, 1))
	own.PID = 4242
	e.Enrich(own, &ev)
	if !strings.Contains(ev.Message, "raised by fshealth itself") {
		t.Errorf("the error fshealth's own open raised is not labelled: %+v", ev)
	}
	e.Enrich(own, &ev) // a later error by fshealth's pid is not the echo
	if ev.Message != "" {
		t.Errorf("labelled twice: %q", ev.Message)
	}
	// Linux 7.0+ reports errors from a kernel worker: its pid counts too.
	other := fsError(syscall.EUCLEAN, inodeHandle(14, 1))
	e.Enrich(other, &ev)
	other.PID = 11
	e.Enrich(other, &ev)
	if !strings.Contains(ev.Message, "raised by fshealth itself") {
		t.Errorf("the echo reported by a kernel worker is not labelled: %+v", ev)
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
	if refreshed != 1 || ev.Device != "" || ev.Ext4 != nil || ev.Error != "EIO" || ev.PathError == "" {
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
	e.ResolvePath = func(string, int32, []byte) (string, error) { return "", errors.New("nope") }
	var ev event.Event
	e.Enrich(fsError(syscall.EIO, fanotify.Handle{Type: 0x4d, Bytes: []byte{1, 2, 3}}), &ev)
	if ev.Inode != nil || ev.Handle == nil || ev.Handle.Type != 0x4d || ev.Handle.Bytes != "010203" || ev.PathError != "nope" {
		t.Errorf("%+v %+v", ev, ev.Handle)
	}
}

func TestExt4CountNotAdvancingStopsWaiting(t *testing.T) {
	e, _ := fixture(t) // errors_count stays 4, as registered
	fs := e.Registry.Lookup(testFSID)
	var ev event.Event
	e.Enrich(fsError(syscall.EUCLEAN, fanotify.Handle{Type: fanotify.HandleInvalid}), &ev)
	if !fs.countStuck {
		t.Error("errors_count did not grow, but the file system is not marked as stuck")
	}
	if ev.Ext4 == nil || ev.Ext4.ErrorsCount != 4 {
		t.Errorf("state still reported: %+v", ev.Ext4)
	}
}

func TestErrnoName(t *testing.T) {
	for errno, want := range map[syscall.Errno]string{117: "EUCLEAN", 74: "EBADMSG", 108: "ESHUTDOWN", 5: "EIO", 28: "ENOSPC", 9999: "E9999"} {
		if got := ErrnoName(errno); got != want {
			t.Errorf("ErrnoName(%d) = %q, want %q", int(errno), got, want)
		}
	}
}
