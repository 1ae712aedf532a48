package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
)

// States of deliveries and actions.
const (
	// StatePending is a delivery not yet delivered, or an action not yet
	// finished.
	StatePending = "pending"
	// StateDelivered is a delivery the receiver accepted.
	StateDelivered = "delivered"
	// StateFailed is a delivery given up on (it stays visible in Backlog
	// until pruned), or an action that failed.
	StateFailed = "failed"
	// StateDone is an action that succeeded.
	StateDone = "done"
)

// Delivery is one row of the outbox: one alert to deliver to one channel.
type Delivery struct {
	// ID identifies the row; Commit sets it.
	ID int64
	// Channel is the name of the configured channel.
	Channel string
	// Alert is what to deliver; it is stored as JSON.
	Alert alert.Alert
	// Created is when the row was added.
	Created time.Time
	// Attempts counts the delivery attempts made so far.
	Attempts int
	// NextAttempt is when the row is due; zero means at once.
	NextAttempt time.Time
	// LastError is the error of the last failed attempt.
	LastError string
	// State is StatePending, StateDelivered or StateFailed.
	State string
	// Delivered is when the receiver accepted the alert; zero until then.
	Delivered time.Time
}

const deliveryColumns = `id, channel, alert, created, attempts, next_attempt, last_error, state, delivered`

// DueDeliveries returns up to limit (no limit if limit <= 0) pending
// deliveries whose NextAttempt is not after now, oldest first.
func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	q := `SELECT ` + deliveryColumns + ` FROM outbox WHERE state = 'pending' AND next_attempt <= ? ORDER BY id`
	args := []any{ns(now)}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.errf("querying due deliveries", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var (
			d                        Delivery
			a                        []byte
			created, next, delivered int64
		)
		if err := rows.Scan(&d.ID, &d.Channel, &a, &created, &d.Attempts, &next, &d.LastError, &d.State, &delivered); err != nil {
			return nil, s.errf("querying due deliveries", err)
		}
		if err := json.Unmarshal(a, &d.Alert); err != nil {
			return nil, s.errf("querying due deliveries", fmt.Errorf("delivery %d: stored alert: %w", d.ID, err))
		}
		d.Created, d.NextAttempt, d.Delivered = fromNS(created), fromNS(next), fromNS(delivered)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("querying due deliveries", err)
	}
	return out, nil
}

// NextDue returns the earliest NextAttempt of the pending deliveries, and
// false if there is none, so that the outbox worker can sleep on a timer
// until then instead of polling.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(next_attempt) FROM outbox WHERE state = 'pending'`).Scan(&next)
	if err != nil {
		return time.Time{}, false, s.errf("querying the next due delivery", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return time.Unix(0, next.Int64), true, nil
}

// MarkDelivered records the attempt that delivered delivery id at at.
func (s *Store) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	return s.markDelivery(ctx, id, "marking delivered",
		`UPDATE outbox SET state = 'delivered', delivered = ?, attempts = attempts + 1, last_error = '' WHERE id = ? AND state = 'pending'`,
		ns(at), id)
}

// MarkRetry records a failed attempt of delivery id: Attempts goes up by
// one, and the row is due again at next.
func (s *Store) MarkRetry(ctx context.Context, id int64, next time.Time, errText string) error {
	return s.markDelivery(ctx, id, "scheduling a retry",
		`UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ? AND state = 'pending'`,
		ns(next), errText, id)
}

// MarkGaveUp records the last, failed, attempt of delivery id: the row
// becomes StateFailed and stays visible (Backlog) until pruned.
func (s *Store) MarkGaveUp(ctx context.Context, id int64, errText string) error {
	return s.markDelivery(ctx, id, "giving up",
		`UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND state = 'pending'`,
		errText, id)
}

// markDelivery runs an update of one pending outbox row; it is an error if
// the row does not exist (ErrNotFound) or is no longer pending.
func (s *Store) markDelivery(ctx context.Context, id int64, op, query string, args ...any) error {
	return s.write(ctx, fmt.Sprintf("delivery %d: %s", id, op), func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		if err != nil || n == 1 {
			return err
		}
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM outbox WHERE id = ?`, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("it is %s, not pending", state)
	})
}

// Backlog is the state of one channel's outbox.
type Backlog struct {
	// Channel is the channel's name.
	Channel string
	// Pending counts the deliveries still to make; Failed those given up.
	Pending, Failed int
	// Oldest is when the oldest pending delivery was created; zero if none.
	Oldest time.Time
	// LastError is the most recent error of a pending or failed delivery:
	// of an attempt, if any was made, rather than "not attempted" (a
	// delivery held back behind a failed one).
	LastError string
}

// Backlog returns the backlog of every channel with pending or given-up
// deliveries, ordered by channel; a channel with everything delivered is
// left out. It reads only those rows (the outbox_due index), so its cost
// does not grow with the number of alerts ever delivered.
func (s *Store) Backlog(ctx context.Context) ([]Backlog, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT channel,
	count(*) FILTER (WHERE state = 'pending'),
	count(*) FILTER (WHERE state = 'failed'),
	coalesce(min(created) FILTER (WHERE state = 'pending'), 0),
	coalesce((SELECT last_error FROM outbox AS o
		WHERE o.channel = outbox.channel AND o.state IN ('pending', 'failed') AND o.last_error <> ''
		ORDER BY o.last_error LIKE 'not attempted:%', o.id DESC LIMIT 1), '')
FROM outbox WHERE state IN ('pending', 'failed') GROUP BY channel ORDER BY channel`)
	if err != nil {
		return nil, s.errf("querying the backlog", err)
	}
	defer rows.Close()
	var out []Backlog
	for rows.Next() {
		var (
			b      Backlog
			oldest int64
		)
		if err := rows.Scan(&b.Channel, &b.Pending, &b.Failed, &oldest, &b.LastError); err != nil {
			return nil, s.errf("querying the backlog", err)
		}
		b.Oldest = fromNS(oldest)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("querying the backlog", err)
	}
	return out, nil
}
