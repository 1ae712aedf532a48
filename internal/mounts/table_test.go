package mounts

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// groupsOf renders file systems as "dev fstype: point point ..." lines.
func groupsOf(fss []*Filesystem) string {
	var b strings.Builder
	for _, f := range fss {
		fmt.Fprintf(&b, "%s %s %s:", f.Dev(), f.FSType, f.Source)
		for i, p := range f.Mountpoints {
			if f.Mounts[i].Point != p {
				fmt.Fprintf(&b, " MISMATCH(%q/%q)", p, f.Mounts[i].Point)
			}
			fmt.Fprintf(&b, " %s", p)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestTableMatchesGroup: a table filled from a mountinfo reading has the
// file systems Group makes of it, in the same order.
func TestTableMatchesGroup(t *testing.T) {
	ms, err := ReadMountinfo("testdata/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	tab := NewTable()
	r := NewMountinfoReader("testdata/mountinfo")
	if err := r.Update(tab); err != nil {
		t.Fatal(err)
	}
	cs := tab.Publish()
	if len(cs) != 7 {
		t.Errorf("first Publish reported %d changes, want 7 new file systems", len(cs))
	}
	for _, c := range cs {
		if c.Old != nil || c.New == nil {
			t.Errorf("first Publish: %+v is not a new file system", c)
		}
	}
	if got, want := groupsOf(tab.Filesystems()), groupsOf(Group(ms)); got != want {
		t.Errorf("table:\n%s\nGroup:\n%s", got, want)
	}
	// Nothing changed: a second reading changes nothing.
	if err := r.Update(tab); err != nil {
		t.Fatal(err)
	}
	if cs := tab.Publish(); len(cs) != 0 {
		t.Errorf("an unchanged mountinfo gave changes: %+v", cs)
	}
}

// TestMountinfoReaderDiff: readings of a changing mountinfo file give the
// changes by mount id: added, removed, moved, and a reused id.
func TestMountinfoReaderDiff(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mountinfo")
	write := func(lines ...string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := "1 0 8:1 / / rw - ext4 /dev/sda1 rw"
	proc := "2 1 0:21 / /proc rw - proc proc rw"
	data := "3 1 7:0 / /srv rw - ext4 /dev/loop0 rw"
	bind := "4 1 7:0 /sub /mnt/b\\040x rw - ext4 /dev/loop0 rw"
	tab, r := NewTable(), NewMountinfoReader(path)
	step := func(what string, want string, check func([]Changed)) {
		t.Helper()
		if err := r.Update(tab); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		cs := tab.Publish()
		if check != nil {
			check(cs)
		}
		if got := groupsOf(tab.Filesystems()); got != want {
			t.Errorf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	write(root, proc, data)
	step("first reading", "8:1 ext4 /dev/sda1: /\n0:21 proc proc: /proc\n7:0 ext4 /dev/loop0: /srv\n", nil)
	write(root, proc, data, bind)
	step("bind mount", "8:1 ext4 /dev/sda1: /\n0:21 proc proc: /proc\n7:0 ext4 /dev/loop0: /srv /mnt/b x\n", func(cs []Changed) {
		if len(cs) != 1 || cs[0].Old == nil || cs[0].Added != 1 || cs[0].Removed != 0 || cs[0].Replaced {
			t.Errorf("bind mount: changes %+v", cs)
		}
	})
	// The same id, now elsewhere (a move keeps the id).
	write(root, proc, data, strings.Replace(bind, "/mnt/b\\040x", "/mnt/moved", 1))
	step("move", "8:1 ext4 /dev/sda1: /\n0:21 proc proc: /proc\n7:0 ext4 /dev/loop0: /srv /mnt/moved\n", func(cs []Changed) {
		if len(cs) != 1 || cs[0].Added != 1 || cs[0].Removed != 1 || cs[0].Replaced {
			t.Errorf("move: changes %+v", cs)
		}
	})
	// Both mounts of loop0 gone, a new superblock with the same device
	// number mounted with a reused id: replaced.
	write(root, proc, "3 1 7:0 / /other rw - ext4 /dev/loop0 rw")
	step("remount elsewhere", "8:1 ext4 /dev/sda1: /\n0:21 proc proc: /proc\n7:0 ext4 /dev/loop0: /other\n", func(cs []Changed) {
		if len(cs) != 1 || !cs[0].Replaced || cs[0].Removed != 2 || cs[0].Added != 1 {
			t.Errorf("remount elsewhere: changes %+v", cs)
		}
	})
	write(root, proc)
	step("unmount", "8:1 ext4 /dev/sda1: /\n0:21 proc proc: /proc\n", func(cs []Changed) {
		if len(cs) != 1 || cs[0].New != nil || cs[0].Old.Mountpoints[0] != "/other" {
			t.Errorf("unmount: changes %+v", cs)
		}
	})
	// A malformed line is skipped and named; the rest is applied.
	write(root, "x y", data)
	if err := r.Update(tab); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed line: error %v, want one naming line 2", err)
	}
	tab.Publish()
	if got, want := groupsOf(tab.Filesystems()), "8:1 ext4 /dev/sda1: /\n7:0 ext4 /dev/loop0: /srv\n"; got != want {
		t.Errorf("after a malformed line:\n got %s\nwant %s", got, want)
	}
}

// TestTablePublishedAreImmutable: a published file system keeps its mount
// points while the table changes, and appending to them copies.
func TestTablePublishedAreImmutable(t *testing.T) {
	tab := NewTable()
	m := func(id int, point string) Mount {
		return Mount{ID: id, Major: 7, Minor: 1, Root: "/", Point: point, FSType: "ext4", Source: "/dev/loop1"}
	}
	tab.Add(m(1, "/a"), 0)
	tab.Add(m(2, "/b"), 0)
	tab.Publish()
	before := tab.Lookup(7, 1)
	tab.Add(m(3, "/c"), 0)
	tab.Publish()
	grown := tab.Lookup(7, 1)
	_ = append(before.Mountpoints, "/x")
	tab.Remove(1)
	tab.Add(m(4, "/d"), 0)
	tab.Publish()
	after := tab.Lookup(7, 1)
	if !slices.Equal(before.Mountpoints, []string{"/a", "/b"}) || !slices.Equal(grown.Mountpoints, []string{"/a", "/b", "/c"}) ||
		!slices.Equal(after.Mountpoints, []string{"/b", "/c", "/d"}) {
		t.Errorf("published mount points changed: %q, %q, %q", before.Mountpoints, grown.Mountpoints, after.Mountpoints)
	}
	if after.MarkPath() != "/b" {
		t.Errorf("MarkPath = %q", after.MarkPath())
	}
}

// TestTableSync: a complete listing by unique id adds what is new, gives
// known mounts their unique id without changing them, and removes the
// rest; a failed look-up removes nothing.
func TestTableSync(t *testing.T) {
	tab := NewTable()
	mk := func(id int, point string) Mount {
		return Mount{ID: id, Major: 8, Minor: 1, Root: "/", Point: point, FSType: "ext4"}
	}
	tab.Add(mk(1, "/"), 0)
	tab.Add(mk(2, "/gone"), 0)
	tab.Publish()
	byUnique := map[uint64]Mount{100: mk(1, "/"), 102: mk(3, "/new")}
	stat := func(u uint64) (Mount, bool, error) {
		m, ok := byUnique[u]
		return m, ok, nil
	}
	if err := tab.Sync([]uint64{100, 101, 102}, stat); err != nil {
		t.Fatal(err)
	}
	cs := tab.Publish()
	if len(cs) != 1 || cs[0].Added != 1 || cs[0].Removed != 1 || !slices.Equal(cs[0].New.Mountpoints, []string{"/", "/new"}) {
		t.Errorf("Sync: changes %+v", cs)
	}
	if !tab.HasUnique(100) || !tab.HasUnique(102) || tab.HasUnique(101) {
		t.Error("Sync did not record the unique ids")
	}
	if !tab.RemoveUnique(102) || tab.RemoveUnique(102) {
		t.Error("RemoveUnique")
	}
	fail := func(u uint64) (Mount, bool, error) { return Mount{}, false, fmt.Errorf("no") }
	if err := tab.Sync([]uint64{999}, fail); err == nil {
		t.Error("a failed look-up was not reported")
	}
	tab.Publish()
	if got := tab.Lookup(8, 1); got == nil || !slices.Equal(got.Mountpoints, []string{"/"}) {
		t.Errorf("after a failed Sync: %v", got)
	}
}

// FuzzTable: whatever the sequence of additions and removals, the
// published table equals Group of the same mounts, and Publish reports
// exactly the file systems that changed.
func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x81, 4, 0xff, 5, 0x82})
	f.Add([]byte{1, 1, 1, 0x81, 0x81, 0xff, 2, 0xff})
	f.Fuzz(func(t *testing.T, ops []byte) {
		tab := NewTable()
		var ref []Mount // in the order the table learned them
		pub := map[string]string{}
		for i, op := range ops {
			switch {
			case op == 0xff:
				cs := tab.Publish()
				now := map[string]string{}
				for _, fs := range Group(ref) {
					now[fs.Dev()] = groupsOf([]*Filesystem{fs})
				}
				changed := map[string]bool{}
				for _, c := range cs {
					fs := c.New
					if fs == nil {
						fs = c.Old
					}
					changed[fs.Dev()] = true
				}
				for dev := range mergeKeys(pub, now) {
					if (pub[dev] != now[dev]) != changed[dev] && pub[dev] != now[dev] {
						t.Fatalf("op %d: %s changed (%q → %q) but was not reported", i, dev, pub[dev], now[dev])
					}
				}
				pub = now
				if got, want := groupsOf(tab.Filesystems()), groupsOf(Group(ref)); got != want {
					t.Fatalf("op %d: table\n%s\nGroup\n%s", i, got, want)
				}
			case op&0x80 != 0: // remove id op&0x0f
				id := int(op & 0x0f)
				had := slices.ContainsFunc(ref, func(m Mount) bool { return m.ID == id })
				if tab.Remove(id) != had {
					t.Fatalf("op %d: Remove(%d) disagrees with the reference", i, id)
				}
				ref = slices.DeleteFunc(ref, func(m Mount) bool { return m.ID == id })
			default: // add id op&0x0f on device op>>4&3 at point i
				m := Mount{ID: int(op & 0x0f), Major: 7, Minor: uint32(op >> 4 & 3), Root: "/", Point: fmt.Sprint("/m", i), FSType: "ext4"}
				if j := slices.IndexFunc(ref, func(r Mount) bool { return r.ID == m.ID }); j >= 0 {
					ref = slices.Delete(ref, j, j+1)
				}
				tab.Add(m, 0)
				ref = append(ref, m)
			}
			if tab.Len() != len(ref) {
				t.Fatalf("op %d: Len %d, want %d", i, tab.Len(), len(ref))
			}
		}
	})
}

func mergeKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// FuzzMountinfoReader: readings of arbitrary text never panic, and a
// reading parsed incrementally after another equals a fresh parse.
func FuzzMountinfoReader(f *testing.F) {
	fixture, _ := os.ReadFile("testdata/mountinfo")
	f.Add(fixture, []byte("30 27 7:0 / /srv\\040x rw shared:5 - ext4 /dev/loop0 rw\n"))
	f.Add([]byte("1 0 8:1 / / rw - ext4 a rw\n1 0 8:2 / /x rw - ext4 b rw\n"), []byte("\\0"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		tab := NewTable()
		r := &MountinfoReader{path: "fuzz", seed: NewMountinfoReader("").seed, seen: map[int]lineState{}}
		r.apply(tab, a)
		tab.Publish()
		errB := r.apply(tab, b)
		tab.Publish()
		fresh := NewTable()
		r2 := &MountinfoReader{path: "fuzz", seed: r.seed, seen: map[int]lineState{}}
		errFresh := r2.apply(fresh, b)
		fresh.Publish()
		if (errB == nil) != (errFresh == nil) {
			t.Fatalf("errors differ: %v / %v", errB, errFresh)
		}
		if got, want := canon(tab.Filesystems()), canon(fresh.Filesystems()); !reflect.DeepEqual(got, want) {
			t.Fatalf("incremental\n%s\nfresh\n%s", got, want)
		}
	})
}

// canon renders file systems by device and sorted mount points, sorted:
// incremental readings learn mounts in another order than a fresh one.
func canon(fss []*Filesystem) []string {
	var l []string
	for _, f := range fss {
		ps := slices.Clone(f.Mountpoints)
		slices.Sort(ps)
		l = append(l, fmt.Sprintf("%s %q", f.Dev(), ps))
	}
	slices.Sort(l)
	return l
}
