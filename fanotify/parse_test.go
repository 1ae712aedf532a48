package fanotify_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
)

// formatEvents renders events one per line for failure messages.
func formatEvents(evs []fanotify.Event) string {
	var b bytes.Buffer
	for i, ev := range evs {
		fmt.Fprintf(&b, "\n\t[%d] %+v", i, ev)
	}
	if len(evs) == 0 {
		b.WriteString(" (none)")
	}
	return b.String()
}

// invalidFID is the FileID of an error not tied to an inode.
var invalidFID = fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleInvalid}}

// TestParse decodes well-formed hand-built buffers and compares every
// decoded field.
func TestParse(t *testing.T) {
	sbError := fanotify.Event{
		Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 42,
		Records: fanotify.HasError | fanotify.HasFID,
		Errno:   linuxEUCLEAN, ErrorCount: 1,
		FID: invalidFID,
	}
	ext4Error := fanotify.Event{
		Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 7,
		Records: fanotify.HasError | fanotify.HasFID,
		Errno:   linuxEUCLEAN, ErrorCount: 1,
		FID: fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(13, 0xb13216cd)}},
	}
	overflow := fanotify.Event{Mask: fanotify.QueueOverflow, FD: fanotify.NoFD}

	// A metadata_len larger than 24 (a future extension of the metadata)
	// must be honoured: records start at metadata_len, not at 24.
	longMeta := concat(
		u32(24+8+12), []byte{fanotify.MetadataVersion, 0}, u16(24+8),
		u64(uint64(fanotify.FSError)), i32(fanotify.NoFD), i32(3),
		bytes.Repeat([]byte{0xee}, 8), // unknown metadata fields
		errorRecord(linuxEIO, 2),
	)

	tests := []struct {
		name string
		buf  []byte
		want []fanotify.Event
	}{
		{
			name: "empty buffer",
			buf:  nil,
			want: nil,
		},
		{
			name: "error record then FID record",
			buf: event(fanotify.FSError, fanotify.NoFD, 42,
				errorRecord(linuxEUCLEAN, 1),
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleInvalid, nil, "")),
			want: []fanotify.Event{sbError},
		},
		{
			name: "FID record then error record",
			buf: event(fanotify.FSError, fanotify.NoFD, 42,
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleInvalid, nil, ""),
				errorRecord(linuxEUCLEAN, 1)),
			want: []fanotify.Event{sbError},
		},
		{
			name: "ext4 FILEID_INO32_GEN handle",
			buf:  inodeErrorEvent(7, linuxEUCLEAN, 13, 0xb13216cd),
			want: []fanotify.Event{ext4Error},
		},
		{
			name: "FILEID_INO64_GEN handle",
			buf: event(fanotify.FSError, fanotify.NoFD, 9,
				errorRecord(linuxEIO, 5),
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno64Gen, ino64Handle(1<<40|77, 3), "")),
			want: []fanotify.Event{{
				Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 9,
				Records: fanotify.HasError | fanotify.HasFID,
				Errno:   linuxEIO, ErrorCount: 5,
				FID: fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: ino64Handle(1<<40|77, 3)}},
			}},
		},
		{
			name: "unknown record types are skipped by length",
			buf: event(fanotify.FSError, fanotify.NoFD, 42,
				record(200, bytes.Repeat([]byte{0xff}, 20)),
				errorRecord(linuxEUCLEAN, 1),
				record(11, u64(0), u64(4096)), // 11: no record type (yet)
				record(99),                    // header only
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleInvalid, nil, ""),
				record(201, []byte{1, 2, 3, 4, 5, 6, 7, 8})),
			want: []fanotify.Event{sbError},
		},
		{
			name: "queue overflow",
			buf:  event(fanotify.QueueOverflow, fanotify.NoFD, 0),
			want: []fanotify.Event{overflow},
		},
		{
			name: "several events in one buffer",
			buf: concat(
				sbErrorEvent(42, linuxEUCLEAN, 1),
				inodeErrorEvent(7, linuxEUCLEAN, 13, 0xb13216cd),
				event(fanotify.QueueOverflow, fanotify.NoFD, 0),
				sbErrorEvent(100, linuxESHUTDOWN, 3),
			),
			want: []fanotify.Event{sbError, ext4Error, overflow, {
				Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 100,
				Records: fanotify.HasError | fanotify.HasFID,
				Errno:   linuxESHUTDOWN, ErrorCount: 3,
				FID: invalidFID,
			}},
		},
		{
			name: "DFID_NAME record with a name",
			buf: event(0x100, fanotify.NoFD, 5, // FAN_CREATE
				fidRecord(fanotify.InfoDFIDName, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 0), "lost+found"),
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(11, 99), "")),
			want: []fanotify.Event{{
				Mask: 0x100, FD: fanotify.NoFD, PID: 5,
				Records: fanotify.HasDirFID | fanotify.HasFID,
				DirFID:  fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(2, 0)}},
				Name:    "lost+found",
				FID:     fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(11, 99)}},
			}},
		},
		{
			name: "DFID record without a name",
			buf: event(0x200, fanotify.NoFD, 5, // FAN_DELETE
				fidRecord(fanotify.InfoDFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 0), "")),
			want: []fanotify.Event{{
				Mask: 0x200, FD: fanotify.NoFD, PID: 5,
				Records: fanotify.HasDirFID,
				DirFID:  fanotify.FileID{FSID: testFSID, Handle: fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(2, 0)}},
			}},
		},
		{
			name: "mount record",
			buf:  event(fanotify.MountAttach, fanotify.NoFD, 1234, mountRecord(0x80000075)),
			want: []fanotify.Event{{
				Mask: fanotify.MountAttach, FD: fanotify.NoFD, PID: 1234,
				Records: fanotify.HasMount, MountID: 0x80000075,
			}},
		},
		{
			name: "mount moved (attach and detach)",
			buf:  event(fanotify.MountAttach|fanotify.MountDetach, fanotify.NoFD, 1, mountRecord(1<<63|5)),
			want: []fanotify.Event{{
				Mask: fanotify.MountAttach | fanotify.MountDetach, FD: fanotify.NoFD, PID: 1,
				Records: fanotify.HasMount, MountID: 1<<63 | 5,
			}},
		},
		{
			name: "pidfd record",
			buf: event(fanotify.FSError, fanotify.NoFD, 42,
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleInvalid, nil, ""),
				pidfdRecord(17),
				errorRecord(linuxEUCLEAN, 1)),
			want: []fanotify.Event{{
				Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 42,
				Records: fanotify.HasError | fanotify.HasFID | fanotify.HasPIDFD,
				Errno:   linuxEUCLEAN, ErrorCount: 1,
				FID: invalidFID, PIDFD: 17,
			}},
		},
		{
			name: "a second FID record does not replace the first",
			buf: event(fanotify.FSError, fanotify.NoFD, 7,
				fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(13, 0xb13216cd), ""),
				fidRecord(fanotify.InfoFID, fanotify.FSID{1, 1}, fanotify.HandleInvalid, nil, ""),
				errorRecord(linuxEUCLEAN, 1)),
			want: []fanotify.Event{ext4Error},
		},
		{
			name: "metadata_len larger than the known metadata",
			buf:  longMeta,
			want: []fanotify.Event{{
				Mask: fanotify.FSError, FD: fanotify.NoFD, PID: 3,
				Records: fanotify.HasError, Errno: linuxEIO, ErrorCount: 2,
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fanotify.Parse(nil, tt.buf)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse decoded%s\nwant%s", formatEvents(got), formatEvents(tt.want))
			}
			// ParseOne must walk the same buffer event by event to the
			// same result, consuming exactly the buffer.
			off := 0
			for i := range tt.want {
				var ev fanotify.Event
				n, err := fanotify.ParseOne(&ev, tt.buf[off:])
				if err != nil {
					t.Fatalf("ParseOne at byte %d: %v", off, err)
				}
				if !reflect.DeepEqual(ev, tt.want[i]) {
					t.Errorf("ParseOne at byte %d decoded %+v, want %+v", off, ev, tt.want[i])
				}
				off += n
			}
			if off != len(tt.buf) {
				t.Errorf("ParseOne consumed %d bytes of %d", off, len(tt.buf))
			}
		})
	}
}

