// Package btrfs reads the per-device error counters of mounted btrfs file
// systems and tells which of them went up.
//
// btrfs counts, for every device of a file system, five kinds of errors:
// write, read and flush errors (EIO or EREMOTEIO from the block layer),
// corruption errors (a checksum or a tree block header that does not match:
// bit rot, a torn or misdirected write) and generation errors (a block older
// than expected: a lost write). The counters live in the file system's device
// tree, so they survive unmounts and reboots until `btrfs device stats -z`
// resets them. They are what `btrfs device stats` prints.
//
// Stats reads them from /sys/fs/btrfs/<FSID>/devinfo/<devid>/error_stats
// (Linux 5.14 and later; the devinfo directories appeared in 5.6) and falls
// back, on older kernels, to the BTRFS_IOC_GET_DEV_STATS ioctl on the mount
// point, which every kernel fshealth supports has. Neither needs privileges:
// the ioctls work for any user who can open the mount point. Tracker turns
// successive readings into the increases worth reporting.
//
// # Knowing when to read
//
// Nothing notifies a change of the counters. btrfs increments them in memory
// (btrfs_dev_stat_inc_and_print) and logs "BTRFS error (device X): bdev
// /dev/X errs: wr N, rd N, flush N, corrupt N, gen N", but it never calls
// sysfs_notify on error_stats (poll(2) sees no POLLPRI, inotify no
// IN_MODIFY), sends no uevent, and does not emit fanotify FAN_FS_ERROR
// although it accepts the mark. TestNothingNotifies looks for each of these
// on the running kernel and logs what fired: nothing, on Linux 6.18.
//
// A monitor therefore re-reads the counters at start, when a file system is
// mounted, when the kernel log shows a btrfs message, and on FAN_FS_ERROR on
// kernels that emit it for btrfs. That log line is rate limited (10 lines
// per 5 seconds, shared by all btrfs file systems): a burst of errors raises
// the counters far beyond what the last line printed (131 corruption errors
// for 10 lines in a test), and the rest is only logged, as "callbacks
// suppressed", with the next error. Read them once more about 5 seconds
// after a btrfs message to catch the rest. Stats costs a few
// system calls per device (about 3 µs for one device through ioctls, 13 µs
// through sysfs).
package btrfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// DeviceStats holds the error counters of one device of a btrfs file system.
type DeviceStats struct {
	// DevID is the device's id within the file system (1 for the first
	// device; 0 for the target of a running `btrfs replace`).
	DevID uint64 `json:"devid"`
	// Path is the device as btrfs names it, e.g. "/dev/sdb1"; it is empty
	// when it is not known (ReadSysfs does not know it).
	Path string `json:"path,omitempty"`
	// WriteErrs counts failed writes to the device.
	WriteErrs uint64 `json:"write_errs"`
	// ReadErrs counts failed reads from the device.
	ReadErrs uint64 `json:"read_errs"`
	// FlushErrs counts failed cache flushes of the device.
	FlushErrs uint64 `json:"flush_errs"`
	// CorruptionErrs counts blocks read from the device whose checksum or
	// header did not match.
	CorruptionErrs uint64 `json:"corruption_errs"`
	// GenerationErrs counts blocks read from the device that were older
	// than expected (lost writes).
	GenerationErrs uint64 `json:"generation_errs"`
}

// CounterWrite, CounterRead, CounterFlush, CounterCorruption and
// CounterGeneration are the counter names Increase.Counter reports, in the
// order of the kernel's BTRFS_DEV_STAT_* values.
const (
	CounterWrite      = "write"
	CounterRead       = "read"
	CounterFlush      = "flush"
	CounterCorruption = "corruption"
	CounterGeneration = "generation"
)

// counterNames lists the counters in the kernel's order; sysfsKeys gives the
// name of each in error_stats.
var (
	counterNames = [5]string{CounterWrite, CounterRead, CounterFlush, CounterCorruption, CounterGeneration}
	sysfsKeys    = [5]string{"write_errs", "read_errs", "flush_errs", "corruption_errs", "generation_errs"}
)

// counters returns d's counters in the kernel's order.
func (d *DeviceStats) counters() [5]uint64 {
	return [5]uint64{d.WriteErrs, d.ReadErrs, d.FlushErrs, d.CorruptionErrs, d.GenerationErrs}
}

