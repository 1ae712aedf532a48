package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

var pruneBase = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// openPruneStore opens a new database, closed with the test.
func openPruneStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(store.PathIn(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addEvents commits n error events on one file system, one millisecond
// apart from at, each with msg, and a delivered outbox row per batch of
// 500 when deliveries is set.
func addEvents(t *testing.T, s *store.Store, prefix string, n int, at time.Time, msg string, deliveries bool) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += 500 {
		b := &store.Batch{}
		for j := i; j < min(i+500, n); j++ {
			b.Events = append(b.Events, event.Event{
				ID: fmt.Sprintf("%s-%d", prefix, j), Kind: event.KindError, Time: event.Time{Time: at.Add(time.Duration(j) * time.Millisecond)},
				Source: event.SourceFanotify, Errno: 5, Error: "EIO", ErrorCount: 1,
				Device: "/dev/sdp1", FSType: "ext4", UUID: "0e9d6a1c-prune-test", Mountpoints: []string{"/p"}, Message: msg,
			})
		}
		if deliveries {
			b.Deliveries = []store.Delivery{{Channel: "w", Alert: alert.Alert{ID: fmt.Sprintf("%s-a%d", prefix, i)}, Created: at}}
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if deliveries {
			if err := s.MarkDelivered(ctx, b.Deliveries[0].ID, at); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPrunePastFirstChunk: Prune deletes in chunks of 2,000 rows and goes
// on until every old row is gone — 4,001 old events are three chunks, the
// last one partial — and keeps every newer row.
func TestPrunePastFirstChunk(t *testing.T) {
	s := openPruneStore(t)
	ctx := context.Background()
	const old, kept = 4001, 7
	addEvents(t, s, "old", old, pruneBase, "", false)
	addEvents(t, s, "new", kept, pruneBase.Add(time.Hour), "", false)
	st, err := s.Prune(ctx, pruneBase.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != old {
		t.Errorf("pruned %d events, want %d", st.Events, old)
	}
	if n, err := s.CountEvents(ctx); err != nil || n != kept {
		t.Errorf("%d events left (%v), want %d", n, err, kept)
	}
	// Exactly one chunk's worth: one full chunk, then an empty one.
	addEvents(t, s, "again", 2000, pruneBase.Add(2*time.Hour), "", false)
	st, err = s.Prune(ctx, pruneBase.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 2000+kept {
		t.Errorf("pruned %d events, want %d", st.Events, 2000+kept)
	}
	if n, _ := s.CountEvents(ctx); n != 0 {
		t.Errorf("%d events left, want 0", n)
	}
}

// TestReclaimStartsOnlyWhenMuchIsFree: pruning a small part of a database
// leaves its free pages in the file (FreedPages 0, the size unchanged);
// pruning most of it — more than a quarter of the pages free — gives them
// back to the file system.
func TestReclaimStartsOnlyWhenMuchIsFree(t *testing.T) {
	s := openPruneStore(t)
	ctx := context.Background()
	msg := strings.Repeat("m", 400)
	addEvents(t, s, "a", 200, pruneBase, msg, false)
	addEvents(t, s, "b", 3000, pruneBase.Add(time.Hour), msg, true)
	small, err := s.Prune(ctx, pruneBase.Add(30*time.Minute)) // 200 of 3,200 events: a few pages
	if err != nil {
		t.Fatal(err)
	}
	if small.Events != 200 {
		t.Fatalf("pruned %d events, want 200", small.Events)
	}
	if small.FreedPages != 0 {
		t.Errorf("pruning 1/16 of the events gave back %d pages: reclaim should wait until a quarter is free", small.FreedPages)
	}
	big, err := s.Prune(ctx, pruneBase.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if big.Events != 3000 || big.Deliveries != 6 {
		t.Fatalf("pruned %+v, want 3000 events and 6 deliveries", big)
	}
	if big.FreedPages == 0 || big.Size >= small.Size {
		t.Errorf("pruning everything: freed %d pages, size %d bytes after (was %d): the space was not given back", big.FreedPages, big.Size, small.Size)
	}
}

// TestReclaimStartsWhenFreeSpaceIsLarge: in a large database, more than
// 4 MiB free starts the reclaim even though it is less than a quarter of
// the file.
func TestReclaimStartsWhenFreeSpaceIsLarge(t *testing.T) {
	s := openPruneStore(t)
	ctx := context.Background()
	msg := strings.Repeat("l", 3000)
	addEvents(t, s, "early", 1200, pruneBase, msg, false) // about 5 MiB
	addEvents(t, s, "late", 6000, pruneBase.Add(time.Hour), msg, false)
	st, err := s.Prune(ctx, pruneBase.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 1200 {
		t.Fatalf("pruned %d events, want 1200", st.Events)
	}
	// SQLite's default page size, which the store keeps.
	const pageSize = 4096
	left := st.Size / pageSize
	t.Logf("freed %d pages, %d left", st.FreedPages, left)
	if st.FreedPages == 0 {
		t.Fatalf("%d pages left, a sixth pruned, over 4 MiB free: nothing given back", left)
	}
	if st.FreedPages*4 >= st.FreedPages+left || st.FreedPages*pageSize <= 4<<20 {
		t.Errorf("freed %d pages of %d: the test wants more than 4 MiB but less than a quarter", st.FreedPages, st.FreedPages+left)
	}
}
