package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run %s -update rewrites it):\n%s", p, t.Name(), got)
	}
}

// fixedHistory commits a fixed history to a new store: two file systems,
// a burst of lookups of a corrupted inode, a bad directory, errors ext4
// recorded, block layer I/O errors; and returns the store and the time the
// report is made.
func fixedHistory(t *testing.T) (*store.Store, time.Time) {
	t.Helper()
	st, err := store.Open(store.PathIn(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	mk := func(id string, at time.Duration, dev, uuid, mp, errno string, n uint32) event.Event {
		return event.Event{ID: id, Kind: event.KindError, Time: event.Time{Time: day.Add(at)}, Source: event.SourceFanotify,
			Error: errno, ErrorCount: n, Device: dev, FSType: "ext4", UUID: uuid, Mountpoints: []string{mp}}
	}
	var evs []event.Event
	lookup := func(id string, at time.Duration, n uint32) {
		e := mk(id, at, "/dev/sdb1", "a10bc9bc-22a5-499b-9a0d-5899c847da19", "/srv", "EUCLEAN", n)
		ino, gen := uint64(14), uint32(1908302143)
		e.Inode, e.Generation, e.Path = &ino, &gen, "/srv/data/db"
		e.KernelMessage = "EXT4-fs error (device sdb1): ext4_lookup:1855: inode #14: comm ls: iget: bogus i_mode (377)"
		evs = append(evs, e)
	}
	for i, h := range []int{1, 1, 2, 5, 5, 5, 5, 9, 13, 13, 22} {
		lookup("l"+string(rune('a'+i)), time.Duration(h)*time.Hour+time.Duration(i)*time.Minute, uint32(1+i%3))
	}
	dir := mk("d1", 9*time.Hour+30*time.Minute, "/dev/sdb1", "a10bc9bc-22a5-499b-9a0d-5899c847da19", "/srv", "EUCLEAN", 1)
	ino, gen := uint64(2), uint32(0)
	dir.Inode, dir.Generation, dir.Path = &ino, &gen, "/srv"
	dir.KernelMessage = "EXT4-fs error (device sdb1): htree_dirblock_to_tree:1087: inode #2: block 1234: comm ls: bad entry in directory: rec_len is smaller than minimal - offset=0, inode=0, rec_len=0, size=4096 fake=0"
	whole := mk("w1", 20*time.Hour, "/dev/sdb1", "a10bc9bc-22a5-499b-9a0d-5899c847da19", "/srv", "EUCLEAN", 1)
	whole.Ext4 = &ext4.State{ErrorsCount: 14, LastError: &ext4.ErrorInfo{Function: "trigger_test_error", Line: 129}}
	io1 := mk("b1", 3*time.Hour, "/dev/sdc1", "", "/backup", "EIO", 1)
	io1.Source, io1.KernelMessage = event.SourceKmsg, "I/O error, dev sdc, sector 2099200 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2"
	io2 := io1
	io2.ID, io2.Time = "b2", event.Time{Time: day.Add(3*time.Hour + 10*time.Second)}
	io2.KernelMessage = "I/O error, dev sdc, sector 9000000 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2"
	evs = append(evs, dir, whole, io1, io2)
	if err := st.Commit(context.Background(), &store.Batch{Events: evs}); err != nil {
		t.Fatal(err)
	}
	return st, day.Add(23*time.Hour + 30*time.Minute)
}

// TestReportGolden: the text report of a fixed history, with a Unicode
// chart and an ASCII one, and the daily chart of a longer period.
func TestReportGolden(t *testing.T) {
	st, now := fixedHistory(t)
	ctx := context.Background()
	fss, err := st.Filesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	since := now.Add(-24 * time.Hour)
	r, err := st.Report(ctx, store.ReportQuery{Since: since, Until: now})
	if err != nil {
		t.Fatal(err)
	}
	doc := reportJSON(r, fss, since, now)
	for _, c := range []struct {
		file    string
		unicode bool
	}{{"report-unicode.golden", true}, {"report-ascii.golden", false}} {
		var b bytes.Buffer
		if err := writeReport(&b, doc, reportStyle{unicode: c.unicode, loc: time.UTC}); err != nil {
			t.Fatal(err)
		}
		golden(t, c.file, b.Bytes())
	}
	// A week: a bar per day; only /backup.
	since = now.Add(-7 * 24 * time.Hour)
	r, err = st.Report(ctx, store.ReportQuery{Since: since, FS: "/backup", Until: now})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeReport(&b, reportJSON(r, fss, since, now), reportStyle{unicode: true, loc: time.UTC}); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-week.golden", b.Bytes())
}

// TestStatusFilesGolden: the damaged files of the fixed history.
func TestStatusFilesGolden(t *testing.T) {
	st, _ := fixedHistory(t)
	ctx := context.Background()
	fss, _ := st.Filesystems(ctx)
	files, err := st.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writeDamagedFiles(&b, fss, files, time.UTC)
	golden(t, "status-files.golden", b.Bytes())
}

func TestUnicodeTerminal(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"LANG": "en_US.UTF-8"}, true},
		{map[string]string{"LANG": "C.utf8"}, true},
		{map[string]string{"LC_ALL": "C", "LANG": "en_US.UTF-8"}, false},
		{map[string]string{"LC_CTYPE": "de_DE.UTF-8", "LANG": "C"}, true},
		{map[string]string{"LANG": "C"}, false},
		{map[string]string{}, false},
	} {
		if got := unicodeTerminal(func(k string) string { return c.env[k] }); got != c.want {
			t.Errorf("%v: %v, want %v", c.env, got, c.want)
		}
	}
}
