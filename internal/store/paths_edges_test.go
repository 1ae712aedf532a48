package store

import (
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// TestAttachPathLabelsSummary: the path AttachPath finds labels the
// inode's group in the error summary itself, so the report still names it
// once the file is no longer among the damaged files (its file system was
// marked healthy).
func TestAttachPathLabelsSummary(t *testing.T) {
	s := openTemp(t)
	e := inodeEvent("p", base, fs1, "EUCLEAN", 1, 40, 3, msgLookup)
	e.PathPending = true
	commit(t, s, &Batch{Events: []event.Event{e}})
	if _, err := s.AttachPath(ctx, fs1.UUID, 40, 3, "/data/found", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkHealthy(ctx, fs1.UUID, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if files, err := s.DamagedFiles(ctx, ""); err != nil || len(files) != 0 {
		t.Fatalf("damaged files after marking healthy: %+v %v, want none", files, err)
	}
	r, err := s.Report(ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, g := range r.Groups {
		if g.Dim == DimFile && g.Value == "40" {
			found = true
			if g.Label != "/data/found" {
				t.Errorf("the report's group of inode 40 has label %q, want the path found", g.Label)
			}
		}
	}
	if !found {
		t.Errorf("no group of inode 40 in %+v", r.Groups)
	}
}
