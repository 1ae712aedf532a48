package actions

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// scrub starts the file system's online check and waits for it:
//
//   - xfs: `xfs_scrub -n MOUNTPOINT`. -n only checks: it neither repairs
//     nor optimizes (no TRIM, no rewriting of secondary superblocks). An
//     automatic action should find out, not change a damaged file system
//     with a tool its own manual calls experimental; online repair also
//     needs a kernel built with XFS online repair. Errors found mean
//     xfs_repair on the unmounted file system.
//   - btrfs: `btrfs scrub start -B MOUNTPOINT`, in the foreground. btrfs
//     repairs what it can from redundant copies (DUP or RAID profiles);
//     uncorrectable errors fail the action.
//   - ext2/3/4: `e2scrub DEVICE`, which only works on an LVM logical
//     volume (it checks a snapshot with e2fsck -n).
//
// Other file systems have no online check.
func (j *job) scrub() {
	switch j.t.FSType {
	case "xfs":
		j.scrubXFS()
	case "btrfs":
		j.scrubBtrfs()
	case "ext2", "ext3", "ext4":
		j.scrubExt()
	case "":
		j.unsupported("online scrub is not available: the file system type is not known")
	default:
		j.unsupported("online scrub is not available for %s (only xfs, btrfs and ext4 on LVM have one)", quoteIfNeeded(j.t.FSType))
	}
}

// xfsScrubUnavailable is what xfs_scrub prints when the kernel lacks online
// scrub; the program runs with the C locale, so the text is stable.
const xfsScrubUnavailable = "Kernel metadata scrubbing facility is not available"

// xfsNoKernelScrub is the outcome when the kernel lacks XFS online scrub.
const xfsNoKernelScrub = "online scrub is not available for xfs on %s: this kernel was built without XFS online scrub (CONFIG_XFS_ONLINE_SCRUB); unmount it and run xfs_repair -n to check it"

// probeXFSScrub is a seam for tests: it asks the kernel whether it can
// scrub the xfs file system mounted at mp.
var probeXFSScrub = xfsScrubProbe

// scrubXFS runs xfs_scrub -n.
func (j *job) scrubXFS() {
	mp, _, err := findMount(j.t)
	if err != nil {
		j.fail("xfs_scrub needs the file system mounted: %v", err)
		return
	}
	qmp := quoteIfNeeded(mp)
	prog, err := j.r.lookPath("xfs_scrub")
	if err != nil {
		j.fail("xfs_scrub is needed (Debian package xfsprogs): %v", err)
		return
	}
	argv := []string{prog, "-n", mp}
	if err := probeXFSScrub(mp); errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) {
		j.res.Argv = argv
		j.unsupported(xfsNoKernelScrub, qmp)
		return
	}
	if j.r.DryRun {
		j.wouldRun(argv)
		return
	}
	p := j.run(argv, toolEnv)
	switch {
	case p.ok():
		j.succeed("xfs_scrub -n found no errors on %s", qmp)
	case p.startErr != nil || p.timedOut || p.canceled || p.exitCode < 0:
		j.fail("%s: %s", FormatArgv(argv), p.describe())
	case p.exitCode&1 != 0:
		j.fail("xfs_scrub found metadata errors on %s (exit status %d): unmount it and run xfs_repair: %s", qmp, p.exitCode, lastLine(p.output))
	case p.exitCode&4 != 0 && strings.Contains(p.output, xfsScrubUnavailable):
		j.unsupported(xfsNoKernelScrub, qmp)
	case p.exitCode == 2:
		j.succeed("xfs_scrub -n found no errors on %s (optimizations are possible)", qmp)
	default:
		j.fail("%s: %s", FormatArgv(argv), p.describe())
	}
}

// xfsScrubMetadata is struct xfs_scrub_metadata from <xfs/xfs_fs.h>.
type xfsScrubMetadata struct {
	Type     uint32
	Flags    uint32
	Ino      uint64
	Gen      uint32
	Agno     uint32
	Reserved [5]uint64
}

// xfsIocScrubMetadata is XFS_IOC_SCRUB_METADATA, _IOWR('X', 60, struct
// xfs_scrub_metadata).
const xfsIocScrubMetadata = 3<<30 | uintptr(unsafe.Sizeof(xfsScrubMetadata{}))<<16 | 'X'<<8 | 60

// xfsScrubProbe runs the XFS_SCRUB_TYPE_PROBE scrub, which checks nothing
// but fails with ENOTTY or EOPNOTSUPP when the kernel cannot scrub.
func xfsScrubProbe(mp string) error {
	fd, err := unix.Open(mp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var sm xfsScrubMetadata // Type 0 is XFS_SCRUB_TYPE_PROBE
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), xfsIocScrubMetadata, uintptr(unsafe.Pointer(&sm)))
	if errno != 0 {
		return errno
	}
	return nil
}

