package sys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mount is what statmount(2) (Linux 6.8+) says about one mount.
type Mount struct {
	// ID is the mount's unique 64-bit id (what fanotify mount events
	// carry); OldID the id /proc/self/mountinfo shows.
	ID    uint64
	OldID uint32
	// Major and Minor are the device number of its superblock.
	Major, Minor uint32
	// FSType is the file system type, e.g. "ext4".
	FSType string
	// Root is the mount's root within the file system; Point its mount
	// point, relative to the process's root.
	Root, Point string
}

// statmount(2) request flags and the layout of struct statmount
// (include/uapi/linux/mount.h): a fixed part of 512 bytes, whose string
// fields are offsets into the strings that follow it.
const (
	statmountSBBasic  = 0x1
	statmountMntBasic = 0x2
	statmountMntRoot  = 0x8
	statmountMntPoint = 0x10
	statmountFSType   = 0x20

	mntIDReqSize     = 24 // MNT_ID_REQ_SIZE_VER0
	statmountStrings = 512
)

// ErrNoStatmount is returned by Statmount on kernels without statmount(2)
// (before Linux 6.8).
var ErrNoStatmount = errors.New("statmount(2) needs Linux 6.8 or later")

// Statmount looks the mount with the unique id up. The error wraps
// unix.ENOENT once the mount is gone.
func Statmount(id uint64) (Mount, error) {
	const want = statmountSBBasic | statmountMntBasic | statmountMntRoot | statmountMntPoint | statmountFSType
	req := [mntIDReqSize]byte{}
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], mntIDReqSize)
	ne.PutUint64(req[8:], id)
	ne.PutUint64(req[16:], want) // param: what to return
	buf := make([]byte, 4096)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_STATMOUNT, uintptr(unsafe.Pointer(&req[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			0, 0, 0)
		switch errno {
		case 0:
		case unix.EOVERFLOW:
			buf = make([]byte, 2*len(buf))
			continue
		case unix.ENOSYS:
			return Mount{}, ErrNoStatmount
		default:
			return Mount{}, fmt.Errorf("statmount of mount %d: %w", id, errno)
		}
		break
	}
	return parseStatmount(buf, want)
}

// parseStatmount decodes a struct statmount the kernel wrote into b.
func parseStatmount(b []byte, want uint64) (Mount, error) {
	ne := binary.NativeEndian
	if len(b) < statmountStrings {
		return Mount{}, errors.New("statmount: short buffer")
	}
	size := int(ne.Uint32(b[0:]))
	if size < statmountStrings || size > len(b) {
		return Mount{}, fmt.Errorf("statmount: size %d out of range", size)
	}
	if mask := ne.Uint64(b[8:]); mask&want != want {
		// The kernel leaves out what it does not know, e.g. no mount
		// point for a mount outside the caller's root.
		return Mount{}, fmt.Errorf("statmount: got fields %#x, want %#x", mask, want)
	}
	str := func(off int) string {
		o := statmountStrings + int(ne.Uint32(b[off:]))
		if o >= size {
			return ""
		}
		s := b[o:size]
		if i := bytes.IndexByte(s, 0); i >= 0 {
			s = s[:i]
		}
		return string(s)
	}
	return Mount{
		Major:  ne.Uint32(b[16:]),
		Minor:  ne.Uint32(b[20:]),
		FSType: str(36),
		ID:     ne.Uint64(b[40:]),
		OldID:  ne.Uint32(b[56:]),
		Root:   str(104),
		Point:  str(108),
	}, nil
}
