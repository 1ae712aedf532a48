package store

import (
	"database/sql"
	"reflect"
	"testing"
)

// TestSummaryAfterDurable: Commit calls Batch.Durable once the events are
// committed, before their error summary is written; once Commit returns,
// the summary has them and its watermark is the last event.
func TestSummaryAfterDurable(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := history()
	commit(t, s, &Batch{Events: evs[:1]})
	ro, err := OpenReadOnly(PathIn(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var inDurable, summarisedThen int64
	called := false
	b := &Batch{Events: evs[1:], Durable: func() {
		called = true
		// Another connection sees the events, not yet their summary.
		n, err := ro.CountEvents(ctx)
		if err != nil {
			t.Error(err)
		}
		inDurable = n
		if err := ro.db.QueryRow(`SELECT seq FROM summarised`).Scan(&summarisedThen); err != nil {
			t.Error(err)
		}
	}}
	commit(t, s, b)
	if !called {
		t.Fatal("Durable was not called")
	}
	if inDurable != int64(len(evs)) || summarisedThen != 1 {
		t.Errorf("in Durable: %d events (want %d), summarised up to %d (want 1)", inDurable, len(evs), summarisedThen)
	}
	var w, last int64
	if err := ro.db.QueryRow(`SELECT (SELECT seq FROM summarised), (SELECT max(seq) FROM events)`).Scan(&w, &last); err != nil {
		t.Fatal(err)
	}
	if w != last {
		t.Errorf("after Commit: summarised up to %d, last event %d", w, last)
	}
	if _, err := s.Report(ctx, ReportQuery{}); err != nil {
		t.Fatal(err)
	}
}

// TestSummaryLostInCrash: the summary transaction lost in a crash (events
// committed, their summary and the watermark not) is written again from
// the events when the database is next opened.
func TestSummaryLostInCrash(t *testing.T) {
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	evs := history()
	commit(t, s, &Batch{Events: evs[:3]})
	var w int64
	if err := s.db.QueryRow(`SELECT seq FROM summarised`).Scan(&w); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Events: evs[3:]})
	want, err := s.Report(ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles, err := s.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Groups) == 0 || len(wantFiles) == 0 {
		t.Fatalf("the test history has no groups (%d) or no damaged files (%d)", len(want.Groups), len(wantFiles))
	}
	// As a crash before the second batch's summary transaction leaves
	// it: the first batch's summary only.
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM error_groups`, `DELETE FROM error_rate`, `DELETE FROM damaged_files`, `UPDATE summarised SET seq = 0`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := summariseStoredForTest(s, w); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Report(ctx, ReportQuery{}); reflect.DeepEqual(r, want) {
		t.Fatal("the simulated crash left the whole summary")
	}
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Report(ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	gotFiles, err := s.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(gotFiles, wantFiles) {
		t.Errorf("after reopening:\n%+v\n%+v\nwant\n%+v\n%+v", got, gotFiles, want, wantFiles)
	}
}

// summariseStoredForTest summarises the events up to seq w and sets the
// watermark there, as the summary transactions up to that event did.
func summariseStoredForTest(s *Store, w int64) error {
	return s.write(ctx, "test", func(tx *sql.Tx) error {
		if err := summariseStored(ctx, tx, summaryAll, `SELECT fs_key, json FROM events WHERE seq <= ? AND kind = 'error' ORDER BY seq`, w); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE summarised SET seq = ?`, w)
		return err
	})
}
