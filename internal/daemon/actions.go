package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// actionRunner runs the recovery actions policy decided on, as recorded in
// the store, one at a time, and records each outcome. Actions found pending
// at start (the daemon stopped before running them) run then; one found
// started but unfinished was interrupted and is recorded as such, not rerun.
type actionRunner struct {
	store   *store.Store
	log     *slog.Logger
	metrics *metrics.Metrics
	runner  func() *actions.Runner
	// targets describes a file system for an action by its key.
	target func(fsKey string) (actions.Target, bool)
	wake   chan struct{}
}

// Wake asks the runner to look for pending actions now.
func (r *actionRunner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *actionRunner) run(ctx context.Context) {
	r.runPending(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			r.runPending(ctx)
		}
	}
}

func (r *actionRunner) runPending(ctx context.Context) {
	pending, err := r.store.PendingActions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("reading pending actions", "err", err)
		}
		return
	}
	for _, a := range pending {
		if ctx.Err() != nil {
			return
		}
		if !a.Started.IsZero() {
			now := time.Now()
			r.finish(ctx, a, store.StateFailed, "interrupted: fshealth stopped while this action ran; not run again", "", a.Started, now)
			continue
		}
		t, ok := r.target(a.FSKey)
		if !ok {
			now := time.Now()
			r.finish(ctx, a, store.StateFailed, "not run: the file system is no longer mounted", "", now, now)
			continue
		}
		t.EventID = a.EventID
		started := time.Now()
		if err := r.store.StartAction(ctx, a.ID, started); err != nil {
			r.log.Error("recording an action", "action", a.Name, "err", err)
			continue
		}
		runner := *r.runner()
		runner.DryRun = runner.DryRun || a.DryRun
		res := runner.Run(ctx, actions.Spec{Name: a.Name, Argv: a.Argv, Timeout: a.Timeout}, t)
		state, result := store.StateDone, "ok"
		switch {
		case res.DryRun:
			result = "dry_run"
		case !res.OK:
			state, result = store.StateFailed, "failed"
		}
		r.metrics.Action(a.Name, result)
		level := slog.LevelInfo
		if !res.OK && !res.DryRun {
			level = slog.LevelError
		}
		r.log.Log(ctx, level, "recovery action", "action", a.Name, "device", t.Device, "result", result,
			"outcome", res.Outcome, "event", a.EventID)
		r.finish(ctx, a, state, res.Outcome, res.Output, res.Started, res.Finished)
	}
}

func (r *actionRunner) finish(ctx context.Context, a store.Action, state, outcome, output string, started, finished time.Time) {
	if err := r.store.FinishAction(ctx, a.ID, state, outcome, output, started, finished); err != nil && ctx.Err() == nil {
		r.log.Error("recording an action", "action", a.Name, "err", err)
	}
}
