package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/store"
)

// slowChannel takes delay to accept an alert; with bound set it says how
// long an attempt may take.
type slowChannel struct {
	delay, bound time.Duration
}

func (c *slowChannel) Name() string { return "slow" }

func (c *slowChannel) Send(ctx context.Context, a *alert.Alert) error {
	select {
	case <-time.After(c.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type boundedChannel struct{ *slowChannel }

func (c boundedChannel) AttemptTimeout() time.Duration { return c.bound }

// TestOutboxAttemptBound: the outbox cuts off an attempt of a channel that
// does not bound itself after its fixed time, and waits as long as a
// channel's own bound (alert.AttemptBounder) says.
func TestOutboxAttemptBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ch        alert.Notifier
		delivered bool
	}{
		{"unbounded", &slowChannel{delay: 300 * time.Millisecond}, false},
		{"bounded", boundedChannel{&slowChannel{delay: 300 * time.Millisecond, bound: 2 * time.Second}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := openHistory(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			st := h.Store()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			now := time.Now()
			if err := st.Commit(ctx, &store.Batch{Deliveries: []store.Delivery{{Channel: "slow", Alert: alert.Alert{ID: "a1"}, Created: now, NextAttempt: now}}}); err != nil {
				t.Fatal(err)
			}
			o := newOutbox(h, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New("test"),
				func() map[string]alert.Notifier { return map[string]alert.Notifier{"slow": tc.ch} },
				func() (Backoff, time.Duration) { return Backoff{Initial: time.Hour, Max: time.Hour}, 24 * time.Hour })
			o.sendTimeout = 50 * time.Millisecond
			o.deliverDue(ctx)
			bl, err := st.Backlog(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if delivered := len(bl) == 0; delivered != tc.delivered {
				t.Errorf("delivered %v, want %v (backlog %+v)", delivered, tc.delivered, bl)
			}
		})
	}
}

// recordingChannel accepts every alert and records their ids in order.
type recordingChannel struct {
	mu  sync.Mutex
	ids []string
}

func (c *recordingChannel) Name() string { return "rec" }

func (c *recordingChannel) Send(ctx context.Context, a *alert.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids = append(c.ids, a.ID)
	return nil
}

func (c *recordingChannel) sent() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

// newRecordingOutbox is an outbox over a new history whose one channel,
// "rec", records what it is sent; it retries after an hour.
func newRecordingOutbox(t *testing.T) (*history, *outbox, *recordingChannel) {
	t.Helper()
	h, err := openHistory(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ch := &recordingChannel{}
	o := newOutbox(h, slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New("test"),
		func() map[string]alert.Notifier { return map[string]alert.Notifier{"rec": ch} },
		func() (Backoff, time.Duration) { return Backoff{Initial: time.Hour, Max: time.Hour}, 24 * time.Hour })
	return h, o, ch
}

// waitNoBacklog waits until every delivery in h is marked delivered.
func waitNoBacklog(t *testing.T, ctx context.Context, h *history) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	bl, err := h.Backlog(ctx)
	for ; err == nil && len(bl) > 0 && time.Now().Before(deadline); bl, err = h.Backlog(ctx) {
		time.Sleep(time.Millisecond)
	}
	if err != nil || len(bl) != 0 {
		t.Errorf("backlog %+v (%v), want none", bl, err)
	}
}

// TestOutboxHandOff: alerts handed over after their commit are sent once
// each; while older ones wait in the history, they go after them, in the
// order they were committed; once the outbox is idle they go without a
// read of the history, and still once.
func TestOutboxHandOff(t *testing.T) {
	h, o, ch := newRecordingOutbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	commit := func(ids ...string) []store.Delivery {
		t.Helper()
		now := time.Now()
		b := &store.Batch{}
		for _, id := range ids {
			b.Deliveries = append(b.Deliveries, store.Delivery{Channel: "rec", Alert: alert.Alert{ID: id}, Created: now, NextAttempt: now})
		}
		if err := h.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b.Deliveries
	}
	// Committed before the worker started: pending in the history.
	commit("old1", "old2")
	done := make(chan struct{})
	go func() { defer close(done); o.run(ctx) }()
	o.Hand(commit("new1"))
	waitSent := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(ch.sent()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := ch.sent(); !slices.Equal(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
	waitSent("old1", "old2", "new1")
	for i := range 20 {
		o.Hand(commit(fmt.Sprint("a", i), fmt.Sprint("b", i)))
	}
	want := []string{"old1", "old2", "new1"}
	for i := range 20 {
		want = append(want, fmt.Sprint("a", i), fmt.Sprint("b", i))
	}
	waitSent(want...)
	// Each is marked delivered after it was sent.
	waitNoBacklog(t, ctx, h)
	cancel()
	<-done
	if got := ch.sent(); len(got) != len(want) {
		t.Errorf("sent %d alerts, want %d (each once): %v", len(got), len(want), got)
	}
}

// TestOutboxCommitRacesARound: a round that reads the history while a
// commit is landing (the worker woken meanwhile, as a degrading history or
// a retry timer does) does not send the committed alerts a second time
// when they are handed over.
func TestOutboxCommitRacesARound(t *testing.T) {
	h, o, ch := newRecordingOutbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); o.run(ctx) }()
	var want []string
	for i := range 50 {
		id := fmt.Sprint("r", i)
		want = append(want, id)
		b := &store.Batch{Deliveries: []store.Delivery{{Channel: "rec", Alert: alert.Alert{ID: id}, Created: time.Now(), NextAttempt: time.Now()}}}
		err := o.CommitAndHand(func(func()) error {
			if err := h.Commit(ctx, b); err != nil {
				return err
			}
			// Committed, not yet handed over: wake the worker and let
			// it run a round.
			o.Wake()
			time.Sleep(2 * time.Millisecond)
			return nil
		}, func() []store.Delivery { return b.Deliveries })
		if err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(ch.sent()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	waitNoBacklog(t, ctx, h)
	cancel()
	<-done
	if got := ch.sent(); !slices.Equal(got, want) {
		t.Errorf("sent %v, want each of %v once, in order", got, want)
	}
}
