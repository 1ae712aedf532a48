package mounts

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/sys"
)

// Info is a file system with what fshealth learned about it by probing: its
// fsid (the key FAN_FS_ERROR events carry), device, UUID and label.
type Info struct {
	*Filesystem
	// FSID is statfs(2)'s f_fsid for the file system.
	FSID fanotify.FSID
	// Device is the device node path, e.g. "/dev/loop0"; for file systems
	// without a block device, the mount source.
	Device string
	// KernelName is the kernel's name of the block device, e.g. "loop0" or
	// "dm-0" (the directory name under /sys/fs/ext4/), or "" if none.
	KernelName string
	// UUID is the file system UUID in its canonical form, or "".
	UUID string
	// Label is the file system label, or "".
	Label string
}

// Probe fills in an Info for fs. sysRoot is the sysfs mount (normally
// "/sys"). Only the fsid is required; UUID, label and device name are best
// effort.
func Probe(fs *Filesystem, sysRoot string) (*Info, error) {
	info := &Info{Filesystem: fs, Device: fs.Source}
	path := fs.MarkPath()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, &os.PathError{Op: "statfs", Path: path, Err: err}
	}
	info.FSID = fanotify.FSID{st.Fsid.Val[0], st.Fsid.Val[1]}
	if fs.Major != 0 {
		info.KernelName, info.Device = blockDevice(sysRoot, fs.Major, fs.Minor, fs.Source)
	}
	if fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); err == nil {
		if u, err := sys.FSUUID(fd); err == nil && !allZero(u) {
			info.UUID = FormatUUID(u)
		}
		if l, err := sys.FSLabel(fd); err == nil {
			info.Label = l
		}
		unix.Close(fd)
	}
	if info.UUID == "" && fs.FSType == "btrfs" {
		// btrfs answers no FS_IOC_GETFSUUID and has no block device of
		// its own (st_dev is an anonymous device): ask it.
		if u, _, err := btrfs.Stats(path, sysRoot); err == nil {
			info.UUID = u
		}
	}
	if info.UUID == "" && info.KernelName != "" {
		if u, err := SuperblockUUID(fs.FSType, info.Device); err == nil {
			info.UUID = u
		}
	}
	return info, nil
}

// blockDevice returns the kernel name and /dev path of block device
// major:minor from sysfs, falling back to the mount source.
func blockDevice(sysRoot string, major, minor uint32, source string) (name, dev string) {
	b, err := os.ReadFile(filepath.Join(sysRoot, "dev/block", fmt.Sprintf("%d:%d", major, minor), "uevent"))
	if err != nil {
		return "", source
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			return filepath.Base(v), "/dev/" + v
		}
	}
	return "", source
}

// FormatUUID formats 16 bytes as a canonical UUID string; other lengths as
// plain hex.
func FormatUUID(u []byte) string {
	if len(u) != 16 {
		return fmt.Sprintf("%x", u)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// superblock locations: offset of the magic and of the UUID on the device.
var superblocks = map[string]struct {
	magicOff int64
	magic    []byte
	uuidOff  int64
}{
	"ext2":  {1024 + 0x38, []byte{0x53, 0xef}, 1024 + 0x68},
	"ext3":  {1024 + 0x38, []byte{0x53, 0xef}, 1024 + 0x68},
	"ext4":  {1024 + 0x38, []byte{0x53, 0xef}, 1024 + 0x68},
	"xfs":   {0, []byte("XFSB"), 32},
	"btrfs": {0x10000 + 0x40, []byte("_BHRfS_M"), 0x10000 + 0x20},
}

// SuperblockUUID reads the file system UUID straight from the superblock on
// device, for kernels without FS_IOC_GETFSUUID (before 6.5).
func SuperblockUUID(fstype, device string) (string, error) {
	sb, ok := superblocks[fstype]
	if !ok {
		return "", fmt.Errorf("no known superblock layout for %s", fstype)
	}
	f, err := os.Open(device)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, len(sb.magic))
	if _, err := f.ReadAt(magic, sb.magicOff); err != nil {
		return "", fmt.Errorf("%s: reading superblock: %w", device, err)
	}
	if !bytes.Equal(magic, sb.magic) {
		return "", fmt.Errorf("%s: no %s superblock magic", device, fstype)
	}
	u := make([]byte, 16)
	if _, err := f.ReadAt(u, sb.uuidOff); err != nil {
		return "", fmt.Errorf("%s: reading UUID: %w", device, err)
	}
	if allZero(u) {
		return "", errors.New("UUID is all zeros")
	}
	return FormatUUID(u), nil
}

// KernelName returns the kernel's name of block device major:minor
// ("dm-3", "sda1") from sysfs under sysRoot, or "" if sysfs does not have
// it. A mount source ("/dev/mapper/vg-lv") need not be that name.
func KernelName(sysRoot string, major, minor uint32) string {
	name, _ := blockDevice(sysRoot, major, minor, "")
	return name
}