// setCounters sets d's counters from values in the kernel's order.
func (d *DeviceStats) setCounters(v [5]uint64) {
	d.WriteErrs, d.ReadErrs, d.FlushErrs, d.CorruptionErrs, d.GenerationErrs = v[0], v[1], v[2], v[3], v[4]
}

// Total returns the sum of d's counters.
func (d DeviceStats) Total() uint64 {
	var n uint64
	for _, v := range d.counters() {
		n += v
	}
	return n
}

// ErrNotBtrfs is returned (wrapped) by Stats and ReadIoctl for a mount point
// that is not on a btrfs file system.
var ErrNotBtrfs = errors.New("not a btrfs file system")

// errStatsInvalid is returned by readErrorStats when the kernel has not yet
// loaded a device's counters from disk (error_stats reads "invalid").
var errStatsInvalid = errors.New("device statistics not valid yet")

// DevinfoDir returns the sysfs directory that holds the per-device
// directories of the mounted btrfs file system fsUUID, e.g.
// DevinfoDir("/sys", u) = "/sys/fs/btrfs/<u>/devinfo".
func DevinfoDir(sysRoot, fsUUID string) string {
	return filepath.Join(sysRoot, "fs/btrfs", fsUUID, "devinfo")
}

// Stats returns the UUID (FSID) of the btrfs file system mounted on
// mountpoint (or holding that directory) and the error counters of each of
// its devices, ordered by device id.
//
// The counters come from <sysRoot>/fs/btrfs/<FSID>/devinfo/<devid>/error_stats
// when the kernel has that file (Linux 5.14+), else from the
// BTRFS_IOC_GET_DEV_STATS ioctl on mountpoint. sysRoot is where sysfs is
// mounted, normally "/sys"; an empty sysRoot reads everything with ioctls.
// Device paths come from the BTRFS_IOC_DEV_INFO ioctl. A device whose
// counters the kernel has not loaded yet (sysfs says "invalid", the ioctl
// ENODEV) is left out. No privileges are needed beyond opening mountpoint.
func Stats(mountpoint string, sysRoot string) (fsUUID string, devs []DeviceStats, err error) {
	fd, err := openMount(mountpoint)
	if err != nil {
		return "", nil, err
	}
	defer unix.Close(fd)
	info, err := fsInfo(fd)
	if err != nil {
		return "", nil, fmt.Errorf("btrfs: %s: %w", mountpoint, err)
	}
	fsUUID = formatUUID(info.fsid)
	var ids []uint64
	dir := DevinfoDir(sysRoot, fsUUID)
	if sysRoot != "" {
		ids, err = devinfoIDs(dir)
	}
	if sysRoot == "" || errors.Is(err, fs.ErrNotExist) {
		// Before Linux 5.6 there is no devinfo directory.
		devs, err = ioctlStats(fd, info)
		if err != nil {
			return "", nil, fmt.Errorf("btrfs: %s: %w", mountpoint, err)
		}
		return fsUUID, devs, nil
	}
	if err != nil {
		return "", nil, err
	}
	for _, id := range ids {
		d := DeviceStats{DevID: id}
		v, err := readErrorStats(filepath.Join(dir, strconv.FormatUint(id, 10), "error_stats"))
		switch {
		case err == nil:
			d.setCounters(v)
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errStatsInvalid):
			// Linux 5.6 to 5.13 have devinfo without error_stats; the
			// device may also have gone since the directory was read.
			v, err = devStats(fd, id)
			if errors.Is(err, unix.ENODEV) {
				continue
			}
			if err != nil {
				return "", nil, fmt.Errorf("btrfs: %s: device %d: %w", mountpoint, id, err)
			}
			d.setCounters(v)
		default:
			return "", nil, err
		}
		di, err := devInfo(fd, id)
		if errors.Is(err, unix.ENODEV) {
			continue // removed meanwhile
		}
		if err != nil {
			return "", nil, fmt.Errorf("btrfs: %s: device %d: %w", mountpoint, id, err)
		}
		d.Path = di.path
		devs = append(devs, d)
	}
	return fsUUID, devs, nil
}

