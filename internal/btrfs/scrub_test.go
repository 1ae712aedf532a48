package btrfs

import (
	"testing"
	"unsafe"
)

// TestScrubIoctlLayout: the structures have the kernel's sizes, which the
// request numbers encode.
func TestScrubIoctlLayout(t *testing.T) {
	size := func(req uintptr) uintptr { return req >> 16 & 0x3fff }
	for _, c := range []struct {
		name      string
		req, size uintptr
	}{
		{"BTRFS_IOC_SCRUB_PROGRESS", iocScrubProgress, unsafe.Sizeof(scrubArgs{})},
		{"BTRFS_IOC_SPACE_INFO", iocSpaceInfo, unsafe.Sizeof(spaceArgs{})},
	} {
		if size(c.req) != c.size || c.req&0xff00 != 0x9400 {
			t.Errorf("%s %#x: size %d, the structure's %d", c.name, c.req, size(c.req), c.size)
		}
	}
	if s := unsafe.Sizeof(spaceInfo{}); s != 24 {
		t.Errorf("struct btrfs_ioctl_space_info is %d bytes, want 24", s)
	}
	if o := unsafe.Offsetof(scrubArgs{}.dataBytes); o != 48 {
		t.Errorf("data_bytes_scrubbed at %d, want 48", o)
	}
}

// TestPhysicalUsed: what a scrub reads is each space's used bytes times
// its copies; the global reserve is not counted.
func TestPhysicalUsed(t *testing.T) {
	spaces := []spaceInfo{
		{flags: 1, usedBytes: 96 << 20},             // data, single
		{flags: 2 | dup, usedBytes: 16 << 10},       // system, DUP
		{flags: 4 | dup, usedBytes: 256 << 10},      // metadata, DUP
		{flags: 4 | globalRsv, usedBytes: 16 << 10}, // global reserve
		{flags: 1 | raid1C3, usedBytes: 1 << 20},    // 3 copies
		{flags: 1 | raid5, usedBytes: 3 << 20},      // 4 devices: 4 MiB
	}
	want := uint64(96<<20 + 32<<10 + 512<<10 + 3<<20 + 4<<20)
	if got := physicalUsed(spaces, 4); got != want {
		t.Errorf("physicalUsed = %d, want %d", got, want)
	}
}
