package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/btrfs"
)

// Incident is the policy's state about one error kind on one file system: what
// must survive a restart for anti-flood, reminders and "never run an action
// twice" to keep working.
type Incident struct {
	// Key is IncidentKey(FSKey, ErrorKind).
	Key string
	// FSKey is the file system's key; ErrorKind the errno name.
	FSKey, ErrorKind string
	// Opened is when the incident began; LastEvent and LastAlert when its
	// last event arrived and its last alert was raised.
	Opened, LastEvent, LastAlert time.Time
	// NextReminder is when the next reminder is due.
	NextReminder time.Time
	// FoldedSince is when the errors folded into the coming digest began.
	FoldedSince time.Time
	// Events and Errors count the incident's events and errors; Folded the
	// errors folded into the coming digest.
	Events, Errors, Folded uint64
	// RemindersSent counts the reminders sent.
	RemindersSent int
	// ActionsRun names the actions already run for the incident.
	ActionsRun []string
	// Resolved is when the incident ended; zero while it is open.
	Resolved time.Time
	// State is the policy engine's full state of the incident (JSON),
	// stored and returned unchanged.
	State json.RawMessage
}

const incidentColumns = `key, fs_key, error_kind, opened, last_event, last_alert, next_reminder, folded_since,
	events, errors, folded, reminders_sent, actions_run, resolved, state`

// OpenIncidents returns the incidents not resolved, ordered by key.
func (s *Store) OpenIncidents(ctx context.Context) ([]Incident, error) {
	in, err := s.queryIncidents(ctx, `WHERE resolved = 0 ORDER BY key`)
	if err != nil {
		return nil, s.errf("querying open incidents", err)
	}
	return in, nil
}

// Incident returns the incident key, open or resolved, and false if there
// is none.
func (s *Store) Incident(ctx context.Context, key string) (Incident, bool, error) {
	in, err := s.queryIncidents(ctx, `WHERE key = ?`, key)
	if err != nil {
		return Incident{}, false, s.errf("querying incident "+key, err)
	}
	if len(in) == 0 {
		return Incident{}, false, nil
	}
	return in[0], true, nil
}

func (s *Store) queryIncidents(ctx context.Context, tail string, args ...any) ([]Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+incidentColumns+` FROM incidents `+tail, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Incident
	for rows.Next() {
		var (
			in                                                        Incident
			opened, lastEvent, lastAlert, next, foldedSince, resolved int64
			events, errs, folded                                      int64
			actionsRun, state                                         string
		)
		if err := rows.Scan(&in.Key, &in.FSKey, &in.ErrorKind, &opened, &lastEvent, &lastAlert, &next, &foldedSince,
			&events, &errs, &folded, &in.RemindersSent, &actionsRun, &resolved, &state); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(actionsRun), &in.ActionsRun); err != nil {
			return nil, fmt.Errorf("incident %s: actions run: %w", in.Key, err)
		}
		if len(in.ActionsRun) == 0 {
			in.ActionsRun = nil
		}
		if state != "" {
			in.State = json.RawMessage(state)
		}
		in.Opened, in.LastEvent, in.LastAlert = fromNS(opened), fromNS(lastEvent), fromNS(lastAlert)
		in.NextReminder, in.FoldedSince, in.Resolved = fromNS(next), fromNS(foldedSince), fromNS(resolved)
		in.Events, in.Errors, in.Folded = uint64(events), uint64(errs), uint64(folded)
		out = append(out, in)
	}
	return out, rows.Err()
}

// Ext4Reported returns the ext4 errors_count last recorded as reported for
// the file system uuid, and false if none was.
func (s *Store) Ext4Reported(ctx context.Context, uuid string) (count uint64, ok bool, err error) {
	var n int64
	err = s.db.QueryRowContext(ctx, `SELECT count FROM ext4_reported WHERE uuid = ?`, uuid).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.errf("querying the reported ext4 state of "+uuid, err)
	}
	return uint64(n), true, nil
}

// SetExt4Reported records that fshealth has reported the ext4 errors_count
// count of the file system uuid. Batch.Ext4Reported does the same within a
// Commit.
func (s *Store) SetExt4Reported(ctx context.Context, uuid string, count uint64) error {
	return s.Commit(ctx, &Batch{Ext4Reported: map[string]uint64{uuid: count}})
}

// BtrfsCounters returns the btrfs device error counters last recorded for
// the file system uuid (Batch.BtrfsCounters), or nil if none were.
func (s *Store) BtrfsCounters(ctx context.Context, uuid string) ([]btrfs.DeviceStats, error) {
	var j string
	err := s.db.QueryRowContext(ctx, `SELECT devs FROM btrfs_counters WHERE uuid = ?`, uuid).Scan(&j)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, s.errf("querying the btrfs counters of "+uuid, err)
	}
	devs := []btrfs.DeviceStats{}
	if err := json.Unmarshal([]byte(j), &devs); err != nil {
		return nil, fmt.Errorf("the btrfs counters recorded for %s: %w", uuid, err)
	}
	return devs, nil
}
