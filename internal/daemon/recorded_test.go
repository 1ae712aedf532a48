package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

// TestReportedCounts: what the daemon records as reported of ext4's
// errors_count grows by the error count of every ext4 error event, a lost
// report from the kernel log included, and by nothing else.
func TestReportedCounts(t *testing.T) {
	h, err := openHistory(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Store().SetExt4Reported(context.Background(), "u1", 4); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{store: h}
	evs := []event.Event{
		{Kind: event.KindError, Source: event.SourceFanotify, UUID: "u1", FSType: "ext4", ErrorCount: 2, Ext4: &ext4.State{}},
		{Kind: event.KindError, Source: event.SourceKmsg, UUID: "u1", FSType: "ext4", ErrorCount: 1, LostReport: true},
		{Kind: event.KindError, Source: event.SourceKmsg, UUID: "u1", FSType: "ext4", ErrorCount: 5}, // a write-back warning: not counted by ext4
		{Kind: event.KindError, Source: event.SourceKmsg, UUID: "u2", FSType: "xfs", ErrorCount: 1, LostReport: true},
		{Kind: event.KindOverflow, Source: event.SourceFanotify},
	}
	got := d.reportedCounts(evs)
	if len(got) != 1 || got["u1"] != 7 {
		t.Errorf("reportedCounts = %v, want u1: 4+2+1", got)
	}
}
