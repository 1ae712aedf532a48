package actions

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls that read a scrub's progress, from
// include/uapi/linux/btrfs.h; the request numbers encode the argument
// sizes, which TestBtrfsIoctlLayout checks.
const (
	btrfsIocSpaceInfo     = 0xc0109414 // _IOWR(0x94, 20, struct btrfs_ioctl_space_args)
	btrfsIocScrubProgress = 0xc400941d // _IOWR(0x94, 29, struct btrfs_ioctl_scrub_args)
	btrfsIocFSInfo        = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args)
)

// btrfsScrubArgs is struct btrfs_ioctl_scrub_args (1024 bytes) with its
// struct btrfs_scrub_progress.
type btrfsScrubArgs struct {
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

// btrfsFSInfoArgs is struct btrfs_ioctl_fs_info_args (1024 bytes), up to
// what is used here.
type btrfsFSInfoArgs struct {
	maxID, numDevices uint64
	_                 [126]uint64
}

// btrfsSpaceArgs is struct btrfs_ioctl_space_args (16 bytes), which the
// kernel follows with space_slots struct btrfs_ioctl_space_info.
type btrfsSpaceArgs struct {
	spaceSlots, totalSpaces uint64
}

// btrfsSpaceInfo is struct btrfs_ioctl_space_info (24 bytes).
type btrfsSpaceInfo struct {
	flags, totalBytes, usedBytes uint64
}

// Block group profile flags (BTRFS_BLOCK_GROUP_*) and the global
// reserve's (BTRFS_SPACE_INFO_GLOBAL_RSV).
const (
	btrfsRAID1       = 1 << 4
	btrfsDUP         = 1 << 5
	btrfsRAID10      = 1 << 6
	btrfsRAID5       = 1 << 7
	btrfsRAID6       = 1 << 8
	btrfsRAID1C3     = 1 << 9
	btrfsRAID1C4     = 1 << 10
	btrfsGlobalRsv   = 1 << 49
	btrfsMaxSpaces   = 64 // far more (type, profile) pairs than exist
	btrfsMaxDeviceID = 1 << 16
)

// btrfsIoctl issues request on fd with a pointer argument, retrying on
// EINTR.
func btrfsIoctl(fd int, request uintptr, arg unsafe.Pointer) error {
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

// btrfsScrubState is what the kernel says about a scrub of every device of
// one file system.
type btrfsScrubState struct {
	// scrubbed is the data and metadata bytes scrubbed so far, on every
	// device; used is what a whole scrub reads (physicalUsed).
	scrubbed, used uint64
	// running counts the devices being scrubbed.
	running int
}

// physicalUsed returns the bytes a scrub of every device reads: each
// space's used bytes times the copies its profile keeps (DUP, RAID1 and
// RAID10 2, RAID1C3 3, RAID1C4 4); RAID5 and RAID6 add their parity,
// assuming stripes over all numDevices devices. The global reserve is not
// on disk apart from the metadata it belongs to.
func physicalUsed(spaces []btrfsSpaceInfo, numDevices uint64) uint64 {
	var total uint64
	for _, sp := range spaces {
		if sp.flags&btrfsGlobalRsv != 0 {
			continue
		}
		u := sp.usedBytes
		switch {
		case sp.flags&btrfsRAID1C4 != 0:
			u *= 4
		case sp.flags&btrfsRAID1C3 != 0:
			u *= 3
		case sp.flags&(btrfsDUP|btrfsRAID1|btrfsRAID10) != 0:
			u *= 2
		case sp.flags&btrfsRAID5 != 0 && numDevices > 1:
			u = u / (numDevices - 1) * numDevices
		case sp.flags&btrfsRAID6 != 0 && numDevices > 2:
			u = u / (numDevices - 2) * numDevices
		}
		total += u
	}
	return total
}

// btrfsSpaces reads the file system's spaces (BTRFS_IOC_SPACE_INFO).
func btrfsSpaces(fd int) ([]btrfsSpaceInfo, error) {
	var head btrfsSpaceArgs // space_slots 0: how many are there?
	if err := btrfsIoctl(fd, btrfsIocSpaceInfo, unsafe.Pointer(&head)); err != nil {
		return nil, fmt.Errorf("BTRFS_IOC_SPACE_INFO: %w", err)
	}
	n := min(head.totalSpaces, btrfsMaxSpaces)
	if n == 0 {
		return nil, nil
	}
	// The header and the slots, in one buffer of uint64s (all fields are).
	buf := make([]uint64, 2+3*n)
	buf[0] = n
	if err := btrfsIoctl(fd, btrfsIocSpaceInfo, unsafe.Pointer(&buf[0])); err != nil {
		return nil, fmt.Errorf("BTRFS_IOC_SPACE_INFO: %w", err)
	}
	got := min(buf[1], n)
	spaces := make([]btrfsSpaceInfo, got)
	for i := range spaces {
		s := buf[2+3*i:]
		spaces[i] = btrfsSpaceInfo{flags: s[0], totalBytes: s[1], usedBytes: s[2]}
	}
	return spaces, nil
}

// readBtrfsScrub reads the scrub progress of every device of the btrfs
// file system open as fd (BTRFS_IOC_FS_INFO, BTRFS_IOC_SPACE_INFO, and
// BTRFS_IOC_SCRUB_PROGRESS per device; CAP_SYS_ADMIN). A device that is
// not being scrubbed (ENOTCONN: not started yet, or finished; ENODEV: a
// gap left by a removed device) adds nothing scrubbed.
func readBtrfsScrub(fd int) (btrfsScrubState, error) {
	var st btrfsScrubState
	var fi btrfsFSInfoArgs
	if err := btrfsIoctl(fd, btrfsIocFSInfo, unsafe.Pointer(&fi)); err != nil {
		return st, fmt.Errorf("BTRFS_IOC_FS_INFO: %w", err)
	}
	spaces, err := btrfsSpaces(fd)
	if err != nil {
		return st, err
	}
	st.used = physicalUsed(spaces, fi.numDevices)
	// Device ids start at 1 (0 is the target of a running replace, which
	// a scrub does not read).
	for id := uint64(1); id <= fi.maxID && id <= btrfsMaxDeviceID; id++ {
		sa := new(btrfsScrubArgs)
		sa.devid = id
		err := btrfsIoctl(fd, btrfsIocScrubProgress, unsafe.Pointer(sa))
		switch {
		case err == nil:
			st.running++
			st.scrubbed += sa.dataBytes + sa.treeBytes
		case errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ENODEV):
		default:
			return st, fmt.Errorf("BTRFS_IOC_SCRUB_PROGRESS of device %d: %w", id, err)
		}
	}
	return st, nil
}

// btrfsProgressEvery is how often a running btrfs scrub's progress is
// read; a variable so that tests can shorten it.
var btrfsProgressEvery = time.Second

// watchBtrfsScrub reports the progress of the btrfs scrub of the file
// system mounted at mp until stop is closed; it returns when it has
// stopped. It reads nothing once the scrub is over on every device after
// having run on one. An error is logged once and ends the watching: the
// scrub itself goes on.
func (j *job) watchBtrfsScrub(mp string, stop <-chan struct{}) {
	fd, err := unix.Open(mp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		j.progressFailed(fmt.Errorf("opening %s: %w", quoteIfNeeded(mp), err))
		return
	}
	defer unix.Close(fd)
	t := time.NewTicker(btrfsProgressEvery)
	defer t.Stop()
	seen := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		st, err := readBtrfsScrub(fd)
		if err != nil {
			j.progressFailed(err)
			return
		}
		if st.running == 0 {
			if seen {
				return // finished; the program says how it went
			}
			continue // not started yet
		}
		seen = true
		if p, ok := newProgress("", st.scrubbed, st.used, UnitBytes, time.Now()); ok {
			j.progress.report(p)
		}
	}
}
