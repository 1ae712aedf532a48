package fanotify_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
)

// parseOneOK parses b as exactly one event and fails t otherwise.
func parseOneOK(t *testing.T, what string, b []byte) fanotify.Event {
	t.Helper()
	var ev fanotify.Event
	n, err := fanotify.ParseOne(&ev, b)
	if err != nil || n != len(b) {
		t.Fatalf("%s: ParseOne = %d, %v; want %d bytes read", what, n, err, len(b))
	}
	evs, err := fanotify.Parse(nil, b)
	if err != nil || len(evs) != 1 || !reflect.DeepEqual(evs[0], ev) {
		t.Fatalf("%s: Parse = %v, %v", what, evs, err)
	}
	return ev
}

// TestParseExactFits: every length check accepts the length it asks for:
// an event of bare metadata, a longer metadata_len (fields of a future
// version, skipped), a record of a bare header, and records of exactly
// their minimum sizes.
func TestParseExactFits(t *testing.T) {
	ev := parseOneOK(t, "bare metadata", event(fanotify.FSError, fanotify.NoFD, 7))
	if ev.Records != 0 || ev.PID != 7 || ev.Mask != fanotify.FSError {
		t.Errorf("bare metadata: %+v", ev)
	}

	// metadata_len 32: the 8 bytes after the known fields are skipped.
	long := event(fanotify.FSError, fanotify.NoFD, 7, make([]byte, 8), errorRecord(linuxEIO, 3))
	long = with16(long, offMetaLen, fanotify.MetadataSize+8)
	ev = parseOneOK(t, "metadata_len 32", long)
	if ev.Records != fanotify.HasError || ev.Errno != linuxEIO || ev.ErrorCount != 3 {
		t.Errorf("metadata_len 32: %+v", ev)
	}

	// An unknown record of its bare 4-byte header, last in the event.
	ev = parseOneOK(t, "bare header", event(fanotify.FSError, fanotify.NoFD, 7, errorRecord(linuxEIO, 1), record(200)))
	if ev.Records != fanotify.HasError {
		t.Errorf("bare header: %+v", ev)
	}

	// A FID record of exactly its fixed part: no handle bytes at all.
	ev = parseOneOK(t, "FID without handle", event(fanotify.FSError, fanotify.NoFD, 7,
		record(fanotify.InfoFID, i32(testFSID[0]), i32(testFSID[1]), u32(0), i32(fanotify.HandleInvalid))))
	if ev.Records != fanotify.HasFID || ev.FID.Handle.Bytes != nil || ev.FID.FSID != testFSID || ev.FID.Handle.Type != fanotify.HandleInvalid {
		t.Errorf("FID without handle: %+v (handle bytes %#v)", ev.FID, ev.FID.Handle.Bytes)
	}

	// A handle that fills the record to its last byte (no padding).
	h := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	ev = parseOneOK(t, "handle to the end", event(fanotify.FSError, fanotify.NoFD, 7,
		record(fanotify.InfoFID, i32(1), i32(2), u32(uint32(len(h))), i32(fanotify.HandleIno64Gen), h)))
	if !reflect.DeepEqual(ev.FID.Handle.Bytes, h) {
		t.Errorf("handle to the end: %v", ev.FID.Handle.Bytes)
	}

	// Records of exactly their minimum sizes.
	ev = parseOneOK(t, "minimum records", event(fanotify.MountAttach, fanotify.NoFD, 7,
		record(fanotify.InfoError, i32(5), u32(9)), record(fanotify.InfoPIDFD, i32(33)), record(fanotify.InfoMount, u32(0), u64(77))))
	if ev.Errno != 5 || ev.ErrorCount != 9 || ev.PIDFD != 33 || ev.MountID != 77 ||
		ev.Records != fanotify.HasError|fanotify.HasPIDFD|fanotify.HasMount {
		t.Errorf("minimum records: %+v", ev)
	}
}

// TestParseNameAndDuplicates: a DFID_NAME record's name ends at its NUL,
// or at the record's end without one; of duplicate FID and DFID records
// the first counts.
func TestParseNameAndDuplicates(t *testing.T) {
	noNUL := record(fanotify.InfoDFIDName, i32(1), i32(2), u32(8), i32(fanotify.HandleIno32Gen), ext4Handle(12, 1), []byte("name"))
	ev := parseOneOK(t, "name without NUL", event(0x100, fanotify.NoFD, 7, noNUL))
	if ev.Name != "name" || ev.Records != fanotify.HasDirFID {
		t.Errorf("name without NUL: %q, records %v", ev.Name, ev.Records)
	}
	ev = parseOneOK(t, "name and padding", event(0x100, fanotify.NoFD, 7,
		fidRecord(fanotify.InfoDFIDName, testFSID, fanotify.HandleIno32Gen, ext4Handle(12, 1), "ab")))
	if ev.Name != "ab" {
		t.Errorf("name and padding: %q", ev.Name)
	}
	first := fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(12, 1), "")
	second := fidRecord(fanotify.InfoFID, fanotify.FSID{9, 9}, fanotify.HandleIno32Gen, ext4Handle(99, 9), "")
	dfirst := fidRecord(fanotify.InfoDFIDName, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 1), "first")
	dsecond := fidRecord(fanotify.InfoDFID, fanotify.FSID{9, 9}, fanotify.HandleIno32Gen, ext4Handle(98, 9), "")
	ev = parseOneOK(t, "duplicates", event(fanotify.FSError, fanotify.NoFD, 7, first, dfirst, second, dsecond))
	if ev.FID.FSID != testFSID || !reflect.DeepEqual(ev.FID.Handle.Bytes, ext4Handle(12, 1)) ||
		ev.DirFID.FSID != testFSID || ev.Name != "first" {
		t.Errorf("duplicates: the later records replaced the first: %+v", ev)
	}
}

// TestParseErrorReasons: the reasons say how many bytes were left, as
// golden text.
func TestParseErrorReasons(t *testing.T) {
	bad := sbErrorEvent(43, linuxEIO, 1) // metadata 0..24, FID 24..44, error 44..56
	for _, c := range []struct {
		buf    []byte
		reason string
	}{
		{with32(concat(bad, []byte{5, 0}), offEventLen, uint32(len(bad)+2)),
			"2 bytes left in the event, shorter than an info record header"},
		{with16(bad, 44+2, 16),
			fmt.Sprintf("info record type %d has length 16, past the event's end (12 bytes left)", fanotify.InfoError)},
		{with16(bad, 24+2, 40),
			fmt.Sprintf("info record type %d has length 40, past the event's end (32 bytes left)", fanotify.InfoFID)},
		{event(fanotify.FSError, fanotify.NoFD, 43,
			record(fanotify.InfoFID, i32(1), i32(2), u32(16), i32(fanotify.HandleIno32Gen), ext4Handle(1, 2))),
			fmt.Sprintf("fid record (type %d) claims a 16-byte handle but has room for 8", fanotify.InfoFID)},
	} {
		_, err := fanotify.Parse(nil, c.buf)
		var pe *fanotify.ParseError
		if !errors.As(err, &pe) || pe.Reason != c.reason {
			t.Errorf("Parse: %v, want the reason %q", err, c.reason)
		}
	}
}
