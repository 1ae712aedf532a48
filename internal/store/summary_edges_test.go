package store

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// TestDamagedFileWithoutGeneration: an error that names an inode but no
// generation makes a damaged file without one, which a later error about
// the inode with a generation does not mark replaced (it may be the same
// file).
func TestDamagedFileWithoutGeneration(t *testing.T) {
	s := openTemp(t)
	e := errEvent("n", base, fs1, "EIO", 1)
	ino := uint64(77)
	e.Inode = &ino
	commit(t, s, &Batch{Events: []event.Event{e}})
	commit(t, s, &Batch{Events: []event.Event{inodeEvent("g", base.Add(time.Minute), fs1, "EIO", 1, 77, 5, "")}})
	files, err := s.DamagedFiles(ctx, fs1.UUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("damaged files %+v, want 2", files)
	}
	var none int
	for _, f := range files {
		if f.Generation != nil {
			if *f.Generation != 5 {
				t.Errorf("damaged file of generation %d, want 5", *f.Generation)
			}
			continue
		}
		none++
		if f.State != "" {
			t.Errorf("the damaged file without a generation is %q, want no state", f.State)
		}
	}
	if none != 1 {
		t.Errorf("%d damaged files without a generation, want 1: %+v", none, files)
	}
}

// TestSummaryLabelFromEvents: the path an error comes with labels its
// inode's group in the summary, and a later error about the inode without
// one keeps it: the report names it even once the file is no longer among
// the damaged files.
func TestSummaryLabelFromEvents(t *testing.T) {
	s := openTemp(t)
	e := inodeEvent("p", base, fs1, "EIO", 1, 91, 2, "")
	e.Path = "/data/direct"
	commit(t, s, &Batch{Events: []event.Event{e, inodeEvent("q", base.Add(time.Minute), fs1, "EIO", 1, 91, 2, "")}})
	if err := s.MarkHealthy(ctx, fs1.UUID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r, err := s.Report(ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range r.Groups {
		if g.Dim == DimFile && g.Value == "91" {
			found = true
			if g.Label != "/data/direct" || g.Errors != 2 {
				t.Errorf("the report's group of inode 91: label %q, %d errors; want /data/direct, 2", g.Label, g.Errors)
			}
		}
	}
	if !found {
		t.Errorf("no group of inode 91 in %+v", r.Groups)
	}
}

// TestDamagedFilesAnyBatching: a damaged file's errno is that of its most
// recent error and its times those of its errors, whether the errors were
// committed in one batch or one at a time, out of time order or before
// 1970 alike.
func TestDamagedFilesAnyBatching(t *testing.T) {
	epoch := time.Unix(0, 0)
	evs := []event.Event{
		inodeEvent("a", base.Add(20*time.Minute), fs1, "EIO", 1, 30, 1, ""),
		inodeEvent("b", base.Add(10*time.Minute), fs1, "EUCLEAN", 1, 30, 1, ""),
		inodeEvent("c", epoch.Add(-20*time.Minute), fs2, "EIO", 1, 31, 1, ""),
		inodeEvent("d", epoch.Add(-30*time.Minute), fs2, "EUCLEAN", 1, 31, 1, ""),
		// At the same time: the later one.
		inodeEvent("e", base, fs3, "EIO", 1, 32, 1, ""),
		inodeEvent("f", base, fs3, "EUCLEAN", 1, 32, 1, ""),
	}
	one := openTemp(t)
	commit(t, one, &Batch{Events: evs})
	each := openTemp(t)
	for _, e := range evs {
		commit(t, each, &Batch{Events: []event.Event{e}})
	}
	for name, s := range map[string]*Store{"one batch": one, "a batch each": each} {
		files, err := s.DamagedFiles(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Fatalf("%s: damaged files %+v, want 3", name, files)
		}
		for _, f := range files {
			i := int(f.Inode) - 30 // the events about inode 30 + i are 2i and 2i+1
			newer, older, errno := evs[2*i], evs[2*i+1], "EIO"
			if f.Inode == 32 {
				errno = "EUCLEAN"
			}
			if f.Errno != errno || !f.Last.Equal(newer.Time.Time) || !f.First.Equal(older.Time.Time) {
				t.Errorf("%s: inode %d: errno %s, first %v, last %v; want %s, %v, %v", name, f.Inode, f.Errno, f.First, f.Last,
					errno, older.Time.Time, newer.Time.Time)
			}
		}
	}
}

// TestOpenMissingSummaryTable: a database whose damaged-file table is gone
// (edited by hand, or damaged) fails to open with an error naming it, the
// statements prepared until then closed.
func TestOpenMissingSummaryTable(t *testing.T) {
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`DROP TABLE damaged_files`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "preparing statements") || !strings.Contains(err.Error(), "damaged_files") {
		t.Errorf("Open without the damaged_files table: %v", err)
	}
}
