package event

import (
	"strconv"
	"strings"

	"github.com/fshealth/fshealth/internal/storage"
)

// StorageText describes a storage stack in one line, from the file
// system's device down to the disks: `LV vgA/data (dm-1) → dm-crypt luks-x
// (dm-0) → sda2 → sda "ATA FOO" serial S123`. Where a layer is built on
// several (an md array), they are listed in brackets, separated by "; ";
// several stacks (the member devices of a btrfs file system) are joined
// by " + ".
// Names that come from devices or their owners are quoted as Safe does.
func StorageText(stack []storage.Layer) string {
	if len(stack) == 0 {
		return ""
	}
	var b strings.Builder
	seen := map[string]bool{}
	// Each layer no other is built on starts a chain: the device of the
	// file system, or each member device of a btrfs file system.
	below := map[string]bool{}
	for _, l := range stack {
		for _, n := range l.On {
			below[n] = true
		}
	}
	for i := range stack {
		if below[stack[i].Name] || seen[stack[i].Name] {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" + ")
		}
		writeLayer(&b, stack, &stack[i], "", seen, 0)
	}
	if b.Len() == 0 {
		// Every layer is below another: a cycle, which no real stack
		// has. Start at the file system's device.
		writeLayer(&b, stack, &stack[0], "", seen, 0)
	}
	return b.String()
}

// maxStackDepth bounds the rendering, whatever the stack holds.
const maxStackDepth = 16

func writeLayer(b *strings.Builder, stack []storage.Layer, l *storage.Layer, state string, seen map[string]bool, depth int) {
	seen[l.Name] = true
	b.WriteString(layerText(l))
	if state != "" {
		b.WriteString(" " + Safe(state))
	}
	var below []*storage.Layer
	for _, n := range l.On {
		if c := storage.Find(stack, n); c != nil && depth < maxStackDepth {
			below = append(below, c)
		}
	}
	switch len(below) {
	case 0:
		return
	case 1:
		b.WriteString(" → ")
	default:
		b.WriteString(" → [")
	}
	for i, c := range below {
		if i > 0 {
			b.WriteString("; ")
		}
		st := ""
		if l.MD != nil {
			for _, m := range l.MD.Members {
				if m.Name == c.Name {
					st = m.State
				}
			}
		}
		if seen[c.Name] {
			// Described already (two partitions of one disk in an
			// array): named only.
			b.WriteString(Safe(c.Name))
			if st != "" {
				b.WriteString(" " + Safe(st))
			}
			continue
		}
		writeLayer(b, stack, c, st, seen, depth+1)
	}
	if len(below) > 1 {
		b.WriteString("]")
	}
}

// layerText describes one layer.
func layerText(l *storage.Layer) string {
	name := Safe(l.Name)
	switch l.Kind {
	case storage.KindLVM:
		if l.LV != "" {
			return "LV " + Safe(l.LV) + " (" + name + ")"
		}
		return "LVM " + Safe(l.DMName) + " (" + name + ")"
	case storage.KindCrypt, storage.KindMultipath, storage.KindDM:
		return l.Kind + " " + Safe(l.DMName) + " (" + name + ")"
	case storage.KindMD:
		s := name
		if l.MD != nil {
			if l.MD.Level != "" {
				s += " " + Safe(l.MD.Level)
			}
			if l.MD.Degraded > 0 {
				s += " degraded (" + strconv.Itoa(l.MD.Degraded) + " missing)"
			}
		}
		return s
	case storage.KindLoop:
		s := name
		if l.BackingFile != "" {
			s += " file " + Safe(l.BackingFile)
		}
		if f := l.BackingFS; f != nil && len(l.On) == 0 {
			if f.Source != "" {
				s += " on " + Safe(f.Source)
			} else {
				s += " on device " + Safe(f.Dev)
			}
		}
		return s
	case storage.KindDisk:
		s := name
		if d := l.Disk; d != nil {
			if m := strings.TrimSpace(d.Vendor + " " + d.Model); m != "" {
				s += " " + strconv.Quote(m)
			}
			if d.Serial != "" {
				s += " serial " + Safe(d.Serial)
			}
			if d.Slot != "" {
				s += " slot " + Safe(d.Slot)
				if d.Enclosure != "" {
					s += " of enclosure " + Safe(d.Enclosure)
				}
			}
		}
		return s
	}
	return name
}
