package daemon

import (
	"context"
	"io"
	"log/slog"
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
