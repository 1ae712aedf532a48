package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/store"
)

// handleRequests carries out the requests `fshealth resolve` recorded in
// the history database. The command sends SIGUSR1 after recording one; the
// daemon also looks at start, for requests made while it was stopped.
func (d *Daemon) handleRequests(ctx context.Context) {
	reqs, err := d.store.PendingRequests(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("reading requests", "err", err)
		}
		return
	}
	for _, r := range reqs {
		outcome := d.carryOut(ctx, r)
		if err := d.store.FinishRequest(ctx, r.ID, outcome, time.Now()); err != nil && ctx.Err() == nil {
			d.log.Error("recording a request's outcome", "request", r.ID, "err", err)
		}
	}
}

// carryOut carries out one request and says what it did.
func (d *Daemon) carryOut(ctx context.Context, r store.Request) string {
	if r.Kind != store.RequestResolve {
		return fmt.Sprintf("not done: unknown request %q", r.Kind)
	}
	now := time.Now()
	if err := d.store.MarkHealthy(ctx, r.FSKey, now); err != nil {
		return "not done: " + err.Error()
	}
	open := 0
	d.mu.Lock()
	for _, in := range d.engine.Incidents() {
		if in.FSKey == r.FSKey && in.Resolved.IsZero() {
			open++
		}
	}
	d.mu.Unlock()
	d.resolve(ctx, r.FSKey, now, nil)
	if rows, err := d.store.Filesystems(ctx); err == nil {
		for _, f := range rows {
			if f.Key == r.FSKey && f.Watched {
				d.metrics.SetHealth(statusFS(&f), true, time.Time{})
			}
		}
	}
	d.log.Info("file system marked healthy on request (fshealth resolve)", "fs", r.FSKey, "incidents_resolved", open, "note", r.Note)
	return fmt.Sprintf("marked healthy; %d open incident(s) resolved", open)
}
