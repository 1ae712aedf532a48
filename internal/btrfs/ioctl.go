package btrfs

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls used here, from include/uapi/linux/btrfs.h. The request
// numbers encode the argument sizes, which the layout tests check.
const (
	iocDevInfo     = 0xd000941e // _IOWR(0x94, 30, struct btrfs_ioctl_dev_info_args)
	iocFSInfo      = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
	iocGetDevStats = 0xc4089434 // _IOWR(0x94, 52, struct btrfs_ioctl_get_dev_stats)

	devStatValuesMax = 5 // BTRFS_DEV_STAT_VALUES_MAX
)

// fsInfoArgs is struct btrfs_ioctl_fs_info_args (1024 bytes).
type fsInfoArgs struct {
	maxID          uint64
	numDevices     uint64
	fsid           [16]byte
	nodesize       uint32
	sectorsize     uint32
	cloneAlignment uint32
	csumType       uint16
	csumSize       uint16
	flags          uint64
	generation     uint64
	metadataUUID   [16]byte
	_              [944]byte
}

// devInfoArgs is struct btrfs_ioctl_dev_info_args (4096 bytes).
type devInfoArgs struct {
	devid      uint64
	uuid       [16]byte
	bytesUsed  uint64
	totalBytes uint64
	fsid       [16]byte // since Linux 6.3
	_          [377]uint64
	path       [1024]byte
}

// getDevStatsArgs is struct btrfs_ioctl_get_dev_stats (1032 bytes).
type getDevStatsArgs struct {
	devid   uint64
	nrItems uint64
	flags   uint64
	values  [devStatValuesMax]uint64
	_       [128 - 2 - devStatValuesMax]uint64
}

// ioctl issues request on fd with a pointer argument, retrying on EINTR.
func ioctl(fd int, request uintptr, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), request, uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

// fsInfoResult is what fsInfo learns about a file system.
type fsInfoResult struct {
	fsid  [16]byte
	maxID uint64
}

// fsInfo runs BTRFS_IOC_FS_INFO on fd.
func fsInfo(fd int) (fsInfoResult, error) {
	var a fsInfoArgs
	if err := ioctl(fd, iocFSInfo, unsafe.Pointer(&a)); err != nil {
		return fsInfoResult{}, fmt.Errorf("BTRFS_IOC_FS_INFO: %w", err)
	}
	return fsInfoResult{fsid: a.fsid, maxID: a.maxID}, nil
}

// devInfoResult is what devInfo learns about a device.
type devInfoResult struct {
	path string
}

// devInfo runs BTRFS_IOC_DEV_INFO on fd for devid; the error is unix.ENODEV
// when the file system has no such device.
func devInfo(fd int, devid uint64) (devInfoResult, error) {
	a := new(devInfoArgs) // 4 KiB: keep it off the stack
	a.devid = devid
	if err := ioctl(fd, iocDevInfo, unsafe.Pointer(a)); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return devInfoResult{}, err
		}
		return devInfoResult{}, fmt.Errorf("BTRFS_IOC_DEV_INFO: %w", err)
	}
	p := a.path[:]
	if i := bytes.IndexByte(p, 0); i >= 0 {
		p = p[:i]
	}
	return devInfoResult{path: string(p)}, nil
}

// devStats runs BTRFS_IOC_GET_DEV_STATS on fd for devid, without resetting
// the counters; the error is unix.ENODEV when the file system has no such
// device or its counters are not loaded yet.
func devStats(fd int, devid uint64) ([5]uint64, error) {
	var v [5]uint64
	a := getDevStatsArgs{devid: devid, nrItems: devStatValuesMax}
	if err := ioctl(fd, iocGetDevStats, unsafe.Pointer(&a)); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return v, err
		}
		return v, fmt.Errorf("BTRFS_IOC_GET_DEV_STATS: %w", err)
	}
	// The kernel sets nrItems to the number of values it filled in;
	// the others stay zero.
	for i := range min(a.nrItems, devStatValuesMax) {
		v[i] = counterValue(a.values[i])
	}
	return v, nil
}

// ioctlStats reads the counters of every device of the file system open as
// fd, enumerating the devices with BTRFS_IOC_DEV_INFO from id 0 (the target
// of a running replace) to info.maxID.
func ioctlStats(fd int, info fsInfoResult) ([]DeviceStats, error) {
	var devs []DeviceStats
	for id := uint64(0); id <= info.maxID; id++ {
		di, err := devInfo(fd, id)
		if errors.Is(err, unix.ENODEV) {
			continue // a gap left by a removed device
		}
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", id, err)
		}
		v, err := devStats(fd, id)
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", id, err)
		}
		d := DeviceStats{DevID: id, Path: di.path}
		d.setCounters(v)
		devs = append(devs, d)
	}
	return devs, nil
}
