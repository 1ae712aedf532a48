// Package sys is fshealth's thin layer over Linux system calls that
// golang.org/x/sys/unix does not wrap: file system UUID and label ioctls, and
// statmount(2). (It has no handle → path resolution: opening an inode an
// error is about can raise a new file system error; see package pathfind.)
package sys

import (
	"bytes"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request numbers from linux/fs.h, computed with _IOR.
const (
	// fsIocGetFSUUID is FS_IOC_GETFSUUID, _IOR(0x15, 0, struct fsuuid2),
	// Linux 6.5+.
	fsIocGetFSUUID = 0x80111500
	// fsIocGetFSLabel is FS_IOC_GETFSLABEL, _IOR(0x94, 49, char[256]),
	// Linux 4.18+ (ext4, xfs, btrfs, f2fs, ...).
	fsIocGetFSLabel = 0x81009431
)

// fsuuid2 is struct fsuuid2 from linux/fs.h.
type fsuuid2 struct {
	Len  uint8
	UUID [16]byte
}

// FSUUID returns the UUID of the file system holding the open directory fd
// with FS_IOC_GETFSUUID. It fails with ENOTTY on kernels before 6.5 and on
// file systems without a UUID.
func FSUUID(fd int) ([]byte, error) {
	var u fsuuid2
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocGetFSUUID, uintptr(unsafe.Pointer(&u))); e != 0 {
		return nil, e
	}
	if u.Len == 0 || int(u.Len) > len(u.UUID) {
		return nil, unix.ENODATA
	}
	return append([]byte(nil), u.UUID[:u.Len]...), nil
}

// FSLabel returns the label of the file system holding fd with
// FS_IOC_GETFSLABEL.
func FSLabel(fd int) (string, error) {
	var b [256]byte
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), fsIocGetFSLabel, uintptr(unsafe.Pointer(&b[0]))); e != 0 {
		return "", e
	}
	if i := bytes.IndexByte(b[:], 0); i >= 0 {
		return string(b[:i]), nil
	}
	return string(b[:]), nil
}
