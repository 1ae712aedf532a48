package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxOutput is how much of an action's output FinishAction keeps, in bytes;
// longer output is cut and marked, so one chatty command cannot bloat the
// database.
const MaxOutput = 64 << 10

// Action is a recovery action: first an intent (StatePending), then an
// outcome (StateDone or StateFailed).
type Action struct {
	// ID identifies the action; Commit sets it.
	ID int64
	// IncidentKey is the incident the action is for.
	IncidentKey string
	// FSKey is the file system the action is on; Commit derives it from
	// IncidentKey if empty.
	FSKey string
	// EventID is the event that triggered the action.
	EventID string
	// Name is the action's name, e.g. "remount-ro".
	Name string
	// Argv is the command the action runs, if any.
	Argv []string
	// DryRun says the action is only to be logged, not run.
	DryRun bool
	// Timeout bounds the action; zero means the runner's default.
	Timeout time.Duration
	// State is StatePending, StateDone or StateFailed.
	State string
	// Created is when the intent was committed.
	Created time.Time
	// Started and Finished are when the action ran; zero until then.
	// A pending action with a Started time was interrupted (the daemon
	// stopped while it ran).
	Started, Finished time.Time
	// Outcome is a one-line result, e.g. "remounted read-only" or "exit
	// status 1".
	Outcome string
	// Output is the command's output, at most MaxOutput bytes.
	Output string
}

const actionColumns = `id, incident_key, fs_key, event_id, name, argv, dry_run, timeout, state, created, started, finished, outcome, output`

// queryer is what *sql.DB and *sql.Tx have in common.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryActions returns the actions selected by tail (a WHERE and ORDER BY
// clause, with args).
func queryActions(ctx context.Context, q queryer, tail string, args ...any) ([]Action, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+actionColumns+` FROM actions `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		var (
			a                          Action
			argv                       string
			created, started, finished int64
			timeout                    int64
		)
		if err := rows.Scan(&a.ID, &a.IncidentKey, &a.FSKey, &a.EventID, &a.Name, &argv, &a.DryRun, &timeout, &a.State,
			&created, &started, &finished, &a.Outcome, &a.Output); err != nil {
			return nil, err
		}
		a.Timeout = time.Duration(timeout)
		if err := json.Unmarshal([]byte(argv), &a.Argv); err != nil {
			return nil, fmt.Errorf("action %d: argv: %w", a.ID, err)
		}
		if len(a.Argv) == 0 {
			a.Argv = nil
		}
		a.Created, a.Started, a.Finished = fromNS(created), fromNS(started), fromNS(finished)
		out = append(out, a)
	}
	return out, rows.Err()
}

// PendingActions returns the actions not yet finished, oldest first,
// including those interrupted by a stop of the daemon (Started is set).
func (s *Store) PendingActions(ctx context.Context) ([]Action, error) {
	a, err := queryActions(ctx, s.db, `WHERE state = 'pending' ORDER BY id`)
	if err != nil {
		return nil, s.errf("querying pending actions", err)
	}
	return a, nil
}

// StartAction records that action id started at at, so that after a crash
// the runner can tell an interrupted action from one never started.
func (s *Store) StartAction(ctx context.Context, id int64, at time.Time) error {
	return s.write(ctx, fmt.Sprintf("action %d: recording the start", id), func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE actions SET started = ? WHERE id = ? AND state = 'pending'`, ns(at), id)
		if err != nil {
			return err
		}
		return s.oneAction(ctx, tx, r, id)
	})
}

// FinishAction records the outcome of action id: state is StateDone or
// StateFailed. Output longer than MaxOutput is cut. A zero started keeps the
// time StartAction recorded; a zero finished means now.
func (s *Store) FinishAction(ctx context.Context, id int64, state, outcome, output string, started, finished time.Time) error {
	if state != StateDone && state != StateFailed {
		return fmt.Errorf("%s: action %d: finishing: state %q is neither %q nor %q", s.path, id, state, StateDone, StateFailed)
	}
	if finished.IsZero() {
		finished = time.Now()
	}
	return s.write(ctx, fmt.Sprintf("action %d: recording the outcome", id), func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE actions SET state = ?1, outcome = ?2, output = ?3, started = iif(?4 <> 0, ?4, started), finished = ?5
WHERE id = ?6 AND state = 'pending'`,
			state, outcome, truncate(output, MaxOutput), ns(started), ns(finished), id)
		if err != nil {
			return err
		}
		return s.oneAction(ctx, tx, r, id)
	})
}

// oneAction checks that r updated action id; else it says why not.
func (s *Store) oneAction(ctx context.Context, tx *sql.Tx, r sql.Result, id int64) error {
	n, err := r.RowsAffected()
	if err != nil || n == 1 {
		return err
	}
	var state string
	err = tx.QueryRowContext(ctx, `SELECT state FROM actions WHERE id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("it is already %s", state)
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "\n[output truncated]"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// Actions returns the newest limit actions (all if limit <= 0), oldest
// first.
func (s *Store) Actions(ctx context.Context, limit int) ([]Action, error) {
	var (
		a   []Action
		err error
	)
	if limit > 0 {
		a, err = queryActions(ctx, s.db, `WHERE id IN (SELECT id FROM actions ORDER BY id DESC LIMIT ?) ORDER BY id`, limit)
	} else {
		a, err = queryActions(ctx, s.db, `ORDER BY id`)
	}
	if err != nil {
		return nil, s.errf("querying actions", err)
	}
	return a, nil
}
