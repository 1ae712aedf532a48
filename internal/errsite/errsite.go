// Package errsite says where an error event comes from, the ways an admin
// groups a history of errors: the kernel code that reported it (ext4's
// function:line, the function an XFS, btrfs or block layer message names),
// the file (inode) it is about, and the disk and region of sectors a failed
// request touched. It derives all of it from what the event carries (its
// kernel message, ext4's recorded error state), never from the file system.
package errsite

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/kmsg"
)

// RegionSectors is the size of a sector region, in 512-byte sectors: 1 GiB.
const RegionSectors = 1 << 21

// Site is where one error event comes from; empty fields are unknown.
type Site struct {
	// Location is the kernel code that reported the error: ext4's
	// "function:line", or the function an XFS, btrfs or block layer
	// message names.
	Location string
	// Disk is the kernel's name of the device a failed request was on, as
	// a block layer message names it ("sda"), with Sector the request's
	// first 512-byte sector and HasSector set.
	Disk      string
	Sector    uint64
	HasSector bool
}

// Region names the 1 GiB region of Disk that Sector is in,
// "sda:2097152-4194303"; "" when the sector is unknown.
func (s Site) Region() string {
	if !s.HasSector || s.Disk == "" {
		return ""
	}
	lo := s.Sector / RegionSectors * RegionSectors
	return s.Disk + ":" + strconv.FormatUint(lo, 10) + "-" + strconv.FormatUint(lo+RegionSectors-1, 10)
}

// ext4Line finds ext4's "function:line:" (or "in function:line:") in a
// kernel message.
var ext4Line = regexp.MustCompile(`^EXT4-fs (?:error|warning) \(device [^)]*\):? (?:in )?(\w+):(\d+)[: ]`)

// Of returns the site of ev.
func Of(ev *event.Event) Site {
	var s Site
	if ev.KernelMessage != "" {
		if m, ok := classify(ev.KernelMessage); ok {
			s.Location = m.Function
			if m.FSType == kmsg.FSExt4 {
				if g := ext4Line.FindStringSubmatch(ev.KernelMessage); g != nil {
					s.Location = g[1] + ":" + g[2]
				}
			}
			if m.FSType == kmsg.FSBlock && strings.Contains(ev.KernelMessage, ", sector ") {
				s.Disk, s.Sector, s.HasSector = m.Device, m.Sector, true
			}
		}
	}
	if s.Location == "" && ev.Ext4 != nil && ev.Ext4.LastError != nil && ev.Ext4.LastError.Function != "" {
		le := ev.Ext4.LastError
		s.Location = le.Function + ":" + strconv.FormatUint(uint64(le.Line), 10)
	}
	return s
}

// classify classifies a kernel message text the event kept (its log level
// was not kept: the first level the kernel prints it at is taken).
func classify(text string) (kmsg.Message, bool) {
	for level := kmsg.LevelEmerg; level <= kmsg.LevelDebug; level++ {
		if m, ok := kmsg.Classify(kmsg.Record{Facility: kmsg.FacilityKern, Level: level, Message: text}); ok {
			return m, true
		}
	}
	return kmsg.Message{}, false
}
