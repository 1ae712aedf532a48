package errsite

import (
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

// TestOf derives the site from kernel messages as the kernel printed them
// (captured in ../kmsg/testdata/messages.txt) and from ext4's record.
func TestOf(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   event.Event
		want Site
	}{
		{"ext4 lookup", event.Event{KernelMessage: "EXT4-fs error (device loop1): ext4_lookup:1787: inode #13: comm ls: iget: bogus i_mode (377)"},
			Site{Location: "ext4_lookup:1787"}},
		{"ext4 in form", event.Event{KernelMessage: "EXT4-fs error (device sda1) in ext4_reserve_inode_write:5740: IO failure"},
			Site{Location: "ext4_reserve_inode_write:5740"}},
		{"trigger", event.Event{KernelMessage: "EXT4-fs error (device loop1): trigger_test_error:129: comm bash: kmsg-exp-trigger"},
			Site{Location: "trigger_test_error:129"}},
		{"xfs", event.Event{KernelMessage: "XFS (loop1): Metadata corruption detected at xfs_dinode_verify.part.0+0x40b/0x810, inode 0x84 dinode"},
			Site{Location: "xfs_dinode_verify.part.0"}},
		{"block", event.Event{KernelMessage: "I/O error, dev loop2, sector 4194410 op 0x1:(WRITE) flags 0x1000 phys_seg 13 prio class 2"},
			Site{Disk: "loop2", Sector: 4194410, HasSector: true}},
		{"block sector 0", event.Event{KernelMessage: "I/O error, dev loop2, sector 0 op 0x1:(WRITE) flags 0x1000 phys_seg 3 prio class 2"},
			Site{Disk: "loop2", HasSector: true}},
		{"ext4 record", event.Event{Ext4: &ext4.State{ErrorsCount: 3, LastError: &ext4.ErrorInfo{Function: "ext4_find_entry", Line: 1466}}},
			Site{Location: "ext4_find_entry:1466"}},
		{"message wins over record", event.Event{KernelMessage: "EXT4-fs error (device loop1): ext4_lookup:1787: inode #13: comm ls: iget: bogus i_mode (377)",
			Ext4: &ext4.State{ErrorsCount: 3, LastError: &ext4.ErrorInfo{Function: "ext4_find_entry", Line: 1466}}},
			Site{Location: "ext4_lookup:1787"}},
		{"forged text", event.Event{KernelMessage: "hello EXT4-fs error (device loop1): evil:1: comm x"}, Site{}},
		{"nothing", event.Event{}, Site{}},
	} {
		if got := Of(&c.ev); got != c.want {
			t.Errorf("%s: Of = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestRegion(t *testing.T) {
	for _, c := range []struct {
		s    Site
		want string
	}{
		{Site{Disk: "sda", Sector: 0, HasSector: true}, "sda:0-2097151"},
		{Site{Disk: "sda", Sector: 4194410, HasSector: true}, "sda:4194304-6291455"},
		{Site{Disk: "sda"}, ""},
		{Site{}, ""},
	} {
		if got := c.s.Region(); got != c.want {
			t.Errorf("%+v.Region() = %q, want %q", c.s, got, c.want)
		}
	}
}

// FuzzOf: hostile kernel message text never panics Of.
func FuzzOf(f *testing.F) {
	f.Add("EXT4-fs error (device loop1): ext4_lookup:1787: inode #13: comm ls: iget: bogus i_mode (377)")
	f.Add("I/O error, dev loop2, sector 104 op 0x1:(WRITE) flags 0x1000 phys_seg 13 prio class 2")
	f.Fuzz(func(t *testing.T, s string) {
		site := Of(&event.Event{KernelMessage: s})
		_ = site.Region()
	})
}
