package daemon

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// outbox delivers pending alerts from the store's outbox: at least once,
// retried with capped exponential backoff until delivered or too old. It
// sleeps on a timer set to the next due delivery, or until woken; it never
// polls.
type outbox struct {
	store   *history
	log     *slog.Logger
	metrics *metrics.Metrics
	// channels returns the configured notifiers by name (it changes on
	// reload).
	channels func() map[string]alert.Notifier
	backoff  func() (Backoff, time.Duration) // backoff and max age
	// sendTimeout bounds one delivery attempt of a channel that does not
	// say how long it may take (alert.AttemptBounder).
	sendTimeout time.Duration
	wake        chan struct{}
	now         func() time.Time

	// fresh are deliveries just committed and handed over (Hand), which
	// the next round sends without reading them back from the history
	// when idle: the last round left nothing pending and nothing was
	// committed since but what was handed over, so they are the oldest of
	// their channels. Guarded by mu.
	mu    sync.Mutex
	fresh []store.Delivery
	idle  bool
	// handing orders a commit and the hand-off of its deliveries against
	// deliverDue's read of the history: a round reads them back either
	// before they are committed or after they are handed over (and then
	// drops them from fresh), never in between, which would send them
	// twice.
	handing sync.Mutex
}

func newOutbox(s *history, log *slog.Logger, m *metrics.Metrics, channels func() map[string]alert.Notifier, backoff func() (Backoff, time.Duration)) *outbox {
	return &outbox{store: s, log: log, metrics: m, channels: channels, backoff: backoff,
		sendTimeout: 30 * time.Second, wake: make(chan struct{}, 1), now: time.Now}
}

// Wake asks the worker to look for due deliveries now.
func (o *outbox) Wake() {
	o.mu.Lock()
	o.idle = false
	o.mu.Unlock()
	o.poke()
}

// CommitAndHand runs commit and gives the worker the deliveries it
// committed (their IDs set, from ds) and wakes it: they are sent at once,
// without a read of the history, when nothing older is pending. commit
// calls hand once they are durable (store.Batch.Durable: before the error
// summary is written); if it returns nil without having called it, they
// are handed then. No round reads the history between the commit and the
// hand-off.
func (o *outbox) CommitAndHand(commit func(hand func()) error, ds func() []store.Delivery) error {
	o.handing.Lock()
	defer o.handing.Unlock()
	handed := false
	hand := func() {
		if !handed {
			handed = true
			o.Hand(ds())
		}
	}
	err := commit(hand)
	if err == nil {
		hand()
	}
	return err
}

// Hand gives the worker deliveries just committed; see CommitAndHand.
func (o *outbox) Hand(ds []store.Delivery) {
	o.mu.Lock()
	o.fresh = append(o.fresh, ds...)
	o.mu.Unlock()
	o.poke()
}

func (o *outbox) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run delivers until ctx is done.
func (o *outbox) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-o.wake:
		}
		if ds := o.takeFresh(); len(ds) > 0 {
			o.sendRound(ctx, ds)
		}
		o.deliverDue(ctx)
		o.updateBacklog(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		next, ok, err := o.store.NextDue(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			o.log.Error("reading the outbox", "err", err)
			timer.Reset(5 * time.Second)
		case ok:
			timer.Reset(max(time.Until(next), 0))
		}
		o.mu.Lock()
		o.idle = err == nil && !ok
		o.mu.Unlock()
		// With nothing pending the timer stays stopped: only Wake restarts.
	}
}

// deliverDue sends every due delivery, read from the history.
func (o *outbox) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		o.handing.Lock()
		due, err := o.store.DueDeliveries(ctx, o.now(), 256)
		if err == nil {
			o.forget(due)
		}
		o.handing.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				o.log.Error("reading due deliveries", "err", err)
			}
			return
		}
		if len(due) == 0 {
			return
		}
		o.sendRound(ctx, due)
		if len(due) < 256 {
			return
		}
	}
}

// takeFresh returns the deliveries handed over, to be sent now, if the
// outbox is idle; else they are left to deliverDue, which reads them back.
func (o *outbox) takeFresh() []store.Delivery {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.idle {
		return nil
	}
	ds := o.fresh
	o.fresh = nil
	return ds
}

