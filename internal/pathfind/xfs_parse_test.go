package pathfind

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readXFS returns a recorded xfs_db 6.13 output (testdata/xfs, from an
// XFS file system made with mkfs.xfs -n parent=1 whose names hold
// newlines, control characters, bytes over 127, quotes, backslashes and
// "->").
func readXFS(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "xfs", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseXFSRecorded(t *testing.T) {
	root, incompat, err := ParseXFSSuper(readXFS(t, "sb.txt"))
	if err != nil || root != 128 || incompat&xfsIncompatParent == 0 {
		t.Errorf("superblock: root %d, incompat %#x, %v", root, incompat, err)
	}
	if major, minor, err := ParseXFSDBVersion(readXFS(t, "version.txt")); err != nil || major != 6 || minor != 13 {
		t.Errorf("version %d.%d, %v", major, minor, err)
	}
	in, err := ParseXFSInode(readXFS(t, "inode-local.txt"))
	if err != nil || in != (XFSInode{Generation: 955225138, Links: 1, AttrLocal: true, HasAttrs: true}) {
		t.Errorf("inode with local attributes: %+v, %v", in, err)
	}
	in, err = ParseXFSInode(readXFS(t, "inode-leaf.txt"))
	if err != nil || in != (XFSInode{Generation: 1403170677, Links: 31, AttrLocal: false, HasAttrs: true}) {
		t.Errorf("inode with an attribute block: %+v, %v", in, err)
	}
	for file, want := range map[string]XFSParent{
		"sfattr-file.txt":     {132, 1246203917, "x\xff\x7f\t\\\\y"},
		"sfattr-dir.txt":      {128, 0, "h\n1 -> 2\\001\"q"},
		"sfattr-controls.txt": {128, 0, "e\a\b\v\f\r\x1f\xc3\xa9 ~\x06\x0e"},
	} {
		ps, err := ParseXFSShortformParents(readXFS(t, file))
		if err != nil || len(ps) != 1 || ps[0] != want {
			t.Errorf("%s: %+v, %v; want %+v", file, ps, err, want)
		}
	}
	ps, err := ParseXFSParents(readXFS(t, "parent-leaf.txt"))
	if err != nil || len(ps) != 31 {
		t.Fatalf("parent: %d parent pointers, %v; want 31", len(ps), err)
	}
	names := map[string]bool{}
	for _, p := range ps {
		if p.Inode != 132 || p.Generation != 0x4a47900d {
			t.Errorf("parent pointer %+v, want directory 132 generation 0x4a47900d", p)
		}
		names[p.Name] = true
	}
	for i := range 30 {
		if n := fmt.Sprintf("n\n%d -> 0:0x0 3 x\x01\xff", i); !names[n] {
			t.Errorf("name %q not found in %v", n, names)
		}
	}
	if !names["leaf"] {
		t.Errorf("name leaf not found")
	}
}

func TestParseXFSBad(t *testing.T) {
	for _, c := range []struct{ name, out, err string }{
		{"record cut short", "  132:0x4a47900d   4 lea", "name and its length"},
		{"name longer than said", "  132:0x4a47900d   2 leaf\n", "name and its length"},
		{"generation too big", "  132:0x14a47900d   4 leaf\n", "generation"},
		{"slash in a name", "  132:0x4a47900d   3 a/b\n", "no directory entry can be called"},
		{"dot dot", "  132:0x4a47900d   2 ..\n", "no directory entry can be called"},
		{"junk", "bad inode number 99\n", "directory inode"},
	} {
		if ps, err := ParseXFSParents([]byte(c.out)); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("parent, %s: %+v, %v; want an error with %q", c.name, ps, err, c.err)
		}
	}
	sf := "a.sfattr.list[0].namelen = 2\na.sfattr.list[0].parent = 1\na.sfattr.list[0].name = %s\n" +
		"a.sfattr.list[0].parent_dir.inumber = 128\na.sfattr.list[0].parent_dir.gen = 0\n"
	for _, c := range []struct{ name, value, err string }{
		{"length differs", `"abc"`, "without its name"},
		{"unquoted", `ab`, "not a quoted string"},
		{"bare quote", `"a"b"`, "unescaped quote"},
		{"bad octal", `"\09"`, "octal"},
		{"unknown escape", `"\z"`, "unknown escape"},
		{"trailing backslash", `"a\"`, "trailing backslash"},
	} {
		if ps, err := ParseXFSShortformParents([]byte(fmt.Sprintf(sf, c.value))); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("sfattr, %s: %+v, %v; want an error with %q", c.name, ps, err, c.err)
		}
	}
	if ps, err := ParseXFSShortformParents([]byte(fmt.Sprintf(sf, `"\\d"`))); err != nil || len(ps) != 1 || ps[0].Name != `\d` {
		t.Errorf("an escaped backslash before d: %+v, %v", ps, err)
	}
	// An ordinary extended attribute is no parent pointer.
	if ps, err := ParseXFSShortformParents([]byte(strings.Replace(fmt.Sprintf(sf, `"ab"`), "parent = 1", "parent = 0", 1))); err != nil || len(ps) != 0 {
		t.Errorf("an ordinary attribute: %+v, %v", ps, err)
	}
	for _, bad := range []string{"", "core.gen = 1\n", "core.gen = x\ncore.nlinkv2 = 1\ncore.aformat = 1 (local)\ncore.forkoff = 0\n"} {
		if in, err := ParseXFSInode([]byte(bad)); err == nil {
			t.Errorf("ParseXFSInode(%q) = %+v, no error", bad, in)
		}
	}
	for _, bad := range []string{"", "rootino = 128\n", "rootino = -1\nfeatures_incompat = 0x1\n"} {
		if _, _, err := ParseXFSSuper([]byte(bad)); err == nil {
			t.Errorf("ParseXFSSuper(%q): no error", bad)
		}
	}
	if _, _, err := ParseXFSDBVersion([]byte("xfs_db version 6.13.0 and more\n")); err == nil {
		t.Error("a version line with more after it was accepted")
	}
}

// FuzzParseXFS: the parsers of xfs_db's output never panic, and what they
// return is a name a directory entry can have.
func FuzzParseXFS(f *testing.F) {
	for _, n := range []string{"parent-leaf.txt", "sfattr-file.txt", "sfattr-dir.txt", "sfattr-controls.txt", "inode-leaf.txt", "sb.txt"} {
		f.Add(readXFS(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseXFSSuper(b)
		ParseXFSInode(b)
		ParseXFSDBVersion(b)
		for _, parse := range []func([]byte) ([]XFSParent, error){ParseXFSParents, ParseXFSShortformParents} {
			ps, err := parse(b)
			if err != nil {
				continue
			}
			for _, p := range ps {
				if checkName(p.Name) != nil {
					t.Errorf("name %q accepted", p.Name)
				}
			}
		}
	})
}