// ReadIoctl is Stats reading everything with ioctls on mountpoint
// (BTRFS_IOC_FS_INFO, BTRFS_IOC_DEV_INFO and BTRFS_IOC_GET_DEV_STATS), as
// `btrfs device stats` does; it is Stats(mountpoint, "").
func ReadIoctl(mountpoint string) (fsUUID string, devs []DeviceStats, err error) {
	return Stats(mountpoint, "")
}

// ReadSysfs reads the error counters of the devices of the mounted btrfs
// file system fsUUID from <sysRoot>/fs/btrfs/<fsUUID>/devinfo/*/error_stats,
// ordered by device id, without touching the file system itself. Paths are
// left empty: sysfs does not say which block device a device id is. A device
// whose counters are not loaded yet is left out. On kernels older than 5.14
// the error returned wraps fs.ErrNotExist.
func ReadSysfs(sysRoot, fsUUID string) ([]DeviceStats, error) {
	dir := DevinfoDir(sysRoot, fsUUID)
	ids, err := devinfoIDs(dir)
	if err != nil {
		return nil, err
	}
	devs := make([]DeviceStats, 0, len(ids))
	for _, id := range ids {
		v, err := readErrorStats(filepath.Join(dir, strconv.FormatUint(id, 10), "error_stats"))
		if errors.Is(err, errStatsInvalid) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d := DeviceStats{DevID: id}
		d.setCounters(v)
		devs = append(devs, d)
	}
	return devs, nil
}

// openMount opens mountpoint as a directory and checks that it is on btrfs.
func openMount(mountpoint string) (int, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(mountpoint, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, fmt.Errorf("btrfs: %w", &os.PathError{Op: "open", Path: mountpoint, Err: err})
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("btrfs: %w", &os.PathError{Op: "statfs", Path: mountpoint, Err: err})
	}
	if uint32(st.Type) != unix.BTRFS_SUPER_MAGIC {
		unix.Close(fd)
		return -1, fmt.Errorf("btrfs: %s: %w (file system magic %#x)", mountpoint, ErrNotBtrfs, uint32(st.Type))
	}
	return fd, nil
}

// devinfoIDs returns the device ids that have a directory in dir, sorted.
func devinfoIDs(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("btrfs: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// readErrorStats reads and parses one error_stats file.
func readErrorStats(path string) ([5]uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return [5]uint64{}, fmt.Errorf("btrfs: %w", err)
	}
	v, err := parseErrorStats(b)
	if err != nil {
		return v, fmt.Errorf("btrfs: %s: %w", path, err)
	}
	return v, nil
}

// parseErrorStats parses the contents of a devinfo/<devid>/error_stats file:
// one "name value" pair a line, or "invalid" while the kernel has not loaded
// the device's counters. Names it does not know are ignored; each of the five
// counters must be present once.
func parseErrorStats(b []byte) ([5]uint64, error) {
	var v [5]uint64
	if string(bytes.TrimSpace(b)) == "invalid" {
		return v, errStatsInvalid
	}
	var seen [5]bool
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return v, fmt.Errorf("malformed line %q", line)
		}
		i := slices.Index(sysfsKeys[:], string(fields[0]))
		if i < 0 {
			continue // a counter newer than this code
		}
		if seen[i] {
			return v, fmt.Errorf("%s given twice", fields[0])
		}
		// The kernel keeps the counters in an atomic_t and prints it
		// with %d: a counter past 2^31-1 reads negative.
		n, err := strconv.ParseInt(string(fields[1]), 10, 64)
		if err != nil {
			return v, fmt.Errorf("%s: not a number: %q", fields[0], fields[1])
		}
		v[i], seen[i] = counterValue(uint64(n)), true
	}
	for i, ok := range seen {
		if !ok {
			return v, fmt.Errorf("no %s", sysfsKeys[i])
		}
	}
	return v, nil
}

// counterValue undoes the sign extension of a kernel counter (a 32-bit
// atomic_t) that went past 2^31-1, which sysfs prints negative and the ioctl
// returns as a huge 64-bit value, so that both read as the same unsigned
// number.
func counterValue(v uint64) uint64 {
	if v>>31 == 1<<33-1 {
		return uint64(uint32(v))
	}
	return v
}

// formatUUID formats a 16-byte UUID the way sysfs names btrfs directories.
func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
