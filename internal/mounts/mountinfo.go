// Package mounts reads the mount table and groups it by file system
// (superblock): which file systems exist, where each is mounted, and which
// are pseudo file systems not worth watching. Kernel paths are parameters,
// so tests run against fixture files.
package mounts

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo.
type Mount struct {
	// ID is the mount's id, unique within the namespace while it exists.
	ID int
	// ParentID is the id of the parent mount.
	ParentID int
	// Major and Minor are the st_dev of files on this mount: the superblock's
	// device number.
	Major, Minor uint32
	// Root is the directory of the file system mounted here ("/" unless this
	// is a bind mount of a subdirectory).
	Root string
	// Point is the mount point, unescaped.
	Point string
	// Options are the per-mount options (rw, nosuid, ...).
	Options string
	// FSType is the file system type, e.g. "ext4" or "fuse.sshfs".
	FSType string
	// Source is the mount source, e.g. "/dev/sda1", unescaped.
	Source string
	// SuperOptions are the per-superblock options.
	SuperOptions string
}

// Dev returns "major:minor".
func (m *Mount) Dev() string { return fmt.Sprintf("%d:%d", m.Major, m.Minor) }

// ReadMountinfo reads and parses a mountinfo file such as
// /proc/self/mountinfo.
func ReadMountinfo(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := ParseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ms, nil
}

// ParseMountinfo parses mountinfo text. Errors name the offending line.
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var ms []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := parseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

// parseLine parses one mountinfo line:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Fields are separated by single spaces; spaces, tabs, newlines and
// backslashes inside fields are octal-escaped by the kernel.
func parseLine(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 10 || sep < 0 || len(f) < sep+4 {
		return m, fmt.Errorf("malformed mountinfo line (want at least 10 fields with a \"-\" separator): %q", line)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("bad mount id %q", f[0])
	}
	if m.ParentID, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("bad parent id %q", f[1])
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("bad device number %q", f[2])
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return m, fmt.Errorf("bad device number %q", f[2])
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	m.Root = Unescape(f[3])
	m.Point = Unescape(f[4])
	m.Options = f[5]
	m.FSType = Unescape(f[sep+1])
	m.Source = Unescape(f[sep+2])
	m.SuperOptions = f[sep+3]
	return m, nil
}

// Unescape decodes the kernel's octal escapes (\040 for space, \011 tab,
// \012 newline, \134 backslash) in a mountinfo field. Malformed escapes are
// kept as they are.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
