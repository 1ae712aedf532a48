package actions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/mounts"
)

// Kernel interfaces read by the actions; variables so that tests can point
// them at fixtures.
var (
	mountinfoPath = "/proc/self/mountinfo"
	sysRoot       = "/sys"
	procRoot      = "/proc"
)

// findMount returns the first of t's mount points that is still a mount
// point of t's file system, with its mountinfo entry (the topmost mount on
// that path). The error says, for each mount point, why it was not used.
func findMount(t Target) (string, *mounts.Mount, error) {
	if len(t.Mountpoints) == 0 {
		return "", nil, fmt.Errorf("no mount point is known for %s", describeTarget(t))
	}
	ms, err := mounts.ReadMountinfo(mountinfoPath)
	if err != nil {
		return "", nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var why []string
	for _, mp := range t.Mountpoints {
		clean := filepath.Clean(mp)
		var m *mounts.Mount
		for i := range ms {
			if ms[i].Point == clean {
				m = &ms[i] // the last one is the topmost
			}
		}
		switch {
		case m == nil:
			why = append(why, quoteIfNeeded(mp)+" is not a mount point any more")
		case !belongs(m, t):
			why = append(why, fmt.Sprintf("%s is now the mount point of %s (%s)", quoteIfNeeded(mp), quoteIfNeeded(m.Source), m.FSType))
		default:
			return clean, m, nil
		}
	}
	return "", nil, fmt.Errorf("%s is not mounted where it was: %s", describeTarget(t), strings.Join(why, "; "))
}

// describeTarget names t's file system for messages.
func describeTarget(t Target) string {
	switch {
	case t.Device != "":
		return quoteIfNeeded(t.Device)
	case t.UUID != "":
		return "file system " + t.UUID
	}
	return "the file system"
}

// belongs reports whether the mount m is of t's file system: its source is
// t's device (the same path, or the same device number), or, for btrfs, a
// device of the btrfs file system with t's UUID. Without a device in t, the
// file system types must match.
func belongs(m *mounts.Mount, t Target) bool {
	if t.Device == "" {
		return t.FSType == "" || t.FSType == m.FSType
	}
	if resolve(m.Source) == resolve(t.Device) {
		return true
	}
	if rdev, ok := blockDevNumber(t.Device); ok {
		if rdev == unix.Mkdev(m.Major, m.Minor) {
			return true
		}
		if src, ok := blockDevNumber(m.Source); ok && src == rdev {
			return true
		}
	}
	if m.FSType == "btrfs" && t.UUID != "" && !strings.ContainsAny(t.UUID, "/") {
		name := filepath.Base(resolve(m.Source))
		if _, err := os.Stat(filepath.Join(sysRoot, "fs", "btrfs", t.UUID, "devices", name)); err == nil {
			return true
		}
	}
	return false
}

// resolve returns path with symbolic links resolved, or path itself when it
// cannot be resolved.
func resolve(path string) string {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return path
}

// blockDevNumber returns the device number of the block device node path.
func blockDevNumber(path string) (uint64, bool) {
	if path == "" {
		return 0, false
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, false
	}
	return st.Rdev, true
}

// superReadOnly reports whether m's superblock is read-only.
func superReadOnly(m *mounts.Mount) bool {
	return hasOption(m.SuperOptions, "ro")
}

// hasOption reports whether the comma-separated options contain opt.
func hasOption(options, opt string) bool {
	for o := range strings.SplitSeq(options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// mountsOfDevice returns the mount table's entries whose device number is
// dev: every mount of the file system on that block device.
func mountsOfDevice(dev uint64) ([]mounts.Mount, error) {
	ms, err := mounts.ReadMountinfo(mountinfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	var out []mounts.Mount
	for _, m := range ms {
		if unix.Mkdev(m.Major, m.Minor) == dev {
			out = append(out, m)
		}
	}
	return out, nil
}

// blockName returns the kernel name ("sda1", "dm-3", "loop0") of the block
// device with number dev, from /sys/dev/block/MAJ:MIN.
func blockName(dev uint64) (string, error) {
	link := filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)))
	target, err := os.Readlink(link)
	if err != nil {
		return "", fmt.Errorf("block device %d:%d: %w", unix.Major(dev), unix.Minor(dev), err)
	}
	return filepath.Base(target), nil
}

// lvmInfo says whether the block device name is an LVM logical volume: a
// device-mapper device whose dm uuid starts with "LVM-". It returns the
// device-mapper name ("vg-lv") too.
func lvmInfo(name string) (isLVM bool, dmName string, err error) {
	dir := filepath.Join(sysRoot, "block", name, "dm")
	uuid, err := os.ReadFile(filepath.Join(dir, "uuid"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, "", nil // not a device-mapper device
	}
	if err != nil {
		return false, "", err
	}
	if !strings.HasPrefix(strings.TrimSpace(string(uuid)), "LVM-") {
		return false, "", nil
	}
	n, err := os.ReadFile(filepath.Join(dir, "name"))
	if err != nil {
		return true, "", nil
	}
	return true, strings.TrimSpace(string(n)), nil
}

// readSysInt reads a sysfs file holding one integer.
func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}
