package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// actionRunner runs the recovery actions policy decided on, as recorded in
// the store, and records each outcome. The actions of one file system run
// one after the other, in the order they were decided; those of different
// file systems run at the same time, so that a long scrub of one does not
// hold up the remount of another. Actions found pending at start (the
// daemon stopped before running them) run then; one found started but
// unfinished was interrupted and is recorded as such, not rerun.
type actionRunner struct {
	store   *history
	log     *slog.Logger
	metrics *metrics.Metrics
	runner  func() *actions.Runner
	// targets describes a file system for an action by its key.
	target func(fsKey string) (actions.Target, bool)
	wake   chan struct{}
	// release, if set, is called before an action runs; the function it
	// returns after. The daemon lets go of its database for a remount-ro
	// of the state directory's file system.
	release func(name string, t actions.Target) func()
	// progress publishes how far the running actions have got; nil
	// publishes nothing.
	progress *ProgressBoard

	// busy holds the file systems whose actions are running.
	mu   sync.Mutex
	busy map[string]bool
	wg   sync.WaitGroup
}

// Wake asks the runner to look for pending actions now.
func (r *actionRunner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *actionRunner) run(ctx context.Context) {
	defer r.wg.Wait()
	r.runPending(ctx, true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			r.runPending(ctx, false)
		}
	}
}

// runPending starts the pending actions of every file system that has none
// running. At start, a pending action that was started was interrupted.
func (r *actionRunner) runPending(ctx context.Context, atStart bool) {
	pending, err := r.store.PendingActions(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("reading pending actions", "err", err)
		}
		return
	}
	byFS := map[string][]store.Action{}
	var order []string
	for _, a := range pending {
		if _, ok := byFS[a.FSKey]; !ok {
			order = append(order, a.FSKey)
		}
		byFS[a.FSKey] = append(byFS[a.FSKey], a)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.busy == nil {
		r.busy = map[string]bool{}
	}
	for _, key := range order {
		if r.busy[key] {
			continue // its runner picks the new ones up when it is done
		}
		r.busy[key] = true
		r.wg.Add(1)
		go func(as []store.Action) {
			defer r.wg.Done()
			for _, a := range as {
				if ctx.Err() != nil {
					break
				}
				r.runOne(ctx, a, atStart)
			}
			r.mu.Lock()
			delete(r.busy, key)
			r.mu.Unlock()
			r.Wake() // actions decided meanwhile
		}(byFS[key])
	}
}

// runOne runs one pending action and records its outcome.
func (r *actionRunner) runOne(ctx context.Context, a store.Action, atStart bool) {
	if !a.Started.IsZero() {
		if atStart {
			now := time.Now()
			r.finish(ctx, a, store.StateFailed, "interrupted: fshealth stopped while this action ran; not run again", "", a.Started, now)
		}
		return
	}
	t, ok := r.target(a.FSKey)
	if !ok {
		now := time.Now()
		r.finish(ctx, a, store.StateFailed, "not run: the file system is no longer mounted", "", now, now)
		return
	}
	t.EventID = a.EventID
	started := time.Now()
	if err := r.store.StartAction(ctx, a.ID, started); err != nil {
		r.log.Error("recording an action", "action", a.Name, "err", err)
		return
	}
	runner := *r.runner()
	runner.DryRun = runner.DryRun || a.DryRun
	if r.progress != nil {
		runner.Progress = func(p actions.Progress) { r.progress.Set(a.ID, p) }
		defer r.progress.Clear(a.ID)
	}
	// Long actions (scrub, fsck on LVM) say when they start; status shows
	// them running, since when, and how far they have got where they tell.
	r.log.Info("starting recovery action", "action", a.Name, "device", t.Device, "mountpoints", t.Mountpoints,
		"dry_run", runner.DryRun, "event", a.EventID)
	done := func() {}
	if r.release != nil && !runner.DryRun {
		done = r.release(a.Name, t)
	}
	res := runner.Run(ctx, actions.Spec{Name: a.Name, Argv: a.Argv, Timeout: a.Timeout}, t)
	done()
	state, result := store.StateDone, "ok"
	switch {
	case res.DryRun:
		result = "dry_run"
	case !res.OK:
		state, result = store.StateFailed, "failed"
	}
	// The runner logged the outcome ("recovery action"), once.
	r.metrics.Action(a.Name, result)
	r.finish(ctx, a, state, res.Outcome, res.Output, res.Started, res.Finished)
}

func (r *actionRunner) finish(ctx context.Context, a store.Action, state, outcome, output string, started, finished time.Time) {
	// An action cut short by the daemon stopping is recorded too.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.store.FinishAction(ctx, a.ID, state, outcome, output, started, finished); err != nil {
		r.log.Error("recording an action", "action", a.Name, "err", err)
	}
}
