package storage

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/mounts"
)

// maxLayers bounds a stack: a loop of loop devices (a backing file on the
// file system of the loop device itself) or a corrupt tree cannot make
// lookups run away.
const maxLayers = 64

// Looker reads storage stacks. The zero value reads /sys and /dev of this
// machine and stats backing files with stat(2).
type Looker struct {
	// SysRoot is where sysfs is mounted; "/sys" if empty.
	SysRoot string
	// DevRoot is the device directory; "/dev" if empty.
	DevRoot string
	// Mounts is the mount table, to name the file system a loop device's
	// backing file is on. If nil and MountinfoPath is set, that file
	// (/proc/self/mountinfo) is read the first time a loop device is met.
	Mounts []mounts.Mount
	// MountinfoPath is the mount table to read when Mounts is nil.
	MountinfoPath string
	// StatDev returns the device number of the file system holding path
	// (st_dev); stat(2) if nil. Tests replace it.
	StatDev func(path string) (major, minor uint32, err error)

	// links maps kernel names to their /dev links, read once per Looker.
	links map[string][]string
}

func (l *Looker) sys() string {
	if l.SysRoot == "" {
		return "/sys"
	}
	return l.SysRoot
}

func (l *Looker) dev() string {
	if l.DevRoot == "" {
		return "/dev"
	}
	return l.DevRoot
}

// Lookup returns the stack under block device major:minor, the top layer
// first and every layer after the layers built on it. mountedAs, if not
// "", is the mount source the file system was mounted as. It fails only
// when the device itself is not in sysfs; what cannot be read below it is
// left out.
func (l *Looker) Lookup(major, minor uint32, mountedAs string) ([]Layer, error) {
	dev := fmt.Sprintf("%d:%d", major, minor)
	p, err := filepath.EvalSymlinks(filepath.Join(l.sys(), "dev/block", dev))
	if err != nil {
		return nil, fmt.Errorf("storage: block device %s: %w", dev, err)
	}
	if l.links == nil {
		l.links = l.readLinks()
	}
	var stack []Layer
	l.walk(p, &stack)
	if len(stack) > 0 && mountedAs != "" && mountedAs != stack[0].Node {
		stack[0].MountedAs = mountedAs
	}
	return stack, nil
}

// LookupName returns the stack under the block device the kernel calls
// name ("sda2"), as Lookup does.
func (l *Looker) LookupName(name string) ([]Layer, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(l.sys(), "class/block", name))
	if err != nil {
		return nil, fmt.Errorf("storage: block device %s: %w", name, err)
	}
	if l.links == nil {
		l.links = l.readLinks()
	}
	var stack []Layer
	l.walk(p, &stack)
	return stack, nil
}

// walk appends the layer at sysfs directory p and, breadth first, those
// below it.
func (l *Looker) walk(p string, stack *[]Layer) {
	queue := []string{p}
	for len(queue) > 0 && len(*stack) < maxLayers {
		dir := queue[0]
		queue = queue[1:]
		name := filepath.Base(dir)
		if Find(*stack, name) != nil {
			continue
		}
		layer, below := l.layer(dir)
		*stack = append(*stack, layer)
		queue = append(queue, below...)
	}
}

// layer reads the device at sysfs directory dir and returns it with the
// sysfs directories of the devices it is built on.
func (l *Looker) layer(dir string) (Layer, []string) {
	name := filepath.Base(dir)
	ly := Layer{Name: name, Dev: readStr(dir, "dev"), Node: l.node(dir, name)}
	if n, err := readUint(dir, "size"); err == nil {
		ly.SizeBytes = n * 512
	}
	ly.Links = l.links[name]
	var below []string
	slaves := func() {
		ents, _ := os.ReadDir(filepath.Join(dir, "slaves"))
		for _, e := range ents {
			if p, err := filepath.EvalSymlinks(filepath.Join(dir, "slaves", e.Name())); err == nil {
				ly.On = append(ly.On, filepath.Base(p))
				below = append(below, p)
			}
		}
	}
	switch {
	case exists(dir, "partition"):
		ly.Kind = KindPartition
		ly.Partition, _ = strconv.Atoi(readStr(dir, "partition"))
		ly.Start, _ = readUint(dir, "start")
		ly.Sectors, _ = readUint(dir, "size")
		parent := filepath.Dir(dir)
		ly.On = []string{filepath.Base(parent)}
		below = append(below, parent)
	case exists(dir, "dm"):
		ly.DMName = readStr(dir, "dm/name")
		ly.DMUUID = readStr(dir, "dm/uuid")
		ly.Kind = dmKind(ly.DMUUID)
		if ly.Kind == KindLVM {
			if vg, lv, ok := SplitLVName(ly.DMName); ok {
				ly.LV = vg + "/" + lv
				if p := filepath.Join(l.dev(), vg, lv); existsPath(p) {
					ly.Links = appendNew(ly.Links, p)
				}
			}
		}
		if ly.DMName != "" {
			if p := filepath.Join(l.dev(), "mapper", ly.DMName); existsPath(p) {
				ly.Links = appendNew(ly.Links, p)
			}
		}
		slaves()
	case exists(dir, "md"):
		ly.Kind = KindMD
		ly.MD = readMD(dir)
		slaves()
	case exists(dir, "loop"):
		ly.Kind = KindLoop
		if f := readStr(dir, "loop/backing_file"); f != "" {
			ly.BackingFile = f
			if bdir, bfs := l.backing(f); bfs != nil {
				ly.BackingFS = bfs
				if bdir != "" {
					ly.On = []string{filepath.Base(bdir)}
					below = append(below, bdir)
				}
			}
		}
	default:
		slaves()
		if len(ly.On) > 0 {
			ly.Kind = KindVirtual
			break
		}
		if d := l.disk(dir, name); d != nil {
			ly.Kind, ly.Disk = KindDisk, d
		} else {
			ly.Kind = KindVirtual
		}
	}
	return ly, below
}

