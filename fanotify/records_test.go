package fanotify_test

import (
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
)

// TestMaskString checks every named bit, the order, and unnamed bits.
func TestMaskString(t *testing.T) {
	names := map[fanotify.Mask]string{
		fanotify.Access: "access", fanotify.Modify: "modify", fanotify.Attrib: "attrib",
		fanotify.CloseWrite: "close_write", fanotify.CloseNoWrite: "close_nowrite", fanotify.Open: "open",
		fanotify.MovedFrom: "moved_from", fanotify.MovedTo: "moved_to", fanotify.Create: "create",
		fanotify.Delete: "delete", fanotify.DeleteSelf: "delete_self", fanotify.MoveSelf: "move_self",
		fanotify.OpenExec: "open_exec", fanotify.QueueOverflow: "q_overflow", fanotify.FSError: "fs_error",
		fanotify.OpenPerm: "open_perm", fanotify.AccessPerm: "access_perm", fanotify.OpenExecPerm: "open_exec_perm",
		fanotify.PreAccess: "pre_access", fanotify.MountAttach: "mnt_attach", fanotify.MountDetach: "mnt_detach",
		fanotify.EventOnChild: "event_on_child", fanotify.Rename: "rename", fanotify.OnDir: "ondir",
	}
	var all fanotify.Mask
	for m, want := range names {
		if got := m.String(); got != want {
			t.Errorf("%#x.String() = %q, want %q", uint64(m), got, want)
		}
		if m&(m-1) != 0 || all&m != 0 {
			t.Errorf("%s (%#x) is not a bit of its own", want, uint64(m))
		}
		all |= m
	}
	for _, tt := range []struct {
		m    fanotify.Mask
		want string
	}{
		{0, "0"},
		{fanotify.Create | fanotify.OnDir, "create|ondir"},
		{fanotify.OnDir | fanotify.Access | fanotify.Rename, "access|rename|ondir"},
		{fanotify.Move, "moved_from|moved_to"},
		{0x80000000, "0x80000000"},
		{fanotify.Modify | 0x2000 | 1<<40, "modify|0x10000002000"},
	} {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%#x.String() = %q, want %q", uint64(tt.m), got, tt.want)
		}
	}
	if s := all.String(); strings.Count(s, "|") != len(names)-1 || strings.Contains(s, "0x") {
		t.Errorf("all bits: %q", s)
	}
}

// TestParseRecords decodes the records of directory entry, rename,
// pre-access and pidfd events, hand-built as the kernel lays them out.
func TestParseRecords(t *testing.T) {
	dir := fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(2, 0)}}
	sub := fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: ino64Handle(1<<33, 7)}}
	file := fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(12, 99)}}
	fid := func(typ uint8, f fanotify.FileID, name string) []byte {
		return fidRecord(typ, f.FSID, f.Handle.Type, f.Handle.Bytes, name)
	}
	tests := []struct {
		name string
		buf  []byte
		want fanotify.Event
	}{
		{
			name: "rename",
			buf: event(fanotify.Rename, fanotify.NoFD, 3,
				fid(fanotify.InfoOldDFIDName, dir, "old name"), fid(fanotify.InfoNewDFIDName, sub, "n"), fid(fanotify.InfoFID, file, "")),
			want: fanotify.Event{Mask: fanotify.Rename, FD: fanotify.NoFD, PID: 3,
				Records:   fanotify.HasOldName | fanotify.HasNewName | fanotify.HasFID,
				OldDirFID: dir, OldName: "old name", NewDirFID: sub, NewName: "n", FID: file},
		},
		{
			name: "first old and new records win",
			buf: event(fanotify.Rename, fanotify.NoFD, 3,
				fid(fanotify.InfoNewDFIDName, sub, "n"), fid(fanotify.InfoOldDFIDName, dir, "o"),
				fid(fanotify.InfoOldDFIDName, sub, "o2"), fid(fanotify.InfoNewDFIDName, dir, "n2")),
			want: fanotify.Event{Mask: fanotify.Rename, FD: fanotify.NoFD, PID: 3,
				Records:   fanotify.HasOldName | fanotify.HasNewName,
				OldDirFID: dir, OldName: "o", NewDirFID: sub, NewName: "n"},
		},
		{
			name: "name without its NUL, empty name",
			buf: event(fanotify.Rename, fanotify.NoFD, 3,
				record(fanotify.InfoOldDFIDName, i32(testFSID[0]), i32(testFSID[1]), u32(8), i32(fanotify.HandleIno32Gen), ext4Handle(2, 0), []byte("abcd")),
				fid(fanotify.InfoNewDFIDName, dir, "")),
			want: fanotify.Event{Mask: fanotify.Rename, FD: fanotify.NoFD, PID: 3,
				Records:   fanotify.HasOldName | fanotify.HasNewName,
				OldDirFID: dir, OldName: "abcd", NewDirFID: dir},
		},
		{
			name: "directory entry with target",
			buf: event(fanotify.Create|fanotify.OnDir, fanotify.NoFD, 4,
				fid(fanotify.InfoDFIDName, dir, "sub"), fid(fanotify.InfoFID, sub, "")),
			want: fanotify.Event{Mask: fanotify.Create | fanotify.OnDir, FD: fanotify.NoFD, PID: 4,
				Records: fanotify.HasDirFID | fanotify.HasFID, DirFID: dir, Name: "sub", FID: sub},
		},
		{
			name: "pre-access range",
			buf:  event(fanotify.PreAccess, 7, 5, rangeRecord(1<<40, 4096)),
			want: fanotify.Event{Mask: fanotify.PreAccess, FD: 7, PID: 5,
				Records: fanotify.HasRange, RangeOffset: 1 << 40, RangeCount: 4096},
		},
		{
			name: "range record with more bytes than it needs",
			buf:  event(fanotify.PreAccess, 7, 5, record(fanotify.InfoRange, make([]byte, 4), u64(3), u64(5), u64(0xffff))),
			want: fanotify.Event{Mask: fanotify.PreAccess, FD: 7, PID: 5,
				Records: fanotify.HasRange, RangeOffset: 3, RangeCount: 5},
		},
		{
			name: "fd error and pidfd error",
			buf:  event(fanotify.Open, -int32(linuxEROFS), 6, pidfdRecord(-3)),
			want: fanotify.Event{Mask: fanotify.Open, FD: -int32(linuxEROFS), FDError: linuxEROFS, PID: 6,
				Records: fanotify.HasPIDFD, PIDFD: -3},
		},
		{
			name: "fd -2 is an error, -1 is no fd",
			buf:  concat(event(fanotify.Open, -2, 6), event(fanotify.Open, -1, 6)),
			want: fanotify.Event{Mask: fanotify.Open, FD: -2, FDError: 2, PID: 6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := fanotify.Parse(nil, tt.buf)
			if err != nil || len(evs) == 0 {
				t.Fatalf("Parse: %v, %v", evs, err)
			}
			if !reflect.DeepEqual(evs[0], tt.want) {
				t.Errorf("got  %+v\nwant %+v", evs[0], tt.want)
			}
			if len(evs) == 2 && (evs[1].FD != fanotify.NoFD || evs[1].FDError != 0) {
				t.Errorf("fd -1: %+v", evs[1])
			}
		})
	}
}

