package fanotify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
)

// ParseError says why a buffer could not be decoded and where.
type ParseError struct {
	// Offset is the byte offset in the buffer of the event or record at fault.
	Offset int
	// Reason describes what is wrong.
	Reason string
	// Err is a sentinel the error matches with errors.Is (ErrVersion), or nil.
	Err error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("fanotify: malformed event at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

// ErrVersion is wrapped by the error for an event whose metadata version is
// not MetadataVersion: its layout is unknown, so nothing after it is decoded.
var ErrVersion = errors.New("fanotify: unsupported event metadata version")

// Parse decodes every event in buf, which holds what one read(2) from a
// fanotify descriptor returned, and appends them to dst. Events are walked by
// their event_len and records by their header len, in whatever order the
// kernel wrote them; records of unknown types are skipped.
//
// On malformed input Parse returns the events decoded before the fault and a
// *ParseError (wrapping ErrVersion for a version mismatch). It never panics,
// never reads outside buf and always terminates.
//
// Parse allocates only to copy non-empty file handles and names out of buf,
// so the returned events do not alias it.
func Parse(dst []Event, buf []byte) ([]Event, error) {
	off := 0
	for off < len(buf) {
		dst = append(dst, Event{})
		n, err := parseOne(&dst[len(dst)-1], buf[off:], off)
		if err != nil {
			dst[len(dst)-1] = Event{} // drop what the failed event held
			return dst[:len(dst)-1], err
		}
		off += n
	}
	return dst, nil
}

// setEPERM sets FDError to EPERM for the events whose fd is -1, if they
// come from a group with FAN_REPORT_FD_ERROR (fdError): such groups report
// -EBADF for events without a descriptor, so -1 is -EPERM there.
func setEPERM(evs []Event, fdError bool) {
	if !fdError {
		return
	}
	for i := range evs {
		if evs[i].FD == -1 {
			evs[i].FDError = syscall.EPERM
		}
	}
}

// ParseOne decodes the first event in buf into ev and returns its length, so
// a caller can walk a buffer event by event. On error, ev may hold part of
// the event and must not be used.
func ParseOne(ev *Event, buf []byte) (int, error) {
	return parseOne(ev, buf, 0)
}

var ne = binary.NativeEndian

// parseOne decodes one event from b; base is b's offset in the caller's
// buffer, for error messages.
func parseOne(ev *Event, b []byte, base int) (int, error) {
	*ev = Event{}
	if len(b) < MetadataSize {
		return 0, &ParseError{Offset: base, Reason: fmt.Sprintf("%d bytes left, shorter than the %d-byte event metadata", len(b), MetadataSize)}
	}
	eventLen := ne.Uint32(b[0:])
	vers := b[4]
	metaLen := ne.Uint16(b[6:])
	if vers != MetadataVersion {
		return 0, &ParseError{Offset: base, Reason: fmt.Sprintf("%v %d (want %d)", ErrVersion, vers, MetadataVersion), Err: ErrVersion}
	}
	if int(metaLen) < MetadataSize {
		return 0, &ParseError{Offset: base, Reason: fmt.Sprintf("metadata_len %d is shorter than %d", metaLen, MetadataSize)}
	}
	if eventLen < uint32(metaLen) {
		return 0, &ParseError{Offset: base, Reason: fmt.Sprintf("event_len %d is shorter than metadata_len %d", eventLen, metaLen)}
	}
	if uint64(eventLen) > uint64(len(b)) {
		return 0, &ParseError{Offset: base, Reason: fmt.Sprintf("event_len %d runs past the %d bytes left", eventLen, len(b))}
	}
	ev.Mask = Mask(ne.Uint64(b[8:]))
	ev.FD = int32(ne.Uint32(b[16:]))
	ev.PID = int32(ne.Uint32(b[20:]))
	if ev.FD < NoFD {
		// FAN_REPORT_FD_ERROR: the kernel could not open the file.
		ev.FDError = syscall.Errno(-int64(ev.FD))
	}

	end := int(eventLen)
	for off := int(metaLen); off < end; {
		if end-off < 4 {
			return 0, &ParseError{Offset: base + off, Reason: fmt.Sprintf("%d bytes left in the event, shorter than an info record header", end-off)}
		}
		typ := b[off]
		rlen := int(ne.Uint16(b[off+2:]))
		if rlen < 4 {
			return 0, &ParseError{Offset: base + off, Reason: fmt.Sprintf("info record type %d has length %d, shorter than its header", typ, rlen)}
		}
		if rlen > end-off {
			return 0, &ParseError{Offset: base + off, Reason: fmt.Sprintf("info record type %d has length %d, past the event's end (%d bytes left)", typ, rlen, end-off)}
		}
		if err := parseRecord(ev, typ, b[off:off+rlen]); err != nil {
			return 0, &ParseError{Offset: base + off, Reason: err.Error()}
		}
		off += rlen
	}
	return end, nil
}

// parseRecord decodes one info record r (header included) into ev.
func parseRecord(ev *Event, typ byte, r []byte) error {
	switch typ {
	case InfoError:
		if len(r) < 12 {
			return fmt.Errorf("error record has length %d, want at least 12", len(r))
		}
		ev.Records |= HasError
		ev.Errno = syscall.Errno(int32(ne.Uint32(r[4:])))
		ev.ErrorCount = ne.Uint32(r[8:])
	case InfoFID:
		if ev.Records&HasFID != 0 {
			return nil // keep the first; later duplicates are not part of any ABI
		}
		if _, err := parseFileID(&ev.FID, r); err != nil {
			return err
		}
		ev.Records |= HasFID
	case InfoDFID, InfoDFIDName:
		if ev.Records&HasDirFID != 0 {
			return nil
		}
		if err := parseNamedFileID(&ev.DirFID, &ev.Name, typ == InfoDFIDName, r); err != nil {
			return err
		}
		ev.Records |= HasDirFID
	case InfoOldDFIDName:
		if ev.Records&HasOldName != 0 {
			return nil
		}
		if err := parseNamedFileID(&ev.OldDirFID, &ev.OldName, true, r); err != nil {
			return err
		}
		ev.Records |= HasOldName
	case InfoNewDFIDName:
		if ev.Records&HasNewName != 0 {
			return nil
		}
		if err := parseNamedFileID(&ev.NewDirFID, &ev.NewName, true, r); err != nil {
			return err
		}
		ev.Records |= HasNewName
	case InfoRange:
		if len(r) < 24 {
			return fmt.Errorf("range record has length %d, want at least 24", len(r))
		}
		ev.Records |= HasRange
		ev.RangeOffset = ne.Uint64(r[8:])
		ev.RangeCount = ne.Uint64(r[16:])
	case InfoPIDFD:
		if len(r) < 8 {
			return fmt.Errorf("pidfd record has length %d, want at least 8", len(r))
		}
		ev.Records |= HasPIDFD
		ev.PIDFD = int32(ne.Uint32(r[4:]))
	case InfoMount:
		if len(r) < 16 {
			return fmt.Errorf("mount record has length %d, want at least 16", len(r))
		}
		ev.Records |= HasMount
		ev.MountID = ne.Uint64(r[8:])
	}
	// Other types (future ones) are skipped by their length, as the kernel
	// documentation requires.
	return nil
}

// parseNamedFileID decodes a FID-style record r into fid and, if named, the
// NUL-terminated entry name after the handle into name.
func parseNamedFileID(fid *FileID, name *string, named bool, r []byte) error {
	n, err := parseFileID(fid, r)
	if err != nil {
		return err
	}
	if named {
		b := r[n:]
		for i, c := range b {
			if c == 0 {
				b = b[:i]
				break
			}
		}
		*name = string(b)
	}
	return nil
}

// parseFileID decodes the fsid and file handle of a FID-style record r and
// returns the offset just past the handle.
func parseFileID(fid *FileID, r []byte) (int, error) {
	const fixed = 4 + 8 + 8 // header, fsid, handle_bytes + handle_type
	if len(r) < fixed {
		return 0, fmt.Errorf("fid record (type %d) has length %d, want at least %d", r[0], len(r), fixed)
	}
	fid.FSID = FSID{int32(ne.Uint32(r[4:])), int32(ne.Uint32(r[8:]))}
	hlen := ne.Uint32(r[12:])
	fid.Handle.Type = int32(ne.Uint32(r[16:]))
	if uint64(hlen) > uint64(len(r)-fixed) {
		return 0, fmt.Errorf("fid record (type %d) claims a %d-byte handle but has room for %d", r[0], hlen, len(r)-fixed)
	}
	if hlen > 0 {
		fid.Handle.Bytes = append([]byte(nil), r[fixed:fixed+int(hlen)]...)
	}
	return fixed + int(hlen), nil
}
