package storage

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/mounts"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// buildTree makes the fixture tree described by testdata/<name>.tree under
// a new directory and returns it. Each line is "path = value" (a file
// holding value and a newline; "\n" in value is a newline; "hex:..." is
// binary content, written as is), or "path -> /target" (a relative
// symlink to target, a path of the tree); "#" starts a comment line.
func buildTree(t *testing.T, name string) string {
	t.Helper()
	root := t.TempDir()
	f, err := os.Open(filepath.Join("testdata", name+".tree"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if p, target, ok := strings.Cut(line, " -> "); ok {
			link := filepath.Join(root, p)
			if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
				t.Fatal(err)
			}
			rel, err := filepath.Rel(filepath.Dir(link), filepath.Join(root, target))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(rel, link); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p, v, ok := strings.Cut(line, " = ")
		if !ok {
			t.Fatalf("%s.tree:%d: want \"path = value\" or \"path -> target\": %q", name, n, line)
		}
		var b []byte
		if h, ok := strings.CutPrefix(v, "hex:"); ok {
			if b, err = hex.DecodeString(h); err != nil {
				t.Fatalf("%s.tree:%d: %v", name, n, err)
			}
		} else {
			b = []byte(strings.ReplaceAll(v, `\n`, "\n") + "\n")
		}
		file := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return root
}

// looker reads the fixture tree at root.
func looker(root string) *Looker {
	return &Looker{SysRoot: filepath.Join(root, "sys"), DevRoot: filepath.Join(root, "dev")}
}

// relink rewrites the fixture root out of the stack's paths, so golden
// files do not depend on where the tree was built.
func relink(stack []Layer, root string) {
	for i := range stack {
		for j, l := range stack[i].Links {
			stack[i].Links[j] = strings.TrimPrefix(l, root)
		}
	}
}

func golden(t *testing.T, name string, stack []Layer) {
	t.Helper()
	got, err := json.MarshalIndent(stack, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func names(stack []Layer) string {
	var ns []string
	for _, l := range stack {
		ns = append(ns, l.Name+":"+l.Kind+"<"+strings.Join(l.On, ",")+">")
	}
	return strings.Join(ns, " ")
}

func TestLVMOnMDOnSCSI(t *testing.T) {
	root := buildTree(t, "lvm-md-scsi")
	stack, err := looker(root).Lookup(253, 0, "/dev/mapper/vgA-my--data")
	if err != nil {
		t.Fatal(err)
	}
	relink(stack, root)
	if got, want := names(stack), "dm-0:lvm<md0> md0:md<sda1,sdb1> sda1:partition<sda> sdb1:partition<sdb> sda:disk<> sdb:disk<>"; got != want {
		t.Errorf("stack %s, want %s", got, want)
	}
	if lv := stack[0].LV; lv != "vgA/my-data" {
		t.Errorf("LV %q, want vgA/my-data (dm name with -- unescaped)", lv)
	}
	if md := stack[1].MD; md == nil || md.Degraded != 1 || len(md.Members) != 2 || md.Members[1].State != "faulty" || md.Members[1].Name != "sdb1" {
		t.Errorf("md state %+v", md)
	}
	sda := Find(stack, "sda").Disk
	if sda.Serial != "S123ABC" || sda.Vendor != "ATA" || sda.Model != "FOO 2000" || sda.WWN != "naa.5000c500a1b2c3d4" || sda.Firmware != "1A02" || sda.Slot != "3" || sda.Enclosure != "2:0:8:0" {
		t.Errorf("sda identity %+v", sda)
	}
	if l := Find(stack, "sda").Links; len(l) != 3 {
		t.Errorf("sda links %q, want its two by-id and one by-path links", l)
	}
	if p := PartitionAt(stack, "sdb", 5000); p != "sdb1" {
		t.Errorf("sector 5000 of sdb in %q, want sdb1", p)
	}
	if p := PartitionAt(stack, "sdb", 100); p != "" {
		t.Errorf("sector 100 of sdb (before the first partition) in %q", p)
	}
	golden(t, "lvm-md-scsi", stack)
}

func TestLUKSOnPartition(t *testing.T) {
	root := buildTree(t, "luks-partition")
	stack, err := looker(root).Lookup(253, 1, "/dev/vgA/data")
	if err != nil {
		t.Fatal(err)
	}
	relink(stack, root)
	if got, want := names(stack), "dm-1:lvm<dm-0> dm-0:dm-crypt<sda2> sda2:partition<sda> sda:disk<>"; got != want {
		t.Errorf("stack %s, want %s", got, want)
	}
	if stack[0].MountedAs != "/dev/vgA/data" {
		t.Errorf("mounted as %q", stack[0].MountedAs)
	}
	if p := stack[2]; p.Partition != 2 || p.Start != 1050624 {
		t.Errorf("partition %+v", p)
	}
	golden(t, "luks-partition", stack)
}

func TestLoopOnFileOnNVMe(t *testing.T) {
	root := buildTree(t, "loop-nvme")
	l := looker(root)
	l.Mounts = []mounts.Mount{
		{Major: 259, Minor: 1, Point: "/srv", FSType: "xfs", Source: "/dev/nvme0n1p1"},
		{Major: 7, Minor: 1, Point: "/mnt/outer", FSType: "ext4", Source: "/dev/loop1"},
		{Major: 7, Minor: 0, Point: "/mnt/inner", FSType: "ext4", Source: "/dev/loop0"},
	}
	devs := map[string][2]uint32{"/mnt/outer/inner.img": {7, 1}, "/srv/outer.img": {259, 1}}
	l.StatDev = func(p string) (uint32, uint32, error) {
		d, ok := devs[p]
		if !ok {
			return 0, 0, os.ErrNotExist
		}
		return d[0], d[1], nil
	}
	stack, err := l.Lookup(7, 0, "/dev/loop0")
	if err != nil {
		t.Fatal(err)
	}
	relink(stack, root)
	if got, want := names(stack), "loop0:loop<loop1> loop1:loop<nvme0n1p1> nvme0n1p1:partition<nvme0n1> nvme0n1:disk<>"; got != want {
		t.Errorf("stack %s, want %s", got, want)
	}
	if b := stack[0].BackingFS; b == nil || b.Mountpoint != "/mnt/outer" || b.Source != "/dev/loop1" {
		t.Errorf("loop0 backing fs %+v", b)
	}
	if stack[0].MountedAs != "" {
		t.Errorf("mounted as %q, the device node itself", stack[0].MountedAs)
	}
	d := Find(stack, "nvme0n1").Disk
	if d.Transport != "nvme" || d.Serial != "nvme-serial-1" || d.Model != "QEMU NVMe Ctrl" || d.Firmware != "8.2.1" || d.WWN == "" {
		t.Errorf("nvme identity %+v", d)
	}
	golden(t, "loop-nvme", stack)
}

// TestMergeKeepsVanishedSlaves: a dm device whose table was replaced by
// `error` has no slaves any more; the stack read before says what it was on.
func TestMergeKeepsVanishedSlaves(t *testing.T) {
	root := buildTree(t, "luks-partition")
	l := looker(root)
	before, err := l.Lookup(253, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "sys/devices/virtual/block/dm-0/slaves/sda2")); err != nil {
		t.Fatal(err)
	}
	after, err := l.Lookup(253, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(after); got != "dm-1:lvm<dm-0> dm-0:dm-crypt<>" {
		t.Fatalf("after the table was replaced: %s", got)
	}
	if got, want := names(Merge(before, after)), names(before); got != want {
		t.Errorf("merged %s, want %s", got, want)
	}
	if err := os.RemoveAll(filepath.Join(root, "sys/dev/block/253:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lookup(253, 1, ""); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lookup of a vanished device: %v, want ErrNotExist", err)
	}
}

func TestSplitLVName(t *testing.T) {
	for in, want := range map[string]string{
		"vgA-data": "vgA/data", "my--vg-my--lv": "my-vg/my-lv", "vg-lv--x--": "vg/lv-x-",
		"nodash": "", "-lv": "", "vg-": "", "a--b": "",
	} {
		vg, lv, ok := SplitLVName(in)
		got := ""
		if ok {
			got = vg + "/" + lv
		}
		if got != want {
			t.Errorf("SplitLVName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnitSerial(t *testing.T) {
	for _, c := range []struct {
		in, want string
	}{
		{"0080000b2020533132334142432020", "S123ABC"},
		{"0080000453313233ffff", "S123"}, // length bounds it
		{"0083000453313233", ""},         // another page
		{"008000", ""},                   // short
		{"00800004530a3233", ""},         // a control character
		{"008000ff5331", "S1"},           // length beyond the data
	} {
		b, _ := hex.DecodeString(c.in)
		if got := unitSerial(b); got != c.want {
			t.Errorf("unitSerial(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestLookupName: a device by its kernel name, as btrfs lists its members.
func TestLookupName(t *testing.T) {
	root := buildTree(t, "luks-partition")
	stack, err := looker(root).LookupName("sda2")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(stack), "sda2:partition<sda> sda:disk<>"; got != want {
		t.Errorf("stack %s, want %s", got, want)
	}
	if _, err := looker(root).LookupName("sdz"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unknown device: %v, want ErrNotExist", err)
	}
}
