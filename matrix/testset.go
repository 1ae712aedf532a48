package main

// This file is the one place that says what runs inside the guests: the
// focused in-guest test set, the kernel modules the guests load and the host
// programs copied into them. Later features extend these lists; see
// README.md ("Adding a test to the in-guest set").

// guestTests is the focused in-guest test set. Every test runs on every
// kernel of the matrix, as root, with CI=true (so a test that skips for lack
// of privileges or tools fails). Guest code runs 10–30× slower than on the
// host: list only tests whose outcome depends on the kernel.
var guestTests = []guestTest{
	{Pkg: "./fanotify", Name: "TestGroupReadsRealError"},
	{Pkg: "./fanotify", Name: "TestMountEvents", Needs: &feature{Name: "FAN_REPORT_MNT mount events", Since: "6.15"}},
	{Pkg: "./fanotify", Name: "TestMarkErrorsAreTyped"},
	// The library's notification, permission and mount namespace features,
	// each gated by the kernel that brought it.
	{Pkg: "./fanotify", Name: "TestDirectoryEntryEvents"},
	{Pkg: "./fanotify", Name: "TestIgnoreMarks"},
	{Pkg: "./fanotify", Name: "TestPermissionEvents"},
	{Pkg: "./fanotify", Name: "TestPIDFD"},
	{Pkg: "./fanotify", Name: "TestPIDFDFDError", Needs: &feature{Name: "FAN_REPORT_FD_ERROR", Since: "6.13"}},
	{Pkg: "./fanotify", Name: "TestFDError", Needs: &feature{Name: "FAN_REPORT_FD_ERROR", Since: "6.13"}},
	{Pkg: "./fanotify", Name: "TestFDErrorNoFD", Needs: &feature{Name: "FAN_REPORT_FD_ERROR", Since: "6.13"}},
	{Pkg: "./fanotify", Name: "TestNewFlags"},
	{Pkg: "./fanotify", Name: "TestDenyErrno", Needs: &feature{Name: "FAN_DENY_ERRNO", Since: "6.13"}},
	{Pkg: "./fanotify", Name: "TestPreAccess", Needs: &feature{Name: "FAN_PRE_ACCESS", Since: "6.14"}},
	{Pkg: "./fanotify", Name: "TestMountNamespaceEvents", Needs: &feature{Name: "FAN_REPORT_MNT mount events", Since: "6.15"}},
	{Pkg: "./internal/watch", Name: "TestSuperblockError"},
	{Pkg: "./internal/watch", Name: "TestCorruptedInode"},
	{Pkg: "./internal/watch", Name: "TestAbortedFilesystem"},
	{Pkg: "./internal/watch", Name: "TestFoldedErrors"},
	{Pkg: "./internal/watch", Name: "TestTwoFilesystemsAtOnce"},
	{Pkg: "./internal/watch", Name: "TestBindMountOneEventAllMountpoints"},
	{Pkg: "./internal/watch", Name: "TestQueueOverflowIsReported"},
	{Pkg: "./internal/watch", Name: "TestEachEventHasItsOwnKernelMessage"},
	{Pkg: "./internal/watch", Name: "TestFollowMountAfterStart"},
	{Pkg: "./internal/watch", Name: "TestFollowBindMoveUnmount"},
	{Pkg: "./internal/watch", Name: "TestFollowConfiguredPaths"},
	{Pkg: "./internal/watch", Name: "TestFollowSkipsPseudoMounts", Needs: &feature{Name: "FAN_REPORT_MNT mount events", Since: "6.15"}},
	// Mounts at container-host scale: 1,300 bind mounts followed with
	// mount events and statmount(2) (6.15+) and with the mountinfo
	// fallback (every kernel); statmount/listmount or their typed error.
	{Pkg: "./internal/watch", Name: "TestFollowManyMounts"},
	{Pkg: "./internal/sys", Name: "TestStatmount"},
	{Pkg: "./internal/sys", Name: "TestListmountMany"},
	{Pkg: "./internal/watch", Name: "TestXFSShutdown", Needs: &feature{Name: "XFS errors through FAN_FS_ERROR", Since: "7.0"}},
	{Pkg: "./internal/watch", Name: "TestXFSCorruption", Needs: &feature{Name: "XFS errors through FAN_FS_ERROR", Since: "7.0"}},
	// The kernel log source: message formats differ between kernels, and
	// from 7.0 an XFS shutdown is reported by both sources, once.
	// The classifier's anchored formats and log levels, on each kernel's
	// real messages.
	{Pkg: "./internal/kmsg", Name: "TestRealXFSShutdown"},
	{Pkg: "./internal/kmsg", Name: "TestRealXFSCorruption"},
	{Pkg: "./internal/kmsg", Name: "TestRealXFSIOErrors"},
	{Pkg: "./internal/kmsg", Name: "TestRealBtrfsChecksum"},
	{Pkg: "./internal/kmsg", Name: "TestRealBtrfsIOErrors"},
	{Pkg: "./internal/kmsg", Name: "TestRealExt4"},
	{Pkg: "./internal/kmsg", Name: "TestRealBlockAndExt4IOErrors"},
	// Kernel records whose text an unprivileged user chose (segfault
	// reports) are never taken for file system errors.
	{Pkg: "./internal/kmsg", Name: "TestForgedKernelMessagesAreIgnored"},
	{Pkg: "./internal/watch", Name: "TestForgedKernelLogErrorsAreIgnored"},
	{Pkg: "./internal/watch", Name: "TestKernelMessageAttachedToFanotifyEvent"},
	{Pkg: "./internal/watch", Name: "TestXFSShutdownReportedOnce"},
	{Pkg: "./internal/watch", Name: "TestXFSCorruptionReportedOnce"},
	{Pkg: "./internal/watch", Name: "TestBlockIOErrorOnWatchedFilesystem"},
	{Pkg: "./internal/watch", Name: "TestBtrfsCounterIncreaseReported"},
	// btrfs mounted by subvolumes only, marked through its top level.
	{Pkg: "./internal/watch", Name: "TestBtrfsSubvolumesOnly"},
	// The storage stack under a file system, and errors only the layers
	// below it report: dm over a partition of a scsi_debug disk.
	{Pkg: "./internal/watch", Name: "TestEventNamesLoopOnLoop"},
	{Pkg: "./internal/watch", Name: "TestMediumErrorUnderDMNamesTheDisk"},
	{Pkg: "./internal/watch", Name: "TestDirectoryReadErrorUnderDMNamesTheDisk"},
	{Pkg: "./internal/watch", Name: "TestMDLegFailureNamesTheLeg"},
	{Pkg: "./internal/watch", Name: "TestFailedDMKeepsItsStack"},
	// Redundancy lost and restored under a file system that sees no error.
	{Pkg: "./internal/watch", Name: "TestRedundancyMDLegLostAndRestored"},
	{Pkg: "./internal/watch", Name: "TestRedundancyLVMRaid1LegLostAndRestored"},
	{Pkg: "./internal/watch", Name: "TestRedundancyMultipathPathLostAndRestored"},
	// Real stacks (lvm2, cryptsetup, mdadm, partitions) whose devices
	// fail: every event names every layer.
	{Pkg: "./internal/watch", Name: "TestLVMOnFailingPVNamesEveryLayer"},
	{Pkg: "./internal/watch", Name: "TestLUKSOnFailingDeviceNamesEveryLayer"},
	{Pkg: "./internal/watch", Name: "TestXFSOnMDLegFailing"},
	{Pkg: "./internal/watch", Name: "TestMediumErrorInDataOnPartition"},
	{Pkg: "./internal/watch", Name: "TestMediumErrorInMetadataOnPartition"},
	// btrfs shutdowns through FAN_FS_ERROR (fserror), from Linux 7.1.
	{Pkg: "./internal/watch", Name: "TestBtrfsShutdownThroughFanotify", Needs: &feature{Name: "btrfs shutdown through FAN_FS_ERROR (fserror)", Since: "7.1"}},
	// The disk's own view of its health, from smartctl, on a SCSI disk.
	{Pkg: "./internal/smart", Name: "TestCheckSCSIDebug"},
	{Pkg: "./internal/cli", Name: "TestWatchJSONEndToEnd"},
	{Pkg: "./internal/ext4", Name: "TestReaderSeesNewErrors"},
	{Pkg: "./internal/e2e", Name: "TestErrorReachesWebhook"},
	// The first alert does not wait for ext4's record, which follows.
	{Pkg: "./internal/e2e", Name: "TestFirstAlertDoesNotWaitForExt4Record"},
	// Errors ext4 counted whose reports never came (7.0+ may drop them).
	{Pkg: "./internal/e2e", Name: "TestShortfallWithoutOverflowIsReconciled"},
	// The history grouped by code location and inode, and the damaged
	// files, from real errors on two ext4 file systems.
	{Pkg: "./internal/e2e", Name: "TestReportOnRealErrors"},
	// Real device failures (device-mapper: dm-flakey) under each
	// file system: metadata reads, data reads, writes.
	{Pkg: "./internal/watch", Name: "TestDeviceFailureExt4MetadataRead"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureXFSMetadataRead"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureBtrfsMetadataRead"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureExt4DataRead", Needs: &feature{Name: "file I/O errors through FAN_FS_ERROR (fserror)", Since: "7.0"}},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureXFSDataRead", Needs: &feature{Name: "file I/O errors through FAN_FS_ERROR (fserror)", Since: "7.0"}},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureBtrfsDataRead"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureExt4Write"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureXFSWrite"},
	{Pkg: "./internal/watch", Name: "TestDeviceFailureBtrfsWrite"},
}

