package store

import (
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

// TestStartActionChecksTheAction: StartAction on an action that does not
// exist, or that is already finished, fails and says which; the start time
// of a finished action is not changed.
func TestStartActionChecksTheAction(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "scrub"}}}
	commit(t, s, b)
	id := b.Actions[0].ID
	if err := s.StartAction(ctx, id+1, base); !errors.Is(err, ErrNotFound) {
		t.Errorf("starting an unknown action: %v, want ErrNotFound", err)
	}
	if err := s.FinishAction(ctx, id, StateDone, "ok", "", base, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.StartAction(ctx, id, base.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "already done") {
		t.Errorf("starting a finished action: %v, want \"already done\"", err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("Actions: %+v, %v", all, err)
	}
	if !all[0].Started.Equal(base) {
		t.Errorf("the finished action's start is %v, want %v", all[0].Started, base)
	}
}

// TestOutputOfExactlyMaxOutputIsKept: output of MaxOutput bytes is kept
// whole; one byte more is cut and marked.
func TestOutputOfExactlyMaxOutputIsKept(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{
		{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "a"},
		{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "b"},
	}}
	commit(t, s, b)
	fit := strings.Repeat("o", MaxOutput)
	if err := s.FinishAction(ctx, b.Actions[0].ID, StateDone, "", fit, base, base); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishAction(ctx, b.Actions[1].ID, StateDone, "", fit+"x", base, base); err != nil {
		t.Fatal(err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("Actions: %d, %v", len(all), err)
	}
	if all[0].Output != fit {
		t.Errorf("output of exactly %d bytes stored as %d bytes ending %q", MaxOutput, len(all[0].Output), all[0].Output[len(all[0].Output)-20:])
	}
	if o := all[1].Output; len(o) != MaxOutput || !strings.HasSuffix(o, "\n[output truncated]") {
		t.Errorf("output of %d bytes stored as %d bytes ending %q", MaxOutput+1, len(o), o[len(o)-20:])
	}
}

// TestOutputThatIsNotTextIsCut: output longer than MaxOutput made only of
// UTF-8 continuation bytes (a command writing binary data) has no rune
// boundary to cut at: what is kept is the mark alone, not a panic.
func TestOutputThatIsNotTextIsCut(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{{IncidentKey: fs1.UUID + "/EIO", EventID: "e", Name: "a"}}}
	commit(t, s, b)
	if err := s.FinishAction(ctx, b.Actions[0].ID, StateFailed, "", strings.Repeat("\x80", MaxOutput+1), base, base); err != nil {
		t.Fatal(err)
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 1 {
		t.Fatalf("Actions: %d, %v", len(all), err)
	}
	if o := all[0].Output; o != "\n[output truncated]" {
		t.Errorf("output stored as %d bytes starting %q, want the mark alone", len(o), o[:min(len(o), 20)])
	}
}

// pragma reads one integer PRAGMA of s's database.
func pragma(t *testing.T, s *Store, name string) int64 {
	t.Helper()
	var v int64
	if err := s.db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// bulkEvents commits n error events on fs1 with a message of msgLen bytes,
// one millisecond apart from at.
func bulkEvents(t *testing.T, s *Store, prefix string, n int, at time.Time, msgLen int) {
	t.Helper()
	msg := strings.Repeat("v", msgLen)
	for i := 0; i < n; i += 500 {
		b := &Batch{}
		for j := i; j < min(i+500, n); j++ {
			e := errEvent(fmt.Sprintf("%s-%d", prefix, j), at.Add(time.Duration(j)*time.Millisecond), fs1, "EIO", 1)
			e.Message = msg
			b.Events = append(b.Events, e)
		}
		commit(t, s, b)
	}
}

// TestReclaimGivesBackEveryFreePage: freeing more pages than one
// incremental_vacuum step returns (2,048) is given back whole, step after
// step: no free page is left, FreedPages counts them all, and Size is the
// database's size afterwards.
func TestReclaimGivesBackEveryFreePage(t *testing.T) {
	s := openTemp(t)
	bulkEvents(t, s, "old", 3000, base, 3000) // about 9 MiB
	bulkEvents(t, s, "new", 10, base.Add(time.Hour), 10)
	st, err := s.Prune(ctx, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 3000 {
		t.Fatalf("pruned %d events, want 3000", st.Events)
	}
	if st.FreedPages <= vacuumChunk {
		t.Fatalf("freed %d pages: the test wants more than one step of %d", st.FreedPages, vacuumChunk)
	}
	if free := pragma(t, s, "freelist_count"); free != 0 {
		t.Errorf("%d free pages left after freeing %d", free, st.FreedPages)
	}
	if size := pragma(t, s, "page_count") * pragma(t, s, "page_size"); st.Size != size {
		t.Errorf("Size %d, want %d (page_count * page_size)", st.Size, size)
	}
}

// TestPruneWithoutAutoVacuum: a database without auto_vacuum (made by
// another program, or turned off and vacuumed by hand: auto_vacuum only
// applies to a new database) cannot give pages back; Prune still deletes,
// returns, and reports no page freed.
func TestPruneWithoutAutoVacuum(t *testing.T) {
	p := PathIn(t.TempDir())
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA auto_vacuum = NONE", "VACUUM"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err = Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if v := pragma(t, s, "auto_vacuum"); v != 0 {
		t.Fatalf("auto_vacuum %d: the test wants a database without it", v)
	}
	bulkEvents(t, s, "old", 1000, base, 3000)
	st, err := s.Prune(ctx, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 1000 || st.FreedPages != 0 {
		t.Errorf("pruned %d events, freed %d pages; want 1000 and 0", st.Events, st.FreedPages)
	}
	if free := pragma(t, s, "freelist_count"); free*4 <= pragma(t, s, "page_count") {
		t.Errorf("only %d free pages: the test wants reclaim to be tried", free)
	}
}

// TestReclaimThresholds: reclaim starts when more than a quarter of the
// pages, or more than 4 MiB, are free — not at exactly a quarter or
// exactly 4 MiB. Events are deleted one by one (each of about a page)
// until the free pages are exactly at a threshold, then vacuum must give
// nothing back; one page more and it gives them all back.
func TestReclaimThresholds(t *testing.T) {
	for _, c := range []struct {
		name   string
		events int
		// at is the number of free pages at the threshold, from the
		// page count.
		at func(pages int64) int64
	}{
		{"a quarter", 600, func(pages int64) int64 { return pages / 4 }},
		{"4 MiB", 4400, func(int64) int64 { return (4 << 20) / 4096 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openTemp(t)
			bulkEvents(t, s, "e", c.events, base, 3000)
			if ps := pragma(t, s, "page_size"); ps != 4096 {
				t.Fatalf("page size %d", ps)
			}
			// Make the page count a multiple of 4, so that a quarter
			// is a whole number of pages.
			for i := 0; pragma(t, s, "page_count")%4 != 0; i++ {
				bulkEvents(t, s, fmt.Sprintf("pad%d-", i), 1, base.Add(time.Hour), 100)
			}
			pages := pragma(t, s, "page_count")
			at := c.at(pages)
			if c.name == "4 MiB" && at*4 > pages {
				t.Fatalf("%d pages: 4 MiB free would be more than a quarter", pages)
			}
			var seqs []int64
			rows, err := s.db.QueryContext(ctx, `SELECT seq FROM events ORDER BY seq`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var q int64
				if err := rows.Scan(&q); err != nil {
					t.Fatal(err)
				}
				seqs = append(seqs, q)
			}
			rows.Close()
			// Most in one go (about a page each), the rest one by one.
			bulk := seqs[at*3/4]
			if _, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE seq < ?`, bulk); err != nil {
				t.Fatal(err)
			}
			for _, q := range seqs[at*3/4:] {
				if pragma(t, s, "freelist_count") >= at {
					break
				}
				if _, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE seq = ?`, q); err != nil {
					t.Fatal(err)
				}
			}
			free := pragma(t, s, "freelist_count")
			if free != at || pragma(t, s, "page_count") != pages {
				t.Fatalf("%d of %d pages free, want exactly %d of %d: the test cannot reach the threshold", free, pragma(t, s, "page_count"), at, pages)
			}
			freed, _, err := s.vacuum(ctx)
			if err != nil || freed != 0 {
				t.Errorf("exactly %d of %d pages free: vacuum gave back %d (%v), want 0", free, pages, freed, err)
			}
			for pragma(t, s, "freelist_count") == at {
				if _, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)`); err != nil {
					t.Fatal(err)
				}
			}
			free = pragma(t, s, "freelist_count")
			freed, _, err = s.vacuum(ctx)
			if err != nil || freed != free {
				t.Errorf("%d of %d pages free: vacuum gave back %d (%v), want all", free, pages, freed, err)
			}
		})
	}
}

// TestPruneDropsOldSummaries: Prune deletes the error summaries (hourly,
// daily, 30-day) and error rates (hourly, daily) of the buckets that end
// before its time, of every span, and keeps those of later buckets.
func TestPruneDropsOldSummaries(t *testing.T) {
	s := openTemp(t)
	old := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	recent := old.Add(100 * 24 * time.Hour)
	bulkEvents(t, s, "old", 3, old, 10)
	bulkEvents(t, s, "recent", 3, recent, 10)
	// rows counts the rows of table of span hours before and from the
	// bucket that holds at.
	rows := func(table string, span int64, at time.Time) (before, from int64) {
		t.Helper()
		b := at.UnixNano() / (span * int64(time.Hour))
		for _, q := range []struct {
			cond string
			dst  *int64
		}{{"bucket < ?2", &before}, {"bucket >= ?2", &from}} {
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE span = ?1 AND `+q.cond, span, b).Scan(q.dst); err != nil {
				t.Fatal(err)
			}
		}
		return before, from
	}
	type sp struct {
		table string
		span  int64
	}
	spans := []sp{{"error_groups", 1}, {"error_groups", 24}, {"error_groups", 720}, {"error_rate", 1}, {"error_rate", 24}}
	for _, c := range spans {
		if b, f := rows(c.table, c.span, recent); b == 0 || f == 0 {
			t.Fatalf("%s span %d: %d rows before the recent events' bucket, %d from it: the test wants both", c.table, c.span, b, f)
		}
	}
	st, err := s.Prune(ctx, recent)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 3 {
		t.Errorf("pruned %d events, want 3", st.Events)
	}
	for _, c := range spans {
		if b, f := rows(c.table, c.span, recent); b != 0 || f == 0 {
			t.Errorf("%s span %d after pruning: %d rows before the recent events' bucket (want 0), %d from it", c.table, c.span, b, f)
		}
	}
}

// TestSetWatchedNames: SetWatched records every name of a file system (its
// UUID, device and mount points) that it has, and no empty one.
func TestSetWatchedNames(t *testing.T) {
	s := openTemp(t)
	if err := s.SetWatched(ctx, []alert.Filesystem{fs1, fs3}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, fs_key FROM fs_names ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n, k string
		if err := rows.Scan(&n, &k); err != nil {
			t.Fatal(err)
		}
		got = append(got, n+"="+k)
	}
	rows.Close()
	want := []string{"/data=" + fs1.UUID, "/dev/loop7=/dev/loop7", "/dev/sda1=" + fs1.UUID, "/mnt/scratch=/dev/loop7", "/srv/data=" + fs1.UUID, fs1.UUID + "=" + fs1.UUID}
	if !slices.Equal(got, want) {
		t.Errorf("fs_names:\n got %q\nwant %q", got, want)
	}
}

// TestBatchKeepsMountpoints: within one batch, a newer event that names no
// mount point leaves the file system's mount points as the older one gave
// them; the device and type follow the newest event that has them.
func TestBatchKeepsMountpoints(t *testing.T) {
	s := openTemp(t)
	first := errEvent("m1", base, fs1, "EIO", 1)
	second := errEvent("m2", base.Add(time.Second), fs1, "EIO", 1)
	second.Mountpoints = nil
	commit(t, s, &Batch{Events: []event.Event{first, second}})
	fss, err := s.Filesystems(ctx)
	if err != nil || len(fss) != 1 {
		t.Fatalf("Filesystems: %+v, %v", fss, err)
	}
	if !slices.Equal(fss[0].Mountpoints, fs1.Mountpoints) {
		t.Errorf("mount points %q, want %q", fss[0].Mountpoints, fs1.Mountpoints)
	}
}

// TestCommitKeepsActionFSKey: an action's FSKey is derived from its
// incident key only when it has none.
func TestCommitKeepsActionFSKey(t *testing.T) {
	s := openTemp(t)
	b := &Batch{Actions: []Action{
		{IncidentKey: "/dev/loop7/EUCLEAN", FSKey: fs1.UUID, EventID: "e", Name: "given"},
		{IncidentKey: "/dev/loop7/EUCLEAN", EventID: "e", Name: "derived"},
	}}
	commit(t, s, b)
	if b.Actions[0].FSKey != fs1.UUID || b.Actions[1].FSKey != "/dev/loop7" {
		t.Errorf("fs keys after commit: %q, %q; want %q, %q", b.Actions[0].FSKey, b.Actions[1].FSKey, fs1.UUID, "/dev/loop7")
	}
	all, err := s.Actions(ctx, 0)
	if err != nil || len(all) != 2 || all[0].FSKey != fs1.UUID || all[1].FSKey != "/dev/loop7" {
		t.Errorf("stored actions: %+v, %v", all, err)
	}
}

// TestDuplicateEventID: committing an event whose id is already stored
// fails, names the event and says the id may be a duplicate, and commits
// nothing of the batch.
func TestDuplicateEventID(t *testing.T) {
	s := openTemp(t)
	commit(t, s, &Batch{Events: []event.Event{errEvent("dup", base, fs1, "EIO", 1)}})
	err := s.Commit(ctx, &Batch{Events: []event.Event{errEvent("fresh", base, fs1, "EIO", 1), errEvent("dup", base, fs1, "EIO", 1)}})
	if err == nil || !strings.Contains(err.Error(), "event dup: ") || !strings.Contains(err.Error(), "(duplicate id?)") {
		t.Errorf("committing a duplicate id: %v", err)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != 1 {
		t.Errorf("%d events stored (%v), want 1", n, err)
	}
}