// btrfsCancelTimeout bounds `btrfs scrub cancel` after a timeout.
const btrfsCancelTimeout = 30 * time.Second

// scrubBtrfs runs btrfs scrub start -B.
func (j *job) scrubBtrfs() {
	mp, _, err := findMount(j.t)
	if err != nil {
		j.fail("btrfs scrub needs the file system mounted: %v", err)
		return
	}
	qmp := quoteIfNeeded(mp)
	prog, err := j.r.lookPath("btrfs")
	if err != nil {
		j.fail("btrfs is needed (Debian package btrfs-progs): %v", err)
		return
	}
	argv := []string{prog, "scrub", "start", "-B", mp}
	if j.r.DryRun {
		j.wouldRun(argv)
		return
	}
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		j.watchBtrfsScrub(mp, stop)
	}()
	p := j.run(argv, toolEnv)
	close(stop)
	<-watched
	summary := btrfsErrorSummary(p.output)
	switch {
	case p.ok():
		if summary == "" {
			j.succeed("btrfs scrub of %s finished", qmp)
			return
		}
		j.succeed("btrfs scrub of %s finished: %s", qmp, summary)
	case p.timedOut || p.canceled:
		// Make sure the kernel stops scrubbing too.
		ctx, cancel := context.WithTimeout(context.Background(), btrfsCancelTimeout)
		defer cancel()
		c := runProgram(ctx, []string{prog, "scrub", "cancel", mp}, toolEnv, j.r.Logger)
		var how string
		switch {
		case c.ok():
			how = "the kernel's scrub was stopped with btrfs scrub cancel"
		case c.startErr == nil && c.exitCode == 2:
			how = "the kernel's scrub has stopped" // "not running"
		default:
			how = "btrfs scrub cancel: " + c.describe()
		}
		j.fail("%s: %s (%s)", FormatArgv(argv), p.describe(), how)
	case p.startErr == nil && p.exitCode == 3:
		j.fail("btrfs scrub found uncorrectable errors on %s: %s", qmp, summary)
	default:
		j.fail("%s: %s", FormatArgv(argv), p.describe())
	}
}

// btrfsErrorSummary returns what follows "Error summary:" in btrfs scrub's
// output, with the indented lines after it (newer btrfs-progs list
// corrected and uncorrectable counts there) joined with "; ".
func btrfsErrorSummary(out string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "Error summary:")
		if !ok {
			continue
		}
		parts := []string{strings.TrimSpace(v)}
		for _, more := range lines[i+1:] {
			if strings.TrimSpace(more) == "" || more == strings.TrimLeft(more, " \t") {
				break
			}
			parts = append(parts, strings.TrimSpace(more))
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// scrubExt runs e2scrub on an ext2/3/4 file system on LVM.
func (j *job) scrubExt() {
	var dev uint64
	var ok bool
	display := describeTarget(j.t)
	if mp, _, err := findMount(j.t); err == nil {
		var st unix.Stat_t
		if err := unix.Stat(mp, &st); err != nil {
			j.fail("%v", err)
			return
		}
		dev, ok = st.Dev, true
	} else if dev, ok = blockDevNumber(j.t.Device); !ok {
		j.fail("cannot find the block device of %s: %v", display, err)
		return
	}
	name, err := blockName(dev)
	if err != nil {
		j.fail("%v", err)
		return
	}
	if j.t.Device == "" {
		display = "/dev/" + name
	}
	isLVM, dmName, err := lvmInfo(name)
	if err != nil {
		j.fail("finding out whether %s is on LVM: %v", display, err)
		return
	}
	if !isLVM {
		j.unsupported("online scrub is not available: e2scrub needs ext4 on an LVM logical volume; %s is not", display)
		return
	}
	target := j.t.Device
	if dmName != "" {
		if p := "/dev/mapper/" + dmName; exists(p) {
			target = p
		}
	}
	if target == "" {
		target = "/dev/" + name
	}
	prog, err := j.r.lookPath("e2scrub")
	if err != nil {
		j.fail("e2scrub is needed (Debian package e2fsprogs, with lvm2): %v", err)
		return
	}
	argv := []string{prog, target}
	if j.r.DryRun {
		j.wouldRun(argv)
		return
	}
	p := j.run(argv, toolEnv)
	if p.ok() {
		j.succeed("e2scrub found no errors on %s", quoteIfNeeded(target))
		return
	}
	j.fail("%s: %s", FormatArgv(argv), p.describe())
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
