package kmsg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultSysRoot is where sysfs is mounted.
const DefaultSysRoot = "/sys"

// KernelName returns the kernel's name for a block device as kernel
// messages print it: a name such as "loop0" or "dm-0" is returned as it is,
// a path under /dev ("/dev/loop0", as btrfs prints member devices) loses the
// /dev/ prefix, and a device mapper path ("/dev/mapper/NAME", "/dev/dm-0")
// is looked up in sysRoot (normally DefaultSysRoot) under
// class/block/dm-*/dm/name. A "/" inside a name ("cciss/c0d0") becomes the
// "!" sysfs uses.
func KernelName(sysRoot, name string) (string, error) {
	n := strings.TrimPrefix(name, "/dev/")
	if dm, ok := strings.CutPrefix(n, "mapper/"); ok {
		paths, err := filepath.Glob(filepath.Join(sysRoot, "class", "block", "dm-*", "dm", "name"))
		if err != nil {
			return "", err
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err == nil && strings.TrimSpace(string(b)) == dm {
				return filepath.Base(filepath.Dir(filepath.Dir(p))), nil
			}
		}
		return "", fmt.Errorf("kmsg: no device mapper device named %q in %s: %w", dm, filepath.Join(sysRoot, "class", "block"), fs.ErrNotExist)
	}
	if n == "" || n == "." || n == ".." || strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("kmsg: %q is not a block device name", name)
	}
	return strings.ReplaceAll(n, "/", "!"), nil
}

// DeviceNumber returns the major and minor numbers of the block device that
// kernel messages call name (see KernelName), read from
// <sysRoot>/class/block/<name>/dev. These are the numbers a mounted file
// system shows as st_dev and in /proc/self/mountinfo, except on btrfs, whose
// st_dev is an anonymous device: match btrfs by its member devices instead.
func DeviceNumber(sysRoot, name string) (major, minor uint32, err error) {
	kname, err := KernelName(sysRoot, name)
	if err != nil {
		return 0, 0, err
	}
	p := filepath.Join(sysRoot, "class", "block", kname, "dev")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, fmt.Errorf("kmsg: device number of %s: %w", name, err)
	}
	maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("kmsg: device number of %s: %s holds %q, want MAJOR:MINOR", name, p, b)
	}
	return uint32(ma), uint32(mi), nil
}

// PartitionOf returns the partition of disk that holds the 512-byte sector
// (counted from the start of the disk, as "I/O error, dev" messages print
// it), read from the start and size files of the partitions under
// <sysRoot>/class/block/<disk>/. It returns disk itself when the disk has
// no partitions or the sector lies outside all of them.
func PartitionOf(sysRoot, disk string, sector uint64) (string, error) {
	kname, err := KernelName(sysRoot, disk)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(sysRoot, "class", "block", kname)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("kmsg: partitions of %s: %w", disk, err)
	}
	for _, e := range ents {
		pdir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(pdir, "partition")); err != nil {
			continue
		}
		start, err1 := readUint(filepath.Join(pdir, "start"))
		size, err2 := readUint(filepath.Join(pdir, "size"))
		if err := errors.Join(err1, err2); err != nil {
			return "", fmt.Errorf("kmsg: partition %s of %s: %w", e.Name(), disk, err)
		}
		if sector >= start && sector-start < size {
			return e.Name(), nil
		}
	}
	return kname, nil
}

// readUint reads a file holding one decimal number.
func readUint(p string) (uint64, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}