// TestParseAppends checks that Parse appends to dst and keeps what dst held.
func TestParseAppends(t *testing.T) {
	first := fanotify.Event{Mask: fanotify.QueueOverflow, FD: fanotify.NoFD, PID: 99}
	dst := make([]fanotify.Event, 1, 8)
	dst[0] = first
	got, err := fanotify.Parse(dst, concat(sbErrorEvent(1, linuxEUCLEAN, 1), sbErrorEvent(2, linuxEIO, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !reflect.DeepEqual(got[0], first) || got[1].PID != 1 || got[2].PID != 2 || got[2].Errno != linuxEIO {
		t.Fatalf("Parse(dst with 1 event, 2 events) = %s", formatEvents(got))
	}
	if &got[0] != &dst[0] {
		t.Error("Parse reallocated dst although it had room")
	}
}

// TestParseOneReusesEvent checks that ParseOne clears the fields of a
// previously decoded event that the new event does not carry.
func TestParseOneReusesEvent(t *testing.T) {
	var ev fanotify.Event
	if _, err := fanotify.ParseOne(&ev, inodeErrorEvent(7, linuxEUCLEAN, 13, 1)); err != nil {
		t.Fatal(err)
	}
	n, err := fanotify.ParseOne(&ev, event(fanotify.QueueOverflow, fanotify.NoFD, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := fanotify.Event{Mask: fanotify.QueueOverflow, FD: fanotify.NoFD}
	if n != fanotify.MetadataSize || !reflect.DeepEqual(ev, want) {
		t.Fatalf("ParseOne = %d, %+v; want %d, %+v", n, ev, fanotify.MetadataSize, want)
	}
	if !ev.IsOverflow() || ev.IsFSError() {
		t.Errorf("IsOverflow() = %v, IsFSError() = %v; want true, false", ev.IsOverflow(), ev.IsFSError())
	}
}

// TestParseDoesNotAlias checks that decoded events own their handle bytes
// and names: overwriting the buffer after Parse must not change them.
func TestParseDoesNotAlias(t *testing.T) {
	buf := concat(
		inodeErrorEvent(7, linuxEUCLEAN, 13, 0xb13216cd),
		event(0x100, fanotify.NoFD, 5,
			fidRecord(fanotify.InfoDFIDName, testFSID, fanotify.HandleIno64Gen, ino64Handle(2, 1), "file.txt")),
	)
	evs, err := fanotify.Parse(nil, buf)
	if err != nil || len(evs) != 2 {
		t.Fatalf("Parse = %s, %v", formatEvents(evs), err)
	}
	for i := range buf {
		buf[i] = 0xa5
	}
	if got, want := evs[0].FID.Handle.Bytes, ext4Handle(13, 0xb13216cd); !bytes.Equal(got, want) {
		t.Errorf("FID handle changed with the buffer: %x, want %x", got, want)
	}
	if got, want := evs[1].DirFID.Handle.Bytes, ino64Handle(2, 1); !bytes.Equal(got, want) {
		t.Errorf("DirFID handle changed with the buffer: %x, want %x", got, want)
	}
	if evs[1].Name != "file.txt" {
		t.Errorf("Name changed with the buffer: %q", evs[1].Name)
	}
	if ino, gen, ok := evs[0].FID.Handle.Inode(); !ok || ino != 13 || gen != 0xb13216cd {
		t.Errorf("Inode() after overwriting the buffer = %d, %#x, %v", ino, gen, ok)
	}
}

// TestParseMalformed checks that every kind of malformed input yields a
// *ParseError at the right offset, together with the events decoded before
// the fault.
func TestParseMalformed(t *testing.T) {
	good := sbErrorEvent(42, linuxEUCLEAN, 1) // decoded before each fault
	g := len(good)
	// bad is a well-formed event whose parts the cases below break. Its
	// layout: metadata (0..24), FID record (24..44), error record (44..56).
	bad := sbErrorEvent(43, linuxEIO, 1)
	const fidOff, errOff = 24, 44

	tests := []struct {
		name      string
		bad       []byte // appended to good
		offset    int    // want ParseError.Offset, relative to bad
		isVersion bool   // want errors.Is(err, ErrVersion)
	}{
		{"truncated metadata", bad[:fanotify.MetadataSize-1], 0, false},
		{"truncated metadata (1 byte)", bad[:1], 0, false},
		{"wrong version", func() []byte { c := append([]byte(nil), bad...); c[offVers] = 2; return c }(), 0, true},
		{"version 4", func() []byte { c := append([]byte(nil), bad...); c[offVers] = 4; return c }(), 0, true},
		{"metadata_len shorter than 24", with16(bad, offMetaLen, 16), 0, false},
		{"metadata_len 0", with16(bad, offMetaLen, 0), 0, false},
		{"event_len shorter than metadata_len", with32(bad, offEventLen, 20), 0, false},
		{"event_len 0", with32(bad, offEventLen, 0), 0, false},
		{"event_len past the buffer", with32(bad, offEventLen, uint32(len(bad)+4)), 0, false},
		{"event_len 4 GiB", with32(bad, offEventLen, 0xffffffff), 0, false},
		{"metadata_len past event_len", with16(bad, offMetaLen, uint16(len(bad)+8)), 0, false},
		{"event cut inside a record", with32(bad[:errOff+6], offEventLen, errOff+6), errOff, false},
		{"event ends with a partial record header", with32(concat(bad, []byte{5, 0}), offEventLen, uint32(len(bad)+2)), len(bad), false},
		{"record len shorter than its header", with16(bad, errOff+2, 2), errOff, false},
		{"record len 0", with16(bad, fidOff+2, 0), fidOff, false},
		{"record len past the event's end", with16(bad, errOff+2, 16), errOff, false},
		{"record len past the event's end (first record)", with16(bad, fidOff+2, 0xfffc), fidOff, false},
		{
			"error record too short",
			event(fanotify.FSError, fanotify.NoFD, 43, record(fanotify.InfoError, i32(5))),
			fanotify.MetadataSize, false,
		},
		{
			"FID record too short",
			event(fanotify.FSError, fanotify.NoFD, 43, record(fanotify.InfoFID, i32(1), i32(2), u32(0))),
			fanotify.MetadataSize, false,
		},
		{
			"DFID_NAME record too short",
			event(0x100, fanotify.NoFD, 43, record(fanotify.InfoDFIDName, i32(1))),
			fanotify.MetadataSize, false,
		},
		{
			"handle_bytes larger than the record",
			event(fanotify.FSError, fanotify.NoFD, 43,
				errorRecord(linuxEIO, 1),
				record(fanotify.InfoFID, i32(1), i32(2), u32(16), i32(fanotify.HandleIno32Gen), ext4Handle(1, 2))),
			fanotify.MetadataSize + 12, false,
		},
		{
			"handle_bytes 4 GiB",
			event(fanotify.FSError, fanotify.NoFD, 43,
				record(fanotify.InfoFID, i32(1), i32(2), u32(0xffffffff), i32(fanotify.HandleIno32Gen), ext4Handle(1, 2))),
			fanotify.MetadataSize, false,
		},
		{
			"pidfd record too short",
			event(fanotify.FSError, fanotify.NoFD, 43, record(fanotify.InfoPIDFD)),
			fanotify.MetadataSize, false,
		},
		{
			"mount record too short",
			event(fanotify.MountAttach, fanotify.NoFD, 43, record(fanotify.InfoMount, u32(0), u32(7))),
			fanotify.MetadataSize, false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := concat(good, tt.bad)
			evs, err := fanotify.Parse(nil, buf)
			if err == nil {
				t.Fatalf("Parse succeeded with%s", formatEvents(evs))
			}
			var pe *fanotify.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Offset != g+tt.offset {
				t.Errorf("ParseError.Offset = %d, want %d (%v)", pe.Offset, g+tt.offset, err)
			}
			if pe.Reason == "" {
				t.Error("ParseError.Reason is empty")
			}
			if got := errors.Is(err, fanotify.ErrVersion); got != tt.isVersion {
				t.Errorf("errors.Is(%q, ErrVersion) = %v, want %v", err, got, tt.isVersion)
			}
			if len(evs) != 1 || evs[0].PID != 42 || evs[0].Errno != linuxEUCLEAN {
				t.Errorf("Parse returned%s\nwant the one event before the fault", formatEvents(evs))
			}

			// ParseOne reports the same fault relative to its own buffer.
			var ev fanotify.Event
			n, err := fanotify.ParseOne(&ev, tt.bad)
			if !errors.As(err, &pe) {
				t.Fatalf("ParseOne = %d, %v; want a *ParseError", n, err)
			}
			if pe.Offset != tt.offset || n != 0 {
				t.Errorf("ParseOne = %d, error at byte %d; want 0, error at byte %d", n, pe.Offset, tt.offset)
			}
		})
	}
}

// TestParseErrorMessage checks that the error text carries the offset and
// the reason.
func TestParseErrorMessage(t *testing.T) {
	buf := concat(sbErrorEvent(1, linuxEIO, 1), with16(sbErrorEvent(1, linuxEIO, 1), offMetaLen, 8))
	_, err := fanotify.Parse(nil, buf)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"byte 56", "metadata_len 8"} {
		if !bytes.Contains([]byte(msg), []byte(want)) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

// TestHandleInode checks the decoding of the generic inode handle layouts
// and that unknown or short handles are refused.
func TestHandleInode(t *testing.T) {
	tests := []struct {
		name    string
		h       fanotify.Handle
		ino     uint64
		gen     uint32
		ok      bool
		invalid bool
	}{
		{"ext4 ino32 gen", fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: ext4Handle(13, 0xb13216cd)}, 13, 0xb13216cd, true, false},
		{"ino32 gen parent", fanotify.Handle{Type: fanotify.HandleIno32GenParent, Bytes: concat(ext4Handle(12, 1), ext4Handle(2, 0))}, 12, 1, true, false},
		{"ino64 gen", fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: ino64Handle(1<<33+1, 7)}, 1<<33 + 1, 7, true, false},
		{"ino64 gen parent", fanotify.Handle{Type: fanotify.HandleIno64GenParent, Bytes: concat(ino64Handle(5, 6), ino64Handle(2, 0))}, 5, 6, true, false},
		{"ino32 gen too short", fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: u32(13)}, 0, 0, false, false},
		{"ino32 gen parent too short", fanotify.Handle{Type: fanotify.HandleIno32GenParent, Bytes: []byte{1, 2, 3, 4, 5, 6, 7}}, 0, 0, false, false},
		{"ino64 gen too short", fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: ext4Handle(13, 1)}, 0, 0, false, false},
		{"ino64 gen parent too short", fanotify.Handle{Type: fanotify.HandleIno64GenParent, Bytes: u64(9)}, 0, 0, false, false},
		{"nil bytes", fanotify.Handle{Type: fanotify.HandleIno32Gen}, 0, 0, false, false},
		{"invalid", fanotify.Handle{Type: fanotify.HandleInvalid}, 0, 0, false, true},
		{"invalid with bytes", fanotify.Handle{Type: fanotify.HandleInvalid, Bytes: ext4Handle(13, 1)}, 0, 0, false, true},
		{"btrfs", fanotify.Handle{Type: 0x4d, Bytes: make([]byte, 20)}, 0, 0, false, false},
		// tmpfs's own type-1 layout (generation 0x570cb9de, inode 2, as
		// name_to_handle_at gave it on Linux 6.18): not the generic one.
		{"tmpfs type 1, 12 bytes", fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: []byte{0xde, 0xb9, 0x0c, 0x57, 2, 0, 0, 0, 0, 0, 0, 0}}, 0, 0, false, false},
		{"ino32 gen too long", fanotify.Handle{Type: fanotify.HandleIno32Gen, Bytes: concat(ext4Handle(13, 1), u32(0))}, 0, 0, false, false},
		{"ino32 gen parent too long", fanotify.Handle{Type: fanotify.HandleIno32GenParent, Bytes: concat(ext4Handle(12, 1), ext4Handle(2, 0), u32(0))}, 0, 0, false, false},
		{"ino64 gen too long", fanotify.Handle{Type: fanotify.HandleIno64Gen, Bytes: concat(ino64Handle(5, 6), u32(0))}, 0, 0, false, false},
		{"ino64 gen parent too long", fanotify.Handle{Type: fanotify.HandleIno64GenParent, Bytes: concat(ino64Handle(5, 6), ino64Handle(2, 0), u32(0))}, 0, 0, false, false},
		{"ino64 gen parent short", fanotify.Handle{Type: fanotify.HandleIno64GenParent, Bytes: concat(ino64Handle(5, 6), u64(2))}, 0, 0, false, false},
		{"negative type", fanotify.Handle{Type: -1, Bytes: make([]byte, 16)}, 0, 0, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ino, gen, ok := tt.h.Inode()
			if ino != tt.ino || gen != tt.gen || ok != tt.ok {
				t.Errorf("Inode() = %d, %#x, %v; want %d, %#x, %v", ino, gen, ok, tt.ino, tt.gen, tt.ok)
			}
			if got := tt.h.IsInvalid(); got != tt.invalid {
				t.Errorf("IsInvalid() = %v, want %v", got, tt.invalid)
			}
		})
	}
}

// TestParseAllocations checks the documented allocation behaviour: with
// room in dst, Parse allocates only for non-empty handles and names, so at
// most one allocation per FAN_FS_ERROR event.
func TestParseAllocations(t *testing.T) {
	var buf []byte
	withHandle := 0
	for i := 0; i < 64; i++ {
		if i%2 == 0 {
			buf = append(buf, sbErrorEvent(int32(i), linuxEUCLEAN, 1)...)
		} else {
			buf = append(buf, inodeErrorEvent(int32(i), linuxEUCLEAN, uint32(i), 1)...)
			withHandle++
		}
	}
	dst := make([]fanotify.Event, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if dst, err = fanotify.Parse(dst[:0], buf); err != nil || len(dst) != 64 {
			t.Fatalf("Parse = %d events, %v", len(dst), err)
		}
	})
	if allocs > float64(withHandle) {
		t.Errorf("Parse of 64 events (%d with handle bytes) made %v allocations, want at most %d", withHandle, allocs, withHandle)
	}
}
