package fanotify_test

import (
	"encoding/binary"
	"syscall"

	"github.com/fshealth/fshealth/fanotify"
)

// This file holds helpers that encode fanotify events the way the kernel
// lays them out (struct fanotify_event_metadata followed by info records,
// native byte order), so tests can build well-formed and malformed buffers
// by hand.

// Linux errno values that the events in these tests carry. They are
// spelled out because the parser runs on any OS, and other systems number
// errors differently (or, for EUCLEAN, not at all).
const (
	linuxEIO       syscall.Errno = 5
	linuxESHUTDOWN syscall.Errno = 108
	linuxEUCLEAN   syscall.Errno = 117
	linuxEROFS     syscall.Errno = 30
)

// ne is the byte order of the running machine, which is the byte order of
// everything read(2) returns from a fanotify descriptor.
var ne = binary.NativeEndian

// u16 encodes v in native byte order.
func u16(v uint16) []byte { return ne.AppendUint16(nil, v) }

// u32 encodes v in native byte order.
func u32(v uint32) []byte { return ne.AppendUint32(nil, v) }

// i32 encodes v in native byte order.
func i32(v int32) []byte { return ne.AppendUint32(nil, uint32(v)) }

// u64 encodes v in native byte order.
func u64(v uint64) []byte { return ne.AppendUint64(nil, v) }

// concat joins byte slices into a new slice.
func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// record encodes an info record of type typ: the header
// {u8 info_type; u8 pad; u16 len}, with len covering the header and body,
// followed by the body parts.
func record(typ uint8, body ...[]byte) []byte {
	b := concat(body...)
	return concat([]byte{typ, 0}, u16(uint16(4+len(b))), b)
}

// errorRecord encodes a FAN_EVENT_INFO_TYPE_ERROR record
// {hdr; s32 error; u32 error_count}.
func errorRecord(errno syscall.Errno, count uint32) []byte {
	return record(fanotify.InfoError, i32(int32(errno)), u32(count))
}

// fidRecord encodes a FID-style record of type typ (InfoFID, InfoDFID,
// InfoDFIDName, InfoOldDFIDName or InfoNewDFIDName): {hdr; fsid; u32
// handle_bytes; s32 handle_type; handle} and, for the named types, the
// NUL-terminated name. Like the kernel, it pads
// the record to a multiple of 4 bytes.
func fidRecord(typ uint8, fsid fanotify.FSID, htype int32, handle []byte, name string) []byte {
	body := concat(i32(fsid[0]), i32(fsid[1]), u32(uint32(len(handle))), i32(htype), handle)
	if typ == fanotify.InfoDFIDName || typ == fanotify.InfoOldDFIDName || typ == fanotify.InfoNewDFIDName {
		body = append(append(body, name...), 0)
	}
	for (4+len(body))%4 != 0 {
		body = append(body, 0)
	}
	return record(typ, body)
}

// mountRecord encodes a FAN_EVENT_INFO_TYPE_MNT record: the header, 4 bytes
// of padding, then the u64 mount id at offset 8 (16 bytes in all).
func mountRecord(id uint64) []byte {
	return record(fanotify.InfoMount, make([]byte, 4), u64(id))
}

// rangeRecord encodes a FAN_EVENT_INFO_TYPE_RANGE record
// {hdr; u32 pad; u64 offset; u64 count} (24 bytes).
func rangeRecord(offset, count uint64) []byte {
	return record(fanotify.InfoRange, make([]byte, 4), u64(offset), u64(count))
}

// pidfdRecord encodes a FAN_EVENT_INFO_TYPE_PIDFD record {hdr; s32 pidfd}.
func pidfdRecord(fd int32) []byte {
	return record(fanotify.InfoPIDFD, i32(fd))
}

// event encodes one event: fanotify_event_metadata (version 3,
// metadata_len 24, event_len covering the records) followed by records.
func event(mask fanotify.Mask, fd, pid int32, records ...[]byte) []byte {
	recs := concat(records...)
	return concat(
		u32(uint32(fanotify.MetadataSize+len(recs))),
		[]byte{fanotify.MetadataVersion, 0},
		u16(fanotify.MetadataSize),
		u64(uint64(mask)),
		i32(fd),
		i32(pid),
		recs,
	)
}

// Byte offsets of the fields of struct fanotify_event_metadata.
const (
	offEventLen = 0
	offVers     = 4
	offMetaLen  = 6
)

// with16 returns a copy of b with the native-endian u16 at off set to v.
func with16(b []byte, off int, v uint16) []byte {
	c := append([]byte(nil), b...)
	ne.PutUint16(c[off:], v)
	return c
}

// with32 returns a copy of b with the native-endian u32 at off set to v.
func with32(b []byte, off int, v uint32) []byte {
	c := append([]byte(nil), b...)
	ne.PutUint32(c[off:], v)
	return c
}

// testFSID is the fsid the hand-built events carry.
var testFSID = fanotify.FSID{0x11223344, -0x01020304}

// ext4Handle encodes an ext4 FILEID_INO32_GEN handle: u32 inode, u32
// generation.
func ext4Handle(ino, gen uint32) []byte { return concat(u32(ino), u32(gen)) }

// ino64Handle encodes a FILEID_INO64_GEN handle: u64 inode, u32 generation.
func ino64Handle(ino uint64, gen uint32) []byte { return concat(u64(ino), u32(gen)) }

// sbErrorEvent is a FAN_FS_ERROR event not tied to an inode, laid out as
// this kernel writes it: FID record (FILEID_INVALID, no handle bytes), then
// the error record.
func sbErrorEvent(pid int32, errno syscall.Errno, count uint32) []byte {
	return event(fanotify.FSError, fanotify.NoFD, pid,
		fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleInvalid, nil, ""),
		errorRecord(errno, count))
}

// inodeErrorEvent is a FAN_FS_ERROR event about an ext4 inode.
func inodeErrorEvent(pid int32, errno syscall.Errno, ino, gen uint32) []byte {
	return event(fanotify.FSError, fanotify.NoFD, pid,
		fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(ino, gen), ""),
		errorRecord(errno, 1))
}