// guestModules are the kernel modules every guest loads before the tests,
// with the modules they depend on (read from the modules themselves). A
// module that a kernel has built in (no .ko file in its package) is skipped.
var guestModules = []string{"loop", "xfs", "btrfs",
	// btrfs asks the crypto API for crc32c when it mounts; on 6.18 that
	// is a module of its own, which nothing depends on by name.
	"crc32c-cryptoapi",
	// Storage stacks: device mapper (dm-linear is part of dm_mod) and a
	// SCSI disk that fails reads on demand (scsi_debug, with the SCSI
	// disk driver sd_mod).
	"dm_mod", "sd_mod", "scsi_debug", "raid1",
	// Failing devices under each file system: device mapper's flakey
	// target. (Debian's cloud kernels have no dm-dust.)
	"dm_flakey",
	// LUKS (dm-crypt) with its default cipher, aes-xts-plain64: xts and
	// ecb are modules on some kernels, built in on others; cryptsetup
	// reaches the kernel's ciphers through AF_ALG (algif_skcipher).
	"dm_crypt", "xts", "ecb", "algif_skcipher",
	// LVM raid1 logical volumes: device mapper's raid target (md's
	// personalities under it).
	"dm_raid",
	// Multipath devices: the target and its round-robin path selector
	// (which the kernel would load on demand, but the guests have no
	// modprobe).
	"dm_multipath", "dm_round_robin"}

