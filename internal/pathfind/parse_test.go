package pathfind

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseNcheck(t *testing.T) {
	for _, c := range []struct {
		name string
		out  string
		want []string
		err  string
	}{
		{"none", "Inode\tPathname\n", nil, ""},
		{"root child", "Inode\tPathname\n13\t//hl\n", []string{"/hl"}, ""},
		{"links and newline", "Inode\tPathname\n13\t//hl\n13\t/d\nx/bad\n", []string{"/hl", "/d\nx/bad"}, ""},
		{"name looks like a record of another inode", "Inode\tPathname\n13\t/a\n14\t/b\n", []string{"/a\n14\t/b"}, ""},
		{"placed in no directory", "Inode\tPathname\n13\t<12>/bad\n", nil, "could not place"},
		{"no header", "oops\n", nil, "not its header"},
		{"nothing", "", nil, "printed nothing"},
		{"other inode", "Inode\tPathname\n14\t/x\n", nil, "not records of inode 13"},
		{"cut short", "Inode\tPathname\n13\t/x", nil, "not records of inode 13"},
	} {
		got, err := ParseNcheck([]byte(c.out), 13)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	out := "Inode: 13   Type: bad type    Mode:  0377   Flags: 0x80000\nGeneration: 4253319873    Version: 0x00000000:00000001\n" +
		"User:     0   Group:     0   Project:     0   Size: 3\nFile ACL: 0\nLinks: 2   Blockcount: 2\n"
	if links, gen, err := ParseStat([]byte(out), 13); err != nil || links != 2 || gen != 4253319873 {
		t.Errorf("ParseStat = %d, %d, %v", links, gen, err)
	}
	for _, bad := range []string{"", "Links: 2\n", "Generation: 1\nLinks: x\n", "Generation: 99999999999\nLinks: 1\n"} {
		if _, _, err := ParseStat([]byte(bad), 13); err == nil {
			t.Errorf("ParseStat(%q) gave no error", bad)
		}
	}
}

func TestUnderMount(t *testing.T) {
	ms := []Mount{{Point: "/srv/sub", Root: "/data"}, {Point: "/mnt", Root: "/"}}
	for in, want := range map[string]string{
		"/data/x/y": "/srv/sub/x/y",
		"/data":     "/srv/sub",
		"/datax/y":  "/mnt/datax/y",
		"/other":    "/mnt/other",
	} {
		if got, ok := underMount(in, ms); !ok || got != want {
			t.Errorf("underMount(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := underMount("/other", ms[:1]); ok {
		t.Errorf("a path no mount shows mapped to %q", got)
	}
}

func TestCapped(t *testing.T) {
	c := &capped{limit: 4}
	c.Write([]byte("ab"))
	if n, err := c.Write([]byte("cdef")); n != 4 || err != nil || string(c.Bytes()) != "abcd" || !c.over {
		t.Errorf("%d %v %q over=%v", n, err, c.Bytes(), c.over)
	}
}