// node returns the device node of a device from its uevent DEVNAME.
func (l *Looker) node(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "uevent"))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "DEVNAME="); ok && v != "" {
			return "/dev/" + v
		}
	}
	return "/dev/" + strings.ReplaceAll(name, "!", "/")
}

// dmKind tells the kind of a device-mapper device by its uuid's prefix,
// which the tool that made it chose (LVM, cryptsetup, multipathd).
func dmKind(uuid string) string {
	switch {
	case strings.HasPrefix(uuid, "LVM-"):
		return KindLVM
	case strings.HasPrefix(uuid, "CRYPT-"):
		return KindCrypt
	case strings.HasPrefix(uuid, "mpath-"):
		return KindMultipath
	}
	return KindDM
}

// SplitLVName splits an LVM device-mapper name into the volume group and
// logical volume names: a single "-" separates them, and a "-" inside
// either is doubled ("my--vg-my--lv" is my-vg and my-lv). It reports
// false for a name that is not in that form.
func SplitLVName(dm string) (vg, lv string, ok bool) {
	for i := 0; i < len(dm); i++ {
		if dm[i] != '-' {
			continue
		}
		if i+1 < len(dm) && dm[i+1] == '-' {
			i++
			continue
		}
		vg, lv = dm[:i], dm[i+1:]
		if vg == "" || lv == "" {
			return "", "", false
		}
		return strings.ReplaceAll(vg, "--", "-"), strings.ReplaceAll(lv, "--", "-"), true
	}
	return "", "", false
}

// readMD reads an md array's state and members. The members are read
// first: md counts a failed member in degraded before it marks it faulty
// (raid1_error, raid10_error, raid5_error), so a member read as faulty is
// always counted in the degraded read after it.
func readMD(dir string) *MD {
	md := &MD{Level: readStr(dir, "md/level"), ArrayState: readStr(dir, "md/array_state")}
	defer func() {
		if n, err := readUint(dir, "md/degraded"); err == nil {
			md.Degraded = int(n)
		}
		// A member md marked faulty is missing from the array,
		// whatever md/degraded says yet: seen on 6.1, a raid1 leg
		// failed by a write error read "faulty,blocked,write_error,
		// want_replacement" with degraded still 0. (A member merely
		// not in sync, "blocked,write_error", is not counted: md is
		// still deciding, and counting it made a "degraded" change
		// before the "member-faulty" one, seen on 6.1.)
		n := 0
		for _, m := range md.Members {
			if faulty(m.State) {
				n++
			}
		}
		if n > md.Degraded {
			md.Degraded = n
		}
	}()
	ents, _ := os.ReadDir(filepath.Join(dir, "md"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "dev-") {
			continue
		}
		mdir := filepath.Join(dir, "md", e.Name())
		m := Member{Name: strings.TrimPrefix(e.Name(), "dev-"), State: readStr(mdir, "state"), Slot: readStr(mdir, "slot")}
		if p, err := filepath.EvalSymlinks(filepath.Join(mdir, "block")); err == nil {
			m.Name = filepath.Base(p)
		}
		md.Members = append(md.Members, m)
	}
	return md
}

