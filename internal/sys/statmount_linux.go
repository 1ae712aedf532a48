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
	// carry, never reused); ParentID its parent's. OldID and OldParentID
	// are the ids /proc/self/mountinfo shows (reused once freed).
	ID, ParentID       uint64
	OldID, OldParentID uint32
	// Major and Minor are the device number of its superblock.
	Major, Minor uint32
	// FSType is the file system type, e.g. "ext4", with its subtype where
	// the kernel reports one ("fuse.sshfs"), as mountinfo shows it.
	FSType string
	// Root is the mount's root within the file system; Point its mount
	// point, relative to the process's root. Neither is escaped.
	Root, Point string
	// Source is the mount source ("/dev/sda1"), or "" on kernels that do
	// not report it (before Linux 6.13).
	Source string
}

// statmount(2) request flags and the layout of struct statmount
// (include/uapi/linux/mount.h): a fixed part of 512 bytes, whose string
// fields are offsets into the strings that follow it.
const (
	statmountSBBasic   = 0x1
	statmountMntBasic  = 0x2
	statmountMntRoot   = 0x8
	statmountMntPoint  = 0x10
	statmountFSType    = 0x20
	statmountFSSubtype = 0x100
	statmountSBSource  = 0x200

	statmountRequired = statmountSBBasic | statmountMntBasic | statmountMntRoot | statmountMntPoint | statmountFSType
	statmountOptional = statmountFSSubtype | statmountSBSource

	mntIDReqSize     = 24 // MNT_ID_REQ_SIZE_VER0
	statmountStrings = 512
	// lsmtRoot is LSMT_ROOT: listmount(2) from the namespace's root.
	lsmtRoot = ^uint64(0)
)

// UnsupportedError says that the running kernel lacks a system call; it
// names the first Linux version that has it.
type UnsupportedError struct {
	// Call is the missing system call, e.g. "statmount(2)".
	Call string
	// MinVersion is the first Linux version with it, e.g. "6.8".
	MinVersion string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s is not supported by this kernel (needs Linux %s or later)", e.Call, e.MinVersion)
}

// ErrNoStatmount and ErrNoListmount are returned on kernels without
// statmount(2) or listmount(2) (before Linux 6.8).
var (
	ErrNoStatmount error = &UnsupportedError{Call: "statmount(2)", MinVersion: "6.8"}
	ErrNoListmount error = &UnsupportedError{Call: "listmount(2)", MinVersion: "6.8"}
)

// Statmounter looks mounts up with statmount(2), reusing its buffer: each
// look-up allocates only the strings it returns. It is not safe for
// concurrent use.
type Statmounter struct {
	buf []byte
}

// Statmount looks the mount with the unique id up. The error wraps
// unix.ENOENT once the mount is gone.
func Statmount(id uint64) (Mount, error) {
	var s Statmounter
	return s.Statmount(id)
}

// Statmount looks the mount with the unique id up. The error wraps
// unix.ENOENT once the mount is gone.
func (s *Statmounter) Statmount(id uint64) (Mount, error) {
	const want = statmountRequired | statmountOptional
	req := [mntIDReqSize]byte{}
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], mntIDReqSize)
	ne.PutUint64(req[8:], id)
	ne.PutUint64(req[16:], want) // param: what to return
	if len(s.buf) == 0 {
		s.buf = make([]byte, 4096)
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_STATMOUNT, uintptr(unsafe.Pointer(&req[0])), uintptr(unsafe.Pointer(&s.buf[0])), uintptr(len(s.buf)),
			0, 0, 0)
		switch errno {
		case 0:
		case unix.EOVERFLOW:
			if len(s.buf) >= 1<<20 {
				return Mount{}, fmt.Errorf("statmount of mount %d: reply larger than 1 MiB: %w", id, errno)
			}
			s.buf = make([]byte, 2*len(s.buf))
			continue
		case unix.ENOSYS:
			return Mount{}, ErrNoStatmount
		default:
			return Mount{}, fmt.Errorf("statmount of mount %d: %w", id, errno)
		}
		break
	}
	return parseStatmount(s.buf, statmountRequired)
}

// parseStatmount decodes a struct statmount the kernel wrote into b; want
// are the fields it must have.
func parseStatmount(b []byte, want uint64) (Mount, error) {
	ne := binary.NativeEndian
	if len(b) < statmountStrings {
		return Mount{}, errors.New("statmount: short buffer")
	}
	size := int(ne.Uint32(b[0:]))
	if size < statmountStrings || size > len(b) {
		return Mount{}, fmt.Errorf("statmount: size %d out of range", size)
	}
	mask := ne.Uint64(b[8:])
	if mask&want != want {
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
	m := Mount{
		Major:       ne.Uint32(b[16:]),
		Minor:       ne.Uint32(b[20:]),
		FSType:      str(36),
		ID:          ne.Uint64(b[40:]),
		ParentID:    ne.Uint64(b[48:]),
		OldID:       ne.Uint32(b[56:]),
		OldParentID: ne.Uint32(b[60:]),
		Root:        str(104),
		Point:       str(108),
	}
	if mask&statmountFSSubtype != 0 {
		if sub := str(120); sub != "" {
			m.FSType += "." + sub
		}
	}
	if mask&statmountSBSource != 0 {
		m.Source = str(124)
	}
	return m, nil
}

// Listmount appends to dst the unique ids of every mount in the caller's
// mount namespace that is visible from its root (listmount(2), Linux 6.8+;
// the whole namespace, in id order, from Linux 6.9).
func Listmount(dst []uint64) ([]uint64, error) {
	var chunk [512]uint64
	last := uint64(0)
	for {
		req := [mntIDReqSize]byte{}
		ne := binary.NativeEndian
		ne.PutUint32(req[0:], mntIDReqSize)
		ne.PutUint64(req[8:], lsmtRoot)
		ne.PutUint64(req[16:], last) // param: list after this id
		n, _, errno := unix.Syscall6(unix.SYS_LISTMOUNT, uintptr(unsafe.Pointer(&req[0])), uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)),
			0, 0, 0)
		switch errno {
		case 0:
		case unix.ENOSYS:
			return dst, ErrNoListmount
		default:
			return dst, fmt.Errorf("listmount: %w", errno)
		}
		if int(n) > len(chunk) {
			return dst, fmt.Errorf("listmount: returned %d ids for %d slots", n, len(chunk))
		}
		dst = append(dst, chunk[:n]...)
		if int(n) < len(chunk) {
			return dst, nil
		}
		last = chunk[n-1]
	}
}