// forget drops from the handed-over deliveries those read back from the
// history, which deliverDue sends.
func (o *outbox) forget(due []store.Delivery) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.fresh) == 0 {
		return
	}
	ids := make(map[int64]bool, len(due))
	for _, d := range due {
		ids[d.ID] = true
	}
	o.fresh = slices.DeleteFunc(o.fresh, func(d store.Delivery) bool { return ids[d.ID] })
}

// sendRound sends due, each channel in its own goroutine so that a slow
// receiver does not hold up the others, in order within a channel.
func (o *outbox) sendRound(ctx context.Context, due []store.Delivery) {
	byChannel := map[string][]store.Delivery{}
	for _, d := range due {
		byChannel[d.Channel] = append(byChannel[d.Channel], d)
	}
	channels := o.channels()
	var wg sync.WaitGroup
	for name, ds := range byChannel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, d := range ds {
				if ok, next := o.deliver(ctx, channels[name], d); !ok {
					// Keep order within a channel: once one fails,
					// the rest wait for its retry.
					o.deferRest(ctx, ds[i+1:], next)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// deliver makes one attempt and records its outcome; it reports success, or
// when the delivery will be retried (zero if never).
func (o *outbox) deliver(ctx context.Context, n alert.Notifier, d store.Delivery) (bool, time.Time) {
	backoff, maxAge := o.backoff()
	var err error
	if n == nil {
		err = errors.New("channel " + d.Channel + " is no longer configured")
	} else {
		limit := o.sendTimeout
		if b, ok := n.(alert.AttemptBounder); ok {
			limit = b.AttemptTimeout()
		}
		sctx, cancel := context.WithTimeout(ctx, limit)
		err = n.Send(sctx, &d.Alert)
		cancel()
	}
	if ctx.Err() != nil {
		return false, time.Time{} // shutting down: the attempt does not count
	}
	o.metrics.Delivery(d.Channel, err)
	now := o.now()
	if err == nil {
		if merr := o.store.MarkDelivered(ctx, d.ID, now); merr != nil {
			o.log.Error("recording a delivery", "channel", d.Channel, "alert", d.Alert.ID, "err", merr)
		}
		o.log.Debug("alert delivered", "channel", d.Channel, "alert", d.Alert.ID, "attempts", d.Attempts+1)
		return true, time.Time{}
	}
	msg := event.Clean(err.Error())
	if n == nil || (maxAge > 0 && now.Sub(d.Created) > maxAge) {
		o.log.Error("giving up on an alert delivery (it stays in the history and status)", "channel", d.Channel,
			"alert", d.Alert.ID, "attempts", d.Attempts+1, "err", msg)
		if merr := o.store.MarkGaveUp(ctx, d.ID, msg); merr != nil {
			o.log.Error("recording a delivery", "channel", d.Channel, "err", merr)
		}
		return false, time.Time{}
	}
	next := now.Add(backoff.Delay(d.Attempts + 1))
	o.log.Warn("alert delivery failed; will retry", "channel", d.Channel, "alert", d.Alert.ID,
		"attempts", d.Attempts+1, "retry_at", next.Format(time.RFC3339), "err", msg)
	if merr := o.store.MarkRetry(ctx, d.ID, next, msg); merr != nil {
		o.log.Error("recording a delivery", "channel", d.Channel, "err", merr)
	}
	return false, next
}

// deferRest keeps a channel's deliveries in order: after one failed, the
// deliveries behind it are not attempted now but wait for its retry (or, if
// it was given up, are tried on the next round).
func (o *outbox) deferRest(ctx context.Context, rest []store.Delivery, next time.Time) {
	if next.IsZero() {
		return
	}
	for _, d := range rest {
		if err := o.store.MarkRetry(ctx, d.ID, next, "not attempted: an earlier alert on this channel failed"); err != nil && ctx.Err() == nil {
			o.log.Error("recording a delivery", "channel", d.Channel, "err", err)
		}
	}
}

// updateBacklog refreshes the backlog gauges.
func (o *outbox) updateBacklog(ctx context.Context) {
	bl, err := o.store.Backlog(ctx)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, b := range bl {
		o.metrics.SetBacklog(b.Channel, b.Pending, b.Failed)
		seen[b.Channel] = true
	}
	for name := range o.channels() {
		if !seen[name] {
			o.metrics.SetBacklog(name, 0, 0)
		}
	}
}
