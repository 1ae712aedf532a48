package store

import (
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// TestCarryEvents: the events of a database that is no longer the one at
// the state directory's path reach, through memory, the database there
// exactly once — also those it already had.
func TestCarryEvents(t *testing.T) {
	stale, fresh := openTemp(t), openTemp(t)
	commit(t, stale, &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EUCLEAN", 1)}})
	commit(t, fresh, &Batch{Events: []event.Event{errEvent("e1", base, fs1, "EUCLEAN", 1)}})
	commit(t, stale, &Batch{Events: []event.Event{errEvent("e2", base.Add(time.Second), fs2, "EIO", 1),
		errEvent("e3", base.Add(2*time.Second), fs1, "EUCLEAN", 1)}})

	mem := openMem(t, time.Now().UnixMicro())
	if err := stale.SeedMemory(ctx, mem); err != nil {
		t.Fatal(err)
	}
	// The limit keeps the latest.
	if n, err := stale.CarryEvents(ctx, mem, 2); err != nil || n != 2 {
		t.Fatalf("carried %d events, %v; want 2", n, err)
	}
	commit(t, mem, &Batch{Events: []event.Event{errEvent("e4", base.Add(3*time.Second), fs2, "EIO", 1)}})
	st, err := fresh.MergeInto(ctx, mem)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 3 {
		t.Errorf("merged %d events, want 3 (e2, e3, e4)", st.Events)
	}
	evs, err := fresh.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	if got := strings.Join(ids, ","); got != "e1,e2,e3,e4" {
		t.Errorf("history %s, want e1,e2,e3,e4 once each, in order", got)
	}
}
