package daemon

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// TestIntegrityCheckAfterOpen: a database damaged inside (one page of an
// index the daemon does not read when it opens the database) opens, and the
// integrity check the daemon runs once ready finds it: the history degrades,
// and the retry moves the database aside and starts a new one holding the
// events of the damaged one and those recorded meanwhile.
func TestIntegrityCheckAfterOpen(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := openHistory(dir, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ev := func(id string) event.Event {
		return event.Event{ID: id, Time: event.Time{Time: now}, Kind: event.KindError, Source: event.SourceFanotify, UUID: "u1",
			FSType: "ext4", Device: "/dev/x", Errno: 117, Error: "EUCLEAN", ErrorCount: 1}
	}
	for i := range 50 {
		if err := h.Commit(ctx, &store.Batch{Events: []event.Event{ev(fmt.Sprint("e", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	// An intact database passes.
	h.checkIntegrity(ctx)
	if g := h.Degraded(); g != nil {
		t.Fatalf("degraded after checking an intact database: %+v", g)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	// Garbage over the root page of outbox_created.
	path := store.PathIn(dir)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	err = db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = 'outbox_created'`).Scan(&root)
	if err == nil {
		err = db.QueryRow(`PRAGMA page_size`).Scan(&pageSize)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte(strings.Repeat("\xab", int(pageSize))), (root-1)*pageSize)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	damaged, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	h, err = openHistory(dir, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if g := h.Degraded(); g != nil || h.MovedAside() != "" {
		t.Fatalf("the damage was found when the database was opened (%+v, moved to %q): the test damages the wrong page", g, h.MovedAside())
	}
	h.checkIntegrity(ctx)
	g := h.Degraded()
	if g == nil || g.Cause != "database corrupt" {
		t.Fatalf("after the check: degraded %+v, want a corrupt database", g)
	}
	if err := h.Commit(ctx, &store.Batch{Events: []event.Event{ev("meanwhile")}}); err != nil {
		t.Fatal(err)
	}
	if !h.recover(ctx) || h.Degraded() != nil {
		t.Fatalf("not recovered: %+v", h.Degraded())
	}
	// The database moved aside is the damaged one (which the daemon
	// wrote to before it found the damage).
	aside := h.MovedAside()
	if b, err := os.ReadFile(aside); err != nil || len(b) < len(damaged) || string(b[(root-1)*pageSize:root*pageSize]) != string(damaged[(root-1)*pageSize:root*pageSize]) {
		t.Errorf("moved aside to %q, which does not hold the damaged page (%v)", aside, err)
	}
	evs, err := h.Store().Events(ctx, store.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 51 || evs[len(evs)-1].ID != "meanwhile" {
		t.Errorf("the new history has %d events, want the 50 of the damaged one and the one recorded meanwhile", len(evs))
	}
	if err := h.Store().QuickCheck(ctx); err != nil {
		t.Errorf("the new database: %v", err)
	}
}

// TestReleaseStopsIntegrityCheck: a remount-ro of the state directory's
// file system lets go of the database (release) while the integrity check
// the daemon runs once ready may still be reading it. Closing a
// database/sql pool does not end a query in progress, whose connection
// keeps the database files open; the remount then failed with EBUSY (seen
// in the e2e test under load, the check running right after start).
// release now stops the check and waits for it: once it returns, nothing
// in the state directory is open.
func TestReleaseStopsIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	var logBuf syncBuffer
	h, err := openHistory(dir, slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// A history big enough that its check takes a while.
	now := time.Now()
	msg := strings.Repeat("a kernel message long enough to fill pages ", 20)
	for b := range 20 {
		var batch store.Batch
		for i := range 2000 {
			batch.Events = append(batch.Events, event.Event{ID: fmt.Sprintf("e%d-%d", b, i), Time: event.Time{Time: now}, Kind: event.KindError,
				Source: event.SourceFanotify, UUID: fmt.Sprint("u", i%50), FSType: "ext4", Device: "/dev/x", Errno: 117, Error: "EUCLEAN",
				ErrorCount: 1, KernelMessage: msg})
		}
		if err := h.Commit(ctx, &batch); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := h.Store().QuickCheck(ctx); err != nil {
		t.Fatal(err)
	}
	full := time.Since(start)
	t.Logf("a whole check takes %v", full)

	done := make(chan struct{})
	go func() { defer close(done); h.checkIntegrity(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.use.RLock()
		running := h.check != nil
		h.use.RUnlock()
		if running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the integrity check did not start")
		}
		time.Sleep(time.Millisecond)
	}
	// Let the check get into its query (a tenth of its run), then let go.
	time.Sleep(full / 10)
	h.release("test: remount-ro")
	if open := openIn(t, dir); len(open) > 0 {
		t.Errorf("after release, the daemon still has open: %v", open)
	}
	<-done
	if log := logBuf.String(); !strings.Contains(log, "integrity check of the history database stopped") {
		t.Errorf("the check was not stopped by the release (its database too small to test with?):\n%s", log)
	}
	h.unhold()
}

// openIn lists the files in dir (or below it) this process has open.
func openIn(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open = append(open, target)
		}
	}
	return open
}
