package actions

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ext2/3/4 superblock layout, from the start of the superblock, which is
// 1024 bytes into the device.
const (
	extSuperOffset    = 1024
	extMagicOffset    = 0x38
	extStateOffset    = 0x3A
	extCompatOffset   = 0x5C
	extMagic          = 0xEF53
	extStateErrors    = 0x0002 // EXT2_ERROR_FS
	extCompatJournal  = 0x0004 // EXT3_FEATURE_COMPAT_HAS_JOURNAL
	extSuperReadBytes = 0x60
)

// extSuper is what fsck-next-boot reads back from an ext2/3/4 superblock.
type extSuper struct {
	errorsFlag bool // s_state has EXT2_ERROR_FS
	journal    bool // has_journal
}

// readExtSuper reads the primary superblock of the ext2/3/4 file system on
// device (a block device or an image file).
func readExtSuper(device string) (extSuper, error) {
	f, err := os.Open(device)
	if err != nil {
		return extSuper{}, err
	}
	defer f.Close()
	b := make([]byte, extSuperReadBytes)
	if _, err := f.ReadAt(b, extSuperOffset); err != nil {
		return extSuper{}, fmt.Errorf("reading the superblock of %s: %w", device, err)
	}
	if binary.LittleEndian.Uint16(b[extMagicOffset:]) != extMagic {
		return extSuper{}, fmt.Errorf("%s has no ext2/3/4 superblock", device)
	}
	return extSuper{
		errorsFlag: binary.LittleEndian.Uint16(b[extStateOffset:])&extStateErrors != 0,
		journal:    binary.LittleEndian.Uint32(b[extCompatOffset:])&extCompatJournal != 0,
	}, nil
}

// fsckNextBoot marks an ext2/3/4 file system as having errors with
// `tune2fs -E force_fsck DEVICE`, so that the boot-time fsck (e2fsck -p)
// checks it in full instead of skipping it as clean.
//
// The mark is the EXT2_ERROR_FS bit of the on-disk superblock. While the
// file system is mounted read-write, Linux (up to at least 6.18) writes its
// own idea of that state back when it unmounts the file system cleanly, and
// that erases the mark unless the kernel itself has recorded errors on it.
// So the mark is reported as lasting only when it does: the file system is
// not mounted, or mounted read-only, or the kernel has recorded errors on it
// (errors_count in sysfs), or it is the journaled root file system, which
// shutdown remounts read-only rather than unmounting. Otherwise the action
// fails and says so: run remount-ro first.
func (j *job) fsckNextBoot() {
	switch fstype := j.t.FSType; fstype {
	case "ext2", "ext3", "ext4":
	case "xfs":
		j.unsupported("fsck at next boot is not available for xfs (xfs_repair must be run by hand on the unmounted file system)")
		return
	case "btrfs":
		j.unsupported("fsck at next boot is not available for btrfs (it has no boot-time check: use scrub while it is mounted, or btrfs check by hand on the unmounted file system)")
		return
	case "":
		j.unsupported("fsck at next boot is not available: the file system type is not known")
		return
	default:
		j.unsupported("fsck at next boot is not available for %s (only ext2, ext3 and ext4 can be marked)", quoteIfNeeded(fstype))
		return
	}
	dev, err := extDevice(j.t)
	if err != nil {
		j.fail("%v", err)
		return
	}
	qdev := quoteIfNeeded(dev)
	prog, err := j.r.lookPath("tune2fs")
	if err != nil {
		j.fail("tune2fs is needed (Debian package e2fsprogs): %v", err)
		return
	}
	argv := []string{prog, "-E", "force_fsck", dev}

	// Whether the mark will last depends on how the file system is
	// mounted now; look before changing anything.
	var rw []string // read-write mount points
	var sysName string
	if rdev, ok := blockDevNumber(dev); ok {
		ms, err := mountsOfDevice(rdev)
		if err != nil {
			j.fail("%v", err)
			return
		}
		for _, m := range ms {
			if !superReadOnly(&m) {
				rw = append(rw, m.Point)
			}
		}
		sysName, _ = blockName(rdev)
	}
	lasting := func(sb extSuper) (why string, ok bool) {
		if len(rw) == 0 {
			return "", true
		}
		if sysName != "" {
			n, err := readSysInt(filepath.Join(sysRoot, "fs", "ext4", sysName, "errors_count"))
			if err == nil && n > 0 {
				return fmt.Sprintf("; the kernel has recorded %d errors on it, so the mark survives unmounting", n), true
			}
		}
		if slices.Contains(rw, "/") && sb.journal {
			return "; it is the root file system, which shutdown remounts read-only, keeping the mark", true
		}
		return "", false
	}
	notLasting := fmt.Sprintf("it is mounted read-write (on %s) and Linux clears the mark when it unmounts the file system cleanly unless the kernel itself has recorded errors on it; remount it read-only first (remount-ro, then fsck-next-boot)", quoteList(rw))

	if j.r.DryRun {
		j.res.Argv = argv
		sb, err := readExtSuper(dev)
		if err != nil {
			j.fail("%v", err)
			return
		}
		if _, ok := lasting(sb); !ok {
			j.res.Outcome = fmt.Sprintf("dry run: would run: %s, but the mark would not last: %s", FormatArgv(argv), notLasting)
			return
		}
		j.wouldRun(argv)
		return
	}

	p := j.run(argv, toolEnv)
	if !p.ok() {
		j.fail("%s: %s", FormatArgv(argv), p.describe())
		return
	}
	sb, err := readExtSuper(dev)
	if err != nil {
		j.fail("tune2fs succeeded but the mark could not be verified: %v", err)
		return
	}
	if !sb.errorsFlag {
		j.fail("tune2fs succeeded but the superblock of %s still does not have the error flag set", qdev)
		return
	}
	why, ok := lasting(sb)
	if !ok {
		j.fail("marked %s with tune2fs -E force_fsck, but the mark will not last: %s", qdev, notLasting)
		return
	}
	j.succeed("marked %s to be checked by fsck at next boot (superblock state: with errors)%s", qdev, why)
}

// extDevice returns the device (or image file) holding t's ext2/3/4 file
// system: t.Device when it exists, else the device of a mount point that is
// still the file system's.
func extDevice(t Target) (string, error) {
	if t.Device != "" {
		st, err := os.Stat(t.Device)
		if err == nil && (st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 || st.Mode().IsRegular()) {
			return t.Device, nil
		}
		if err == nil {
			return "", fmt.Errorf("%s is neither a block device nor an image file", quoteIfNeeded(t.Device))
		}
		if len(t.Mountpoints) == 0 {
			return "", fmt.Errorf("device %s: %w", quoteIfNeeded(t.Device), err)
		}
	}
	mp, _, err := findMount(Target{FSType: t.FSType, UUID: t.UUID, Mountpoints: t.Mountpoints})
	if err != nil {
		return "", fmt.Errorf("cannot find the device of %s: %w", describeTarget(t), err)
	}
	var st unix.Stat_t
	if err := unix.Stat(mp, &st); err != nil {
		return "", err
	}
	name, err := blockName(st.Dev)
	if err != nil {
		return "", err
	}
	dev := "/dev/" + name
	if _, err := os.Stat(dev); err != nil {
		return "", fmt.Errorf("the device of %s: %w", quoteIfNeeded(mp), err)
	}
	return dev, nil
}

// quoteList formats paths for a message.
func quoteList(paths []string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = quoteIfNeeded(p)
	}
	return strings.Join(q, ", ")
}
