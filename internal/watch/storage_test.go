package watch

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestEventNamesLoopOnLoop: ext4 on a loop device whose backing file is on
// another loop-mounted ext4. The event's storage stack names both loop
// devices, both backing files and the file system the inner image is on.
func TestEventNamesLoopOnLoop(t *testing.T) {
	testutil.CheckNoLeaks(t)
	outer := testutil.NewExt4(t, 64<<20)
	inner, err := loopfs.Create(outer.Mountpoint, "ext4", 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inner.Remove(); err != nil {
			t.Errorf("removing the inner image: %v", err)
		}
	})
	if err := inner.Mount(filepath.Join(t.TempDir(), "inner"), "errors=continue"); err != nil {
		t.Fatal(err)
	}
	c := start(t, []string{inner.Mountpoint}, false)
	if err := inner.TriggerError("fshealth storage test"); err != nil {
		t.Fatal(err)
	}
	e := c.next()
	checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
	if len(e.Storage) < 2 {
		t.Fatalf("storage stack %+v, want the inner and the outer loop device", e.Storage)
	}
	top, below := e.Storage[0], storage.Find(e.Storage, outer.Name)
	if top.Name != inner.Name || top.Kind != storage.KindLoop || top.BackingFile != inner.File ||
		len(top.On) != 1 || top.On[0] != outer.Name {
		t.Errorf("top layer %+v, want %s on %s backed by %s", top, inner.Name, outer.Name, inner.File)
	}
	if f := top.BackingFS; f == nil || f.Mountpoint != outer.Mountpoint || f.FSType != "ext4" || f.Source != outer.Dev {
		t.Errorf("the inner image's file system %+v, want ext4 %s at %s", f, outer.Dev, outer.Mountpoint)
	}
	if below == nil || below.Kind != storage.KindLoop || below.BackingFile != outer.File {
		t.Errorf("layer %s: %+v, want the loop device of %s", outer.Name, below, outer.File)
	}
	line := string(event.AppendText(nil, &e))
	if want := inner.Name + " file " + inner.File + " → " + outer.Name + " file " + outer.File; !strings.Contains(line, want) {
		t.Errorf("text line %q lacks %q", line, want)
	}
	t.Logf("%s", line)
	c.none()
}
