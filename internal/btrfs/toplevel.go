package btrfs

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// topLevelID is the object id of a btrfs file system's top-level subvolume
// (BTRFS_FS_TREE_OBJECTID).
const topLevelID = "5"

// OpenTopLevel returns a descriptor of the top-level subvolume of the
// mounted btrfs file system on device (any of its devices) whose UUID
// (FSID) is fsUUID, through a
// private, detached mount of that file system (fsopen(2), fsmount(2)) that
// is in no mount namespace and goes away when the descriptor is closed.
//
// It exists for fanotify: the kernel refuses a FAN_MARK_FILESYSTEM mark
// (EXDEV) on a path whose fsid is not the superblock's, which is the case
// of every path of a subvolume other than the top level; installations that
// mount only subvolumes (subvol=@, subvol=@home) have no path it accepts.
// The top-level subvolume reached this way has the superblock's fsid.
//
// The file system must already be mounted: btrfs then gives the new mount
// the existing superblock, and options do not change it. The mount is asked
// for read-only, because asking a read-only file system for a read-write
// mount would make btrfs remount it read-write; asked read-only, btrfs
// hands out the existing superblock whatever its state. Needs CAP_SYS_ADMIN
// and Linux 5.2 or later. The UUID check catches a file system unmounted
// and replaced in the meantime.
func OpenTopLevel(device, fsUUID string) (int, error) {
	fsfd, err := unix.Fsopen("btrfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("btrfs: fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "source", device); err != nil {
		return -1, fmt.Errorf("btrfs: mount source %q: %w", device, err)
	}
	if err := unix.FsconfigSetString(fsfd, "subvolid", topLevelID); err != nil {
		return -1, fmt.Errorf("btrfs: subvolid=%s: %w", topLevelID, err)
	}
	if err := unix.FsconfigSetFlag(fsfd, "ro"); err != nil {
		return -1, fmt.Errorf("btrfs: ro: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("btrfs: opening the file system on %q: %w", device, err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return -1, fmt.Errorf("btrfs: fsmount of %q: %w", device, err)
	}
	// The mount's descriptor is an O_PATH one, which takes no ioctls: open
	// its root for real. The mount goes when both are closed.
	fd, err := unix.Openat(mfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(mfd)
	if err != nil {
		return -1, fmt.Errorf("btrfs: opening the top level of %q: %w", device, err)
	}
	info, err := fsInfo(fd)
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("btrfs: the top level of %q: %w", device, err)
	}
	if u := formatUUID(info.fsid); u != fsUUID {
		unix.Close(fd)
		return -1, fmt.Errorf("btrfs: %q holds the file system %s, not %s", device, u, fsUUID)
	}
	return fd, nil
}
