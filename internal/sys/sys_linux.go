// Package sys is fshealth's thin layer over Linux system calls that
// golang.org/x/sys/unix does not wrap: file system UUID and label ioctls, and
// resolving a file handle to a path.
package sys

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
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

// HandlePath opens the inode named by a file handle on the file system
// mounted at mountpoint and returns its path as the kernel sees it. The inode
// is opened with O_PATH, so opening it has no side effects (no device, FIFO
// or automount is triggered) and needs no read permission. Corrupted and
// deleted inodes fail with ESTALE; a path the kernel cannot reconnect to the
// mount's root may come back as "/" or end in " (deleted)".
func HandlePath(mountpoint string, handleType int32, handle []byte) (string, error) {
	mfd, err := unix.Open(mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: mountpoint, Err: err}
	}
	defer unix.Close(mfd)
	fh := unix.NewFileHandle(handleType, handle)
	fd, err := unix.OpenByHandleAt(mfd, fh, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return "", fmt.Errorf("open_by_handle_at: %w", err)
	}
	defer unix.Close(fd)
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	// A file whose dentry is not in the kernel's cache comes back
	// disconnected from the tree, and its link reads "/" (or the mount
	// point); a deleted one ends in " (deleted)". Only a path that leads
	// to this very inode is its path.
	var want, got unix.Stat_t
	if err := unix.Fstat(fd, &want); err != nil {
		return "", &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if err := unix.Fstatat(unix.AT_FDCWD, p, &got, unix.AT_SYMLINK_NOFOLLOW); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		return "", ErrDisconnected
	}
	return p, nil
}

// ErrDisconnected is returned by HandlePath for an inode the kernel opened
// but could not place in the directory tree: a file not in its dentry
// cache (the kernel knows a file's parent only from the cache; directories
// are always reconnected), or one deleted or renamed meanwhile.
var ErrDisconnected = errors.New("the kernel could not place the inode in the directory tree (a file not in its dentry cache, or deleted or renamed)")
