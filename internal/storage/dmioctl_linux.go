package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device-mapper's ioctl interface (include/uapi/linux/dm-ioctl.h): every
// command takes a struct dm_ioctl header, followed by its data, in one
// buffer the kernel writes its answer into.
const (
	dmIoctlSize      = 312 // sizeof(struct dm_ioctl)
	dmTargetSpecSize = 40  // sizeof(struct dm_target_spec)

	dmTableStatusCmd = 12
	dmDevArmPollCmd  = 16

	dmStatusTableFlag = 1 << 4
	dmBufferFullFlag  = 1 << 8
	dmNoflushFlag     = 1 << 11

	// dmMaxBuffer bounds the answer buffer a status is read into.
	dmMaxBuffer = 1 << 20
)

// dmIoctlNr is _IOWR(DM_IOCTL, cmd, struct dm_ioctl).
func dmIoctlNr(cmd uintptr) uintptr {
	return 3<<30 | dmIoctlSize<<16 | 0xfd<<8 | cmd
}

// DMControl is an open /dev/mapper/control, device-mapper's control
// device, through which device-mapper devices' tables and statuses are
// read and its events waited for.
type DMControl struct {
	f *os.File
}

// OpenDMControl opens device-mapper's control device under devRoot ("/dev"
// if empty); an error when the kernel has no device-mapper.
func OpenDMControl(devRoot string) (*DMControl, error) {
	if devRoot == "" {
		devRoot = "/dev"
	}
	f, err := os.OpenFile(devRoot+"/mapper/control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &DMControl{f: f}, nil
}

// Close closes the control device.
func (c *DMControl) Close() error { return c.f.Close() }

// Fd returns the control device's descriptor (to poll it for events).
func (c *DMControl) Fd() uintptr { return c.f.Fd() }

// header writes a dm_ioctl header into buf: interface version 4.0.0 (the
// kernel accepts any older minor), the buffer's size, the flags and the
// device (dev_t in the kernel's "huge" encoding), no name or uuid.
func header(buf []byte, flags uint32, major, minor uint32) {
	le := binary.NativeEndian
	le.PutUint32(buf[0:], 4)
	le.PutUint32(buf[12:], uint32(len(buf)))
	le.PutUint32(buf[28:], flags)
	dev := uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12
	le.PutUint64(buf[40:], dev)
}

func (c *DMControl) ioctl(cmd uintptr, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, c.f.Fd(), dmIoctlNr(cmd), uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// ArmPoll re-arms the control device's event notification: from now on,
// poll(2) on Fd reports POLLIN once any device-mapper device raised an
// event (a dm-raid leg failed or was recovered, a multipath path went
// down, ...). Linux 4.13+.
func (c *DMControl) ArmPoll() error {
	buf := make([]byte, dmIoctlSize)
	header(buf, 0, 0, 0)
	if err := c.ioctl(dmDevArmPollCmd, buf); err != nil {
		return fmt.Errorf("DM_DEV_ARM_POLL: %w", err)
	}
	return nil
}

// Targets returns the targets of the live table of the device-mapper
// device major:minor, with their status lines (table false: `dmsetup
// status`) or their table lines (table true: `dmsetup table`). The status
// is read without flushing (as `dmsetup status --noflush`).
func (c *DMControl) Targets(major, minor uint32, table bool) ([]DMTarget, error) {
	flags := uint32(dmNoflushFlag)
	if table {
		flags |= dmStatusTableFlag
	}
	for size := 16 << 10; size <= dmMaxBuffer; size *= 4 {
		buf := make([]byte, size)
		header(buf, flags, major, minor)
		if err := c.ioctl(dmTableStatusCmd, buf); err != nil {
			if errors.Is(err, unix.ENXIO) {
				return nil, fmt.Errorf("device-mapper device %d:%d: no such device: %w", major, minor, os.ErrNotExist)
			}
			return nil, fmt.Errorf("DM_TABLE_STATUS of %d:%d: %w", major, minor, err)
		}
		if binary.NativeEndian.Uint32(buf[28:])&dmBufferFullFlag != 0 {
			continue
		}
		return ParseTargetSpecs(buf)
	}
	return nil, fmt.Errorf("DM_TABLE_STATUS of %d:%d: the status is larger than %d bytes", major, minor, dmMaxBuffer)
}

// ParseTargetSpecs parses the answer of DM_TABLE_STATUS: the dm_ioctl
// header (data_start, data_size, target_count), then target_count
// dm_target_spec records, each followed by its NUL-terminated line; a
// record's next is where the following one starts, counted from
// data_start. It checks every offset against the buffer: the answer is the
// kernel's, but the parser never trusts a length it has not checked.
func ParseTargetSpecs(buf []byte) ([]DMTarget, error) {
	le := binary.NativeEndian
	if len(buf) < dmIoctlSize {
		return nil, fmt.Errorf("device-mapper answer of %d bytes, shorter than its header", len(buf))
	}
	dataSize, dataStart, count := le.Uint32(buf[12:]), le.Uint32(buf[16:]), le.Uint32(buf[20:])
	if uint64(dataSize) > uint64(len(buf)) || dataStart > dataSize {
		return nil, fmt.Errorf("device-mapper answer: data from %d to %d outside its %d bytes", dataStart, dataSize, len(buf))
	}
	data := buf[dataStart:dataSize]
	if uint64(count) > uint64(len(data))/dmTargetSpecSize {
		return nil, fmt.Errorf("device-mapper answer: %d targets cannot fit in %d bytes", count, len(data))
	}
	var out []DMTarget
	off := uint64(0)
	for i := uint32(0); i < count; i++ {
		if off+dmTargetSpecSize > uint64(len(data)) {
			return nil, fmt.Errorf("device-mapper answer: target %d of %d at byte %d, beyond its %d bytes", i, count, off, len(data))
		}
		spec := data[off:]
		t := DMTarget{Start: le.Uint64(spec[0:]), Length: le.Uint64(spec[8:])}
		next := uint64(le.Uint32(spec[20:]))
		t.Type = string(bytes.TrimRight(spec[24:40], "\x00"))
		line := spec[dmTargetSpecSize:]
		if n := bytes.IndexByte(line, 0); n >= 0 {
			line = line[:n]
		}
		t.Params = string(line)
		out = append(out, t)
		if i+1 < count && (next < off+dmTargetSpecSize || next > uint64(len(data))) {
			return nil, fmt.Errorf("device-mapper answer: target %d of %d: next at %d, outside the answer or backwards", i, count, next)
		}
		off = next
	}
	return out, nil
}

// Array reads the redundancy state of the device-mapper device of layer l
// (an LVM, multipath or other dm layer of a stack) if its table is one
// dm-raid or multipath target; nil, nil if it is anything else. sysRoot
// ("/sys" if empty) names the legs' and paths' device numbers with their
// kernel names.
func (c *DMControl) Array(sysRoot string, l *Layer) (*ArrayState, error) {
	var major, minor uint32
	if _, err := fmt.Sscanf(l.Dev, "%d:%d", &major, &minor); err != nil {
		return nil, fmt.Errorf("%s: device number %q: %w", l.Name, l.Dev, err)
	}
	status, err := c.Targets(major, minor, false)
	if err != nil {
		return nil, err
	}
	if len(status) != 1 || status[0].Type != "raid" && status[0].Type != "multipath" {
		return nil, nil
	}
	if sysRoot == "" {
		sysRoot = "/sys"
	}
	resolve := func(dev string) string {
		if p, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev/block", dev)); err == nil {
			return filepath.Base(p)
		}
		return dev
	}
	alias := l.LV
	if alias == "" {
		alias = l.DMName
	}
	if status[0].Type == "multipath" {
		return MultipathArray(l.Name, alias, status[0], resolve)
	}
	table, err := c.Targets(major, minor, true)
	if err != nil {
		return nil, err
	}
	if len(table) != 1 {
		return nil, fmt.Errorf("%s: %d targets in the table, %d in the status", l.Name, len(table), len(status))
	}
	return RaidArray(l.Name, alias, table[0], status[0], resolve)
}
