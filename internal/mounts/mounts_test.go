package mounts

import (
	"reflect"
	"strings"
	"testing"
)

func TestReadMountinfoFixture(t *testing.T) {
	ms, err := ReadMountinfo("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 8 {
		t.Fatalf("got %d mounts, want 8", len(ms))
	}
	want := Mount{ID: 31, ParentID: 27, Major: 7, Minor: 0, Root: "/sub", Point: "/mnt/bind\nnewline",
		Options: "rw,relatime", FSType: "ext4", Source: "/dev/loop0", SuperOptions: "rw,errors=continue"}
	if !reflect.DeepEqual(ms[4], want) {
		t.Errorf("mount with optional fields:\n got %+v\nwant %+v", ms[4], want)
	}
	if ms[3].Point != "/srv/data with space" || ms[7].Point != `/mnt/back\slash` {
		t.Errorf("unescaping: got %q and %q", ms[3].Point, ms[7].Point)
	}
}

func TestGroupBySuperblock(t *testing.T) {
	ms, err := ReadMountinfo("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	fss := Group(ms)
	if len(fss) != 7 {
		t.Fatalf("got %d file systems, want 7", len(fss))
	}
	loop0 := fss[3]
	if loop0.Dev() != "7:0" || !reflect.DeepEqual(loop0.Mountpoints, []string{"/srv/data with space", "/mnt/bind\nnewline"}) {
		t.Errorf("bind mounts not grouped: %s %q", loop0.Dev(), loop0.Mountpoints)
	}
	if loop0.MarkPath() != "/srv/data with space" {
		t.Errorf("MarkPath = %q, want the mount of the root directory", loop0.MarkPath())
	}
	// A file system mounted only by a subdirectory still has a mark path.
	only := Group(ms[4:5])[0]
	if only.MarkPath() != "/mnt/bind\nnewline" {
		t.Errorf("MarkPath of a bind-only file system = %q", only.MarkPath())
	}
}

func TestPseudo(t *testing.T) {
	nodev, err := PseudoTypes("testdata/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	for typ, want := range map[string]bool{"proc": true, "tmpfs": true, "fuse.sshfs": true, "ext4": false, "xfs": false, "btrfs": false} {
		if got := IsPseudo(typ, nodev); got != want {
			t.Errorf("IsPseudo(%q) = %v, want %v", typ, got, want)
		}
	}
	ms, _ := ReadMountinfo("testdata/mountinfo")
	if got := Summarize(Group(ms)); got != "ext4×2, fuse.sshfs, proc, sysfs, tmpfs, xfs" {
		t.Errorf("Summarize = %q", got)
	}
}

func TestParseMountinfoErrorsNameTheLine(t *testing.T) {
	for _, bad := range []string{
		"22 27 0:21 / /proc rw,relatime proc proc rw",      // no separator
		"x 27 0:21 / /proc rw,relatime - proc proc rw",     // bad id
		"22 27 021 / /proc rw,relatime - proc proc rw",     // bad device
		"22 27 0:21 / /proc rw - proc",                     // too short
		"22 27 0:x / /proc rw,relatime - proc proc rw",     // bad minor
		"22 27 0:21 / /proc rw,relatime shared:1 - proc x", // missing super options
	} {
		_, err := ParseMountinfo(strings.NewReader("23 27 0:22 / /sys rw - sysfs sysfs rw\n" + bad + "\n"))
		if err == nil || !strings.HasPrefix(err.Error(), "line 2:") {
			t.Errorf("%q: got error %v, want one naming line 2", bad, err)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:         "plain",
		`a\040b`:        "a b",
		`tab\011nl\012`: "tab\tnl\n",
		`\134`:          `\`,
		`trailing\04`:   `trailing\04`, // incomplete escape kept
		`\999`:          `\999`,        // not octal
		`\477`:          `\477`,        // out of byte range
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add("30 27 7:0 / /srv\\040x rw shared:5 - ext4 /dev/loop0 rw\n")
	f.Add("\\0")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMountinfo(strings.NewReader(s))
		if err == nil {
			Group(ms) // must not panic either
		}
		Unescape(s)
	})
}

// TestFilesystemDev: "major:minor" in decimal, up to the largest numbers.
func TestFilesystemDev(t *testing.T) {
	for _, c := range []struct {
		maj, min uint32
		want     string
	}{{0, 0, "0:0"}, {8, 17, "8:17"}, {259, 1048575, "259:1048575"}, {1<<32 - 1, 1<<32 - 1, "4294967295:4294967295"}} {
		if got := (&Filesystem{Major: c.maj, Minor: c.min}).Dev(); got != c.want {
			t.Errorf("Dev(%d, %d) = %s, want %s", c.maj, c.min, got, c.want)
		}
	}
}
