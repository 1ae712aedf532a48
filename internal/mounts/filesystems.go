package mounts

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Filesystem is one mounted file system (superblock) and all the places it
// is mounted, bind mounts included.
type Filesystem struct {
	// Major and Minor identify the superblock (st_dev).
	Major, Minor uint32
	// FSType is the file system type.
	FSType string
	// Source is the mount source of the first mount, e.g. "/dev/loop0".
	Source string
	// Mountpoints lists every mount point of the superblock, in mount order.
	Mountpoints []string
	// Mounts are the mountinfo entries, parallel to Mountpoints.
	Mounts []Mount
}

// Dev returns "major:minor".
func (f *Filesystem) Dev() string {
	var b [21]byte
	return string(strconv.AppendUint(append(strconv.AppendUint(b[:0], uint64(f.Major), 10), ':'), uint64(f.Minor), 10))
}

// MarkPath returns the mount point best suited to mark or open the file
// system by: the first mount of the file system's root directory, else the
// first mount. It is taken from Mounts, which are this mount namespace's
// even where Mountpoints are the host's (HostView).
func (f *Filesystem) MarkPath() string {
	for _, m := range f.Mounts {
		if m.Root == "/" {
			return m.Point
		}
	}
	if len(f.Mounts) > 0 {
		return f.Mounts[0].Point
	}
	return f.Mountpoints[0]
}

// Group groups mounts by superblock (device number), keeping mount order
// within each group and ordering groups by their first mount.
func Group(ms []Mount) []*Filesystem {
	type key struct{ maj, min uint32 }
	byDev := map[key]*Filesystem{}
	var out []*Filesystem
	for _, m := range ms {
		k := key{m.Major, m.Minor}
		fs := byDev[k]
		if fs == nil {
			fs = &Filesystem{Major: m.Major, Minor: m.Minor, FSType: m.FSType, Source: m.Source}
			byDev[k] = fs
			out = append(out, fs)
		}
		fs.Mountpoints = append(fs.Mountpoints, m.Point)
		fs.Mounts = append(fs.Mounts, m)
	}
	return out
}

// PseudoTypes reads a /proc/filesystems file and returns the file system
// types flagged "nodev": those not backed by a block device.
func PseudoTypes(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	types := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		flag, name, ok := strings.Cut(sc.Text(), "\t")
		if ok && flag == "nodev" {
			types[strings.TrimSpace(name)] = true
		}
	}
	return types, sc.Err()
}

// IsPseudo reports whether a file system type is a pseudo file system: not
// backed by a block device (per /proc/filesystems' "nodev" flag, given as
// nodev), such as proc, sysfs, cgroup2, tmpfs, overlay or fuse. Such file
// systems do not report FAN_FS_ERROR, so they are not watched by default.
// Subtypes ("fuse.sshfs") are judged by their main type.
func IsPseudo(fstype string, nodev map[string]bool) bool {
	main, _, _ := strings.Cut(fstype, ".")
	return nodev[fstype] || nodev[main]
}

// Summarize lists fs types with their counts, e.g. "cgroup2, proc×2", for
// log lines about skipped file systems.
func Summarize(fss []*Filesystem) string {
	n := map[string]int{}
	for _, f := range fss {
		n[f.FSType]++
	}
	types := make([]string, 0, len(n))
	for t := range n {
		types = append(types, t)
	}
	sort.Strings(types)
	var b strings.Builder
	for i, t := range types {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t)
		if n[t] > 1 {
			fmt.Fprintf(&b, "×%d", n[t])
		}
	}
	return b.String()
}