// backing finds the file system a loop device's backing file lives on: its
// device's sysfs directory (when it is a block device) and its mount.
func (l *Looker) backing(file string) (string, *BackingFS) {
	file = strings.TrimSuffix(file, " (deleted)")
	stat := l.StatDev
	if stat == nil {
		stat = statDev
	}
	maj, min, err := stat(file)
	if err != nil {
		return "", nil
	}
	bfs := &BackingFS{Dev: fmt.Sprintf("%d:%d", maj, min)}
	if l.Mounts == nil && l.MountinfoPath != "" {
		l.Mounts, _ = mounts.ReadMountinfo(l.MountinfoPath)
	}
	var best *mounts.Mount
	for i := range l.Mounts {
		m := &l.Mounts[i]
		if m.Major == maj && m.Minor == min && under(file, m.Point) && (best == nil || len(m.Point) > len(best.Point)) {
			best = m
		}
	}
	if best != nil {
		bfs.FSType, bfs.Source, bfs.Mountpoint = best.FSType, best.Source, best.Point
	}
	p, err := filepath.EvalSymlinks(filepath.Join(l.sys(), "dev/block", bfs.Dev))
	if err != nil {
		// Not a block device (btrfs's anonymous st_dev, tmpfs): the
		// mount source may name one.
		if best == nil || !strings.HasPrefix(best.Source, "/dev/") {
			return "", bfs
		}
		name := filepath.Base(best.Source)
		if t, err := filepath.EvalSymlinks(filepath.Join(l.dev(), strings.TrimPrefix(best.Source, "/dev/"))); err == nil {
			name = filepath.Base(t)
		}
		if p, err = filepath.EvalSymlinks(filepath.Join(l.sys(), "class/block", name)); err != nil {
			return "", bfs
		}
	}
	return p, bfs
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

func statDev(path string) (uint32, uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return unix.Major(st.Dev), unix.Minor(st.Dev), nil
}

// disk reads the identity of a disk, or returns nil if dir is not one
// (ram, zram: no device link).
func (l *Looker) disk(dir, name string) *Disk {
	ddir, err := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if err != nil {
		return nil
	}
	d := &Disk{}
	switch {
	case strings.HasPrefix(name, "nvme"):
		// The namespace's device is its controller.
		d.Transport = "nvme"
		d.Model = readStr(ddir, "model")
		d.Serial = readStr(ddir, "serial")
		d.Firmware = readStr(ddir, "firmware_rev")
		d.WWN = readStr(dir, "wwid")
	case exists(ddir, "scsi_level") || exists(ddir, "vpd_pg80") || exists(ddir, "rev"):
		d.Transport = "scsi"
		d.Vendor = readStr(ddir, "vendor")
		d.Model = readStr(ddir, "model")
		d.Firmware = readStr(ddir, "rev")
		d.WWN = readStr(ddir, "wwid")
		if b, err := os.ReadFile(filepath.Join(ddir, "vpd_pg80")); err == nil {
			d.Serial = unitSerial(b)
		}
	case strings.HasPrefix(name, "vd"):
		d.Transport = "virtio"
		d.Serial = readStr(dir, "serial")
	case strings.HasPrefix(name, "mmcblk"):
		d.Transport = "mmc"
		d.Model = readStr(ddir, "name")
		d.Serial = readStr(ddir, "serial")
		d.Firmware = readStr(ddir, "fwrev")
	default:
		d.Model = readStr(ddir, "model")
		d.Serial = readStr(ddir, "serial")
	}
	if d.WWN == "" {
		d.WWN = readStr(dir, "wwid")
	}
	d.Enclosure, d.Slot = l.slot(ddir)
	return d
}

// unitSerial decodes a SCSI Unit Serial Number VPD page (0x80): a 4-byte
// header whose bytes 2-3 are the length, then the serial in ASCII, padded
// with spaces. It returns "" for anything else.
func unitSerial(b []byte) string {
	if len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	if n > len(b)-4 {
		n = len(b) - 4
	}
	s := bytes.Trim(b[4:4+n], " \x00")
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(s)
}

// slot finds the enclosure component whose device is the disk's device.
func (l *Looker) slot(ddir string) (enclosure, slot string) {
	encls, _ := os.ReadDir(filepath.Join(l.sys(), "class/enclosure"))
	for _, e := range encls {
		edir := filepath.Join(l.sys(), "class/enclosure", e.Name())
		comps, _ := os.ReadDir(edir)
		for _, c := range comps {
			p, err := filepath.EvalSymlinks(filepath.Join(edir, c.Name(), "device"))
			if err == nil && p == ddir {
				s := readStr(filepath.Join(edir, c.Name()), "slot")
				if s == "" {
					s = c.Name()
				}
				return e.Name(), s
			}
		}
	}
	return "", ""
}

// readLinks maps kernel names to the /dev/disk/by-* links to them.
func (l *Looker) readLinks() map[string][]string {
	links := map[string][]string{}
	dirs, _ := filepath.Glob(filepath.Join(l.dev(), "disk", "by-*"))
	slices.Sort(dirs)
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.Type()&os.ModeSymlink == 0 {
				continue
			}
			t, err := os.Readlink(filepath.Join(d, e.Name()))
			if err != nil {
				continue
			}
			n := filepath.Base(t)
			links[n] = append(links[n], filepath.Join(d, e.Name()))
		}
	}
	return links
}

func appendNew(ss []string, s string) []string {
	if slices.Contains(ss, s) {
		return ss
	}
	return append(ss[:len(ss):len(ss)], s)
}

func exists(dir, name string) bool { return existsPath(filepath.Join(dir, name)) }

func existsPath(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// readStr reads a one-line sysfs attribute, trimmed; "" if unreadable.
// It reads once: some attributes (md's sync_action, array_state, ...
// "preallocated" ones) are generated anew at every read(2), so a second
// read at an offset, as os.ReadFile makes, splices two states together
// (seen on 6.1: "idle\ner" from "idle" and then "recover").
func readStr(dir, name string) string {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 4096) // a sysfs attribute is at most a page
	n, err := f.Read(buf)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(buf[:n]))
}

func readUint(dir, name string) (uint64, error) {
	s := readStr(dir, name)
	if s == "" {
		return 0, errors.New("empty")
	}
	return strconv.ParseUint(s, 10, 64)
}