// TestParseRecordErrors checks the golden reasons of short records.
func TestParseRecordErrors(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		buf        []byte
	}{
		{"short range", "malformed event at byte 24: range record has length 20, want at least 24",
			event(fanotify.PreAccess, 7, 5, record(fanotify.InfoRange, make([]byte, 4), u64(3), u32(5)))},
		{"short old name", "malformed event at byte 24: fid record (type 10) has length 16, want at least 20",
			event(fanotify.Rename, -1, 5, record(fanotify.InfoOldDFIDName, u64(1), u32(0)))},
		{"short new name", "malformed event at byte 24: fid record (type 12) has length 16, want at least 20",
			event(fanotify.Rename, -1, 5, record(fanotify.InfoNewDFIDName, u64(1), u32(0)))},
		{"new name handle too long", "malformed event at byte 24: fid record (type 12) claims a 9-byte handle but has room for 8",
			event(fanotify.Rename, -1, 5, record(fanotify.InfoNewDFIDName, u64(1), u32(9), u32(1), u64(0)))},
	} {
		evs, err := fanotify.Parse(nil, tt.buf)
		if len(evs) != 0 || err == nil || err.Error() != "fanotify: "+tt.want {
			t.Errorf("%s: %v, %v; want %q", tt.name, evs, err, tt.want)
		}
	}
}

// TestPIDFDError checks how each pidfd value is explained.
func TestPIDFDError(t *testing.T) {
	for _, tt := range []struct {
		records fanotify.Records
		pidfd   int32
		want    error
	}{
		{fanotify.HasPIDFD, 0, nil},
		{fanotify.HasPIDFD, 5, nil},
		{0, -1, nil}, // no pidfd record
		{fanotify.HasPIDFD, fanotify.NoPIDFD, fanotify.ErrNoPIDFD},
		{fanotify.HasPIDFD, fanotify.EPIDFD, fanotify.ErrPIDFD},
		{fanotify.HasPIDFD, -3, syscall.Errno(3)},
		{fanotify.HasPIDFD, -24, syscall.Errno(24)},
	} {
		ev := fanotify.Event{Records: tt.records, PIDFD: tt.pidfd}
		if got := ev.PIDFDError(); got != tt.want {
			t.Errorf("records %v pidfd %d: %v, want %v", tt.records, tt.pidfd, got, tt.want)
		}
	}
	if errors.Is(fanotify.ErrNoPIDFD, fanotify.ErrPIDFD) || !strings.Contains(fanotify.ErrNoPIDFD.Error(), "FAN_NOPIDFD") ||
		!strings.Contains(fanotify.ErrPIDFD.Error(), "FAN_EPIDFD") {
		t.Error("the pidfd errors do not name their values")
	}
}

// TestDenyErrnoEncoding checks FAN_DENY_ERRNO's encoding: FAN_DENY with the errno
// in the top 8 bits.
func TestDenyErrnoEncoding(t *testing.T) {
	for _, tt := range []struct {
		errno syscall.Errno
		want  fanotify.Response
	}{
		{5, 0x05000002},
		{28, 0x1c000002},
		{0x1ff, 0xff000002},
	} {
		if got := fanotify.DenyErrno(tt.errno); got != tt.want {
			t.Errorf("DenyErrno(%d) = %#x, want %#x", tt.errno, got, tt.want)
		}
	}
}

// TestFSIDString: two 8-digit lower-case hex words of the bits, negative
// words included (f_fsid's words are signed).
func TestFSIDString(t *testing.T) {
	for _, c := range []struct {
		f    fanotify.FSID
		want string
	}{
		{fanotify.FSID{0, 0}, "00000000:00000000"},
		{fanotify.FSID{-1, 1}, "ffffffff:00000001"},
		{fanotify.FSID{-0x127fddaa, 0x6b69c467}, "ed802256:6b69c467"},
		{fanotify.FSID{0x0a0b0c0d, -0x80000000}, "0a0b0c0d:80000000"},
	} {
		if got := c.f.String(); got != c.want {
			t.Errorf("%v.String() = %s, want %s", [2]int32(c.f), got, c.want)
		}
	}
}