// guestTools are the host programs the tests call, copied into every guest
// with their shared libraries and the dynamic loader. Package names the
// Debian package to install when one is missing on the host.
var guestTools = []hostTool{
	{Name: "mkfs.ext4", Package: "e2fsprogs"},
	{Name: "debugfs", Package: "e2fsprogs"},
	{Name: "mkfs.xfs", Package: "xfsprogs"},
	{Name: "xfs_io", Package: "xfsprogs"},
	{Name: "xfs_db", Package: "xfsprogs"},
	{Name: "mkfs.btrfs", Package: "btrfs-progs"},
	{Name: "btrfs", Package: "btrfs-progs"},
	{Name: "btrfs-map-logical", Package: "btrfs-progs"},
	{Name: "filefrag", Package: "e2fsprogs"},
	{Name: "dmsetup", Package: "dmsetup"},
	{Name: "mdadm", Package: "mdadm"},
	{Name: "smartctl", Package: "smartmontools"},
	{Name: "lvm", Package: "lvm2"},
	{Name: "cryptsetup", Package: "cryptsetup-bin"},
}

// guestTest is one test of the in-guest set.
type guestTest struct {
	// Pkg is the Go package holding the test, as a ./relative import path.
	Pkg string
	// Name is the top-level test function.
	Name string
	// Needs, if set, names the kernel feature the test needs. The test
	// must detect it at run time and skip when it is missing; the matrix
	// accepts that skip only on kernels older than Needs.Since, and counts
	// a skip on newer kernels as a failure.
	Needs *feature
	// Known lists failures that are understood and reported: on a kernel
	// they cover, a failure that matches is shown as a known failure with
	// its reason instead of failing the run.
	Known []knownFailure
}

// feature is a kernel feature and the first upstream Linux version that has
// it.
type feature struct {
	Name  string // e.g. "FAN_REPORT_MNT mount events"
	Since string // e.g. "6.15"
}

// knownFailure is a failure of a test that is understood, on the kernels
// from From (inclusive) to Before (exclusive); an empty bound is open. Only
// a failure whose every logged message matches Match is taken as this known
// failure: any other failure of the test still fails the matrix.
type knownFailure struct {
	From, Before string
	Match        string // regular expression
	Reason       string
}

// hostTool is a program the runner needs on the host, and the Debian package
// that ships it.
type hostTool struct {
	Name    string
	Package string
}
