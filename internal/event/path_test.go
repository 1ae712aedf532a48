package event

import (
	"strings"
	"testing"
)

// TestPathText: a path event is one line naming the inode, the file system
// and the path, quoted when hostile; an error whose path is pending says so.
func TestPathText(t *testing.T) {
	e := samples()[1] // the inode error
	e.PathError, e.PathPending = "", true
	if l := string(AppendText(nil, &e)); !strings.Contains(l, " inode 13 (generation 3908447102) (path pending: looked up read-only from the device) ") {
		t.Errorf("pending: %q", l)
	}
	p := Event{Kind: KindPath, Time: e.Time, Source: SourcePathfind, FSID: e.FSID, Device: "/dev/loop0", FSType: "ext4",
		Inode: e.Inode, Generation: e.Generation, Path: "/srv/a b/evil\n2026-01-01 forged", Message: "found read-only on the device in 3ms"}
	l := string(AppendText(nil, &p))
	want := `2026-11-23T21:00:00.000000005Z PATH of inode 13 (generation 3908447102) on /dev/loop0 ext4: "/srv/a b/evil\n2026-01-01 forged" (found read-only on the device in 3ms)` + "\n"
	if l != want {
		t.Errorf("path event:\n got %q\nwant %q", l, want)
	}
	p.Path, p.PathError, p.Message = "", "no directory entry on /dev/loop0 names inode 13", ""
	if l := string(AppendText(nil, &p)); !strings.HasSuffix(l, "ext4: not found: no directory entry on /dev/loop0 names inode 13\n") {
		t.Errorf("path not found: %q", l)
	}
	if s := Summary(&p); s != "path of inode 13 on /dev/loop0: not found" {
		t.Errorf("Summary = %q", s)
	}
}
