package btrfs

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// ioc computes a Linux ioctl request number as the _IOC macro does.
func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | typ<<8 | nr
}

func TestIoctlLayout(t *testing.T) {
	const read, write = 2, 1
	for _, c := range []struct {
		name      string
		got, want uintptr
		size      uintptr
		wantSize  uintptr
	}{
		{"BTRFS_IOC_FS_INFO", iocFSInfo, ioc(read, 0x94, 31, unsafe.Sizeof(fsInfoArgs{})), unsafe.Sizeof(fsInfoArgs{}), 1024},
		{"BTRFS_IOC_DEV_INFO", iocDevInfo, ioc(read|write, 0x94, 30, unsafe.Sizeof(devInfoArgs{})), unsafe.Sizeof(devInfoArgs{}), 4096},
		{"BTRFS_IOC_GET_DEV_STATS", iocGetDevStats, ioc(read|write, 0x94, 52, unsafe.Sizeof(getDevStatsArgs{})), unsafe.Sizeof(getDevStatsArgs{}), 1032},
	} {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
		if c.size != c.wantSize {
			t.Errorf("%s argument is %d bytes, want %d", c.name, c.size, c.wantSize)
		}
	}
	// Offsets the kernel's struct layout fixes.
	if o := unsafe.Offsetof(fsInfoArgs{}.fsid); o != 16 {
		t.Errorf("fs_info_args.fsid at %d, want 16", o)
	}
	if o := unsafe.Offsetof(fsInfoArgs{}.flags); o != 48 {
		t.Errorf("fs_info_args.flags at %d, want 48", o)
	}
	if o := unsafe.Offsetof(devInfoArgs{}.path); o != 3072 {
		t.Errorf("dev_info_args.path at %d, want 3072", o)
	}
	if o := unsafe.Offsetof(getDevStatsArgs{}.values); o != 24 {
		t.Errorf("get_dev_stats.values at %d, want 24", o)
	}
}

func TestParseErrorStats(t *testing.T) {
	const kernel = "write_errs 1\nread_errs 2\nflush_errs 3\ncorruption_errs 4\ngeneration_errs 5\n"
	v, err := parseErrorStats([]byte(kernel))
	if err != nil || v != [5]uint64{1, 2, 3, 4, 5} {
		t.Errorf("kernel format: %v, %v", v, err)
	}
	// Order does not matter, unknown counters are ignored.
	v, err = parseErrorStats([]byte("generation_errs 5\nfuture_errs 9\ncorruption_errs 4\nflush_errs 3\nread_errs 2\nwrite_errs 1"))
	if err != nil || v != [5]uint64{1, 2, 3, 4, 5} {
		t.Errorf("reordered: %v, %v", v, err)
	}
	// A counter past 2^31-1 is printed with %d from an atomic_t.
	v, err = parseErrorStats([]byte(strings.Replace(kernel, "read_errs 2", "read_errs -2147483648", 1)))
	if err != nil || v[1] != 1<<31 {
		t.Errorf("negative: %v, %v", v, err)
	}
	if _, err := parseErrorStats([]byte("invalid\n")); !errors.Is(err, errStatsInvalid) {
		t.Errorf("invalid: %v", err)
	}
	for _, bad := range []string{
		"",
		"write_errs 1\nread_errs 2\nflush_errs 3\ncorruption_errs 4\n",
		strings.Replace(kernel, "flush_errs 3", "flush_errs three", 1),
		strings.Replace(kernel, "flush_errs 3", "flush_errs 3 4", 1),
		kernel + "write_errs 7\n",
	} {
		if _, err := parseErrorStats([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestCounterValue(t *testing.T) {
	for in, want := range map[uint64]uint64{
		0:                     0,
		7:                     7,
		1<<31 - 1:             1<<31 - 1,
		1 << 31:               1 << 31,
		0xffffffff80000000:    1 << 31, // (u64)(int)INT_MIN
		0xffffffffffffffff:    0xffffffff,
		1 << 40:               1 << 40,
		0x7fffffff_ffffffff:   0x7fffffff_ffffffff,
		0xfffffffe_00000000:   0xfffffffe_00000000,
		uint64(1<<63 | 1<<31): 1<<63 | 1<<31,
	} {
		if got := counterValue(in); got != want {
			t.Errorf("counterValue(%#x) = %#x, want %#x", in, got, want)
		}
	}
}

func TestFormatUUID(t *testing.T) {
	u := [16]byte{0xdd, 0xd6, 0x3b, 0x7f, 0x2d, 0xff, 0x49, 0x46, 0xa5, 0x67, 0x5d, 0xf3, 0xaa, 0x6f, 0x81, 0xf2}
	if got, want := formatUUID(u), "ddd63b7f-2dff-4946-a567-5df3aa6f81f2"; got != want {
		t.Errorf("formatUUID = %s, want %s", got, want)
	}
}
