package sys

import (
	"encoding/binary"
	"testing"
)

// FuzzParseStatmount: whatever the buffer holds, decoding it never panics.
func FuzzParseStatmount(f *testing.F) {
	ok := make([]byte, 600)
	ne := binary.NativeEndian
	ne.PutUint32(ok[0:], 600)
	ne.PutUint64(ok[8:], 0x3b)
	ne.PutUint32(ok[36:], 0)
	copy(ok[512:], "ext4\x00/\x00/srv\x00")
	ne.PutUint32(ok[104:], 5)
	ne.PutUint32(ok[108:], 7)
	f.Add(ok)
	f.Add(make([]byte, 512))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseStatmount(b, statmountRequired)
		if err == nil && len(b) < statmountStrings {
			t.Fatalf("decoded a short buffer: %+v", m)
		}
	})
}

func TestParseStatmount(t *testing.T) {
	b := make([]byte, 600)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], 600)
	ne.PutUint64(b[8:], 0x3b)
	ne.PutUint32(b[16:], 7)
	ne.PutUint32(b[20:], 3)
	ne.PutUint64(b[40:], 1<<32|5)
	ne.PutUint32(b[56:], 42)
	copy(b[512:], "ext4\x00/\x00/srv\x00")
	ne.PutUint32(b[104:], 5)
	ne.PutUint32(b[108:], 7)
	m, err := parseStatmount(b, statmountRequired)
	if err != nil || m != (Mount{ID: 1<<32 | 5, OldID: 42, Major: 7, Minor: 3, FSType: "ext4", Root: "/", Point: "/srv"}) {
		t.Errorf("parseStatmount = %+v, %v", m, err)
	}
	// The subtype and source, where the kernel reports them.
	ne.PutUint64(b[8:], 0x33b)
	copy(b[512+12:], "sshfs\x00me@host:/\x00")
	ne.PutUint32(b[120:], 12)
	ne.PutUint32(b[124:], 18)
	m, err = parseStatmount(b, statmountRequired)
	if err != nil || m.FSType != "ext4.sshfs" || m.Source != "me@host:/" {
		t.Errorf("parseStatmount with subtype and source = %+v, %v", m, err)
	}
	ne.PutUint64(b[8:], 0x1)
	if _, err := parseStatmount(b, statmountRequired); err == nil {
		t.Error("a reply without the fields asked for was accepted")
	}
}
