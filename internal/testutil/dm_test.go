package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestDMTables(t *testing.T) {
	if got, want := LinearTable("/dev/loop3", 2048), "0 2048 linear /dev/loop3 0\n"; got != want {
		t.Errorf("LinearTable = %q, want %q", got, want)
	}
	if got, want := FlakeyTable("/dev/loop3", 2048), "0 2048 flakey /dev/loop3 0 0 1\n"; got != want {
		t.Errorf("FlakeyTable = %q, want %q", got, want)
	}
	if got, want := FlakeyTable("/dev/loop3", 2048, "error_writes"), "0 2048 flakey /dev/loop3 0 0 1 1 error_writes\n"; got != want {
		t.Errorf("FlakeyTable(error_writes) = %q, want %q", got, want)
	}
	want := "0 100 linear /dev/loop3 0\n100 8 flakey /dev/loop3 100 0 1 1 error_writes\n108 1940 linear /dev/loop3 108\n"
	if got := FlakeyRangeTable("/dev/loop3", 2048, 100, 8, "error_writes"); got != want {
		t.Errorf("FlakeyRangeTable = %q, want %q", got, want)
	}
	// A range at either end has no linear piece there.
	if got, want := FlakeyRangeTable("/dev/loop3", 16, 0, 16), "0 16 flakey /dev/loop3 0 0 1\n"; got != want {
		t.Errorf("FlakeyRangeTable of everything = %q, want %q", got, want)
	}
}

func TestFindInImage(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	data := make([]byte, 3<<20)
	marker := []byte("fshealth-marker-0123456789")
	// Across the first 1 MiB chunk boundary.
	at := int64(1<<20) - 5
	copy(data[at:], marker)
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &DMFilesystem{Image: img}
	if got := f.FindInImage(t, marker); got != at {
		t.Errorf("FindInImage = %d, want %d", got, at)
	}
	b := make([]byte, len(marker))
	f.ReadImageAt(t, b, at)
	if !bytes.Equal(b, marker) {
		t.Errorf("ReadImageAt = %q", b)
	}
}
