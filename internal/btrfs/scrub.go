package btrfs

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls that, with BTRFS_IOC_FS_INFO, read a scrub's progress,
// from include/uapi/linux/btrfs.h; the request numbers encode the argument
// sizes, which TestScrubIoctlLayout checks.
const (
	iocSpaceInfo     = 0xc0109414 // _IOWR(0x94, 20, struct btrfs_ioctl_space_args)
	iocScrubProgress = 0xc400941d // _IOWR(0x94, 29, struct btrfs_ioctl_scrub_args)
)

// scrubArgs is struct btrfs_ioctl_scrub_args (1024 bytes) with its
// struct btrfs_scrub_progress.
type scrubArgs struct {
	devid, start, end, flags uint64
	// struct btrfs_scrub_progress
	dataExtents, treeExtents uint64
	dataBytes, treeBytes     uint64
	readErrors, csumErrors   uint64
	verifyErrors, noCsum     uint64
	csumDiscards, superErrs  uint64
	mallocErrors, uncorrect  uint64
	corrected, lastPhysical  uint64
	unverified               uint64
	_                        [109]uint64
}

// spaceArgs is struct btrfs_ioctl_space_args (16 bytes), which the
// kernel follows with space_slots struct btrfs_ioctl_space_info.
type spaceArgs struct {
	spaceSlots, totalSpaces uint64
}

// spaceInfo is struct btrfs_ioctl_space_info (24 bytes).
type spaceInfo struct {
	flags, totalBytes, usedBytes uint64
}

// Block group profile flags (BTRFS_BLOCK_GROUP_*) and the global
// reserve's (BTRFS_SPACE_INFO_GLOBAL_RSV).
const (
	raid1       = 1 << 4
	dup         = 1 << 5
	raid10      = 1 << 6
	raid5       = 1 << 7
	raid6       = 1 << 8
	raid1C3     = 1 << 9
	raid1C4     = 1 << 10
	globalRsv   = 1 << 49
	maxSpaces   = 64 // far more (type, profile) pairs than exist
	maxDeviceID = 1 << 16
)

// ScrubState is what the kernel says about a scrub of every device of
// one file system.
type ScrubState struct {
	// Scrubbed is the data and metadata bytes scrubbed so far, on every
	// device; Used is what a whole scrub reads (physicalUsed).
	Scrubbed, Used uint64
	// Running counts the devices being scrubbed.
	Running int
}

// physicalUsed returns the bytes a scrub of every device reads: each
// space's used bytes times the copies its profile keeps (DUP, RAID1 and
// RAID10 2, RAID1C3 3, RAID1C4 4); RAID5 and RAID6 add their parity,
// assuming stripes over all numDevices devices. The global reserve is not
// on disk apart from the metadata it belongs to.
func physicalUsed(spaces []spaceInfo, numDevices uint64) uint64 {
	var total uint64
	for _, sp := range spaces {
		if sp.flags&globalRsv != 0 {
			continue
		}
		u := sp.usedBytes
		switch {
		case sp.flags&raid1C4 != 0:
			u *= 4
		case sp.flags&raid1C3 != 0:
			u *= 3
		case sp.flags&(dup|raid1|raid10) != 0:
			u *= 2
		case sp.flags&raid5 != 0 && numDevices > 1:
			u = u / (numDevices - 1) * numDevices
		case sp.flags&raid6 != 0 && numDevices > 2:
			u = u / (numDevices - 2) * numDevices
		}
		total += u
	}
	return total
}

// btrfsSpaces reads the file system's spaces (BTRFS_IOC_SPACE_INFO).
func spaces(fd int) ([]spaceInfo, error) {
	var head spaceArgs // space_slots 0: how many are there?
	if err := ioctl(fd, iocSpaceInfo, unsafe.Pointer(&head)); err != nil {
		return nil, fmt.Errorf("BTRFS_IOC_SPACE_INFO: %w", err)
	}
	n := min(head.totalSpaces, maxSpaces)
	if n == 0 {
		return nil, nil
	}
	// The header and the slots, in one buffer of uint64s (all fields are).
	buf := make([]uint64, 2+3*n)
	buf[0] = n
	if err := ioctl(fd, iocSpaceInfo, unsafe.Pointer(&buf[0])); err != nil {
		return nil, fmt.Errorf("BTRFS_IOC_SPACE_INFO: %w", err)
	}
	got := min(buf[1], n)
	spaces := make([]spaceInfo, got)
	for i := range spaces {
		s := buf[2+3*i:]
		spaces[i] = spaceInfo{flags: s[0], totalBytes: s[1], usedBytes: s[2]}
	}
	return spaces, nil
}

// ReadScrub reads the scrub progress of every device of the btrfs
// file system open as fd (BTRFS_IOC_FS_INFO, BTRFS_IOC_SPACE_INFO, and
// BTRFS_IOC_SCRUB_PROGRESS per device; CAP_SYS_ADMIN). A device that is
// not being scrubbed (ENOTCONN: not started yet, or finished; ENODEV: a
// gap left by a removed device) adds nothing scrubbed.
func ReadScrub(fd int) (ScrubState, error) {
	var st ScrubState
	var fi fsInfoArgs
	if err := ioctl(fd, iocFSInfo, unsafe.Pointer(&fi)); err != nil {
		return st, fmt.Errorf("BTRFS_IOC_FS_INFO: %w", err)
	}
	spaces, err := spaces(fd)
	if err != nil {
		return st, err
	}
	st.Used = physicalUsed(spaces, fi.numDevices)
	// Device ids start at 1 (0 is the target of a running replace, which
	// a scrub does not read).
	for id := uint64(1); id <= fi.maxID && id <= maxDeviceID; id++ {
		sa := new(scrubArgs)
		sa.devid = id
		err := ioctl(fd, iocScrubProgress, unsafe.Pointer(sa))
		switch {
		case err == nil:
			st.Running++
			st.Scrubbed += sa.dataBytes + sa.treeBytes
		case errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ENODEV):
		default:
			return st, fmt.Errorf("BTRFS_IOC_SCRUB_PROGRESS of device %d: %w", id, err)
		}
	}
	return st, nil
}
