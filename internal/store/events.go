package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// EventQuery selects events from the history.
type EventQuery struct {
	// Since excludes events older than it; zero means from the beginning.
	Since time.Time
	// FS keeps only the events of the file system known by this name: a
	// mount point, a UUID or a device path (any name it was ever seen
	// under). Overflow notices that name no file system are then left
	// out. Empty means every event.
	FS string
	// Limit keeps only the newest Limit events (still returned oldest
	// first); 0 means no limit.
	Limit int
}

// Events returns the events q selects, oldest first. Each is the JSON object
// that was committed, decoded: it round-trips exactly, id included.
func (s *Store) Events(ctx context.Context, q EventQuery) ([]event.Event, error) {
	var evs []event.Event
	err := s.ScanEvents(ctx, q, func(e *event.Event, _ []byte) error {
		evs = append(evs, *e)
		return nil
	})
	return evs, err
}

// fsKeysNamed returns the keys of the file systems known by name.
func (s *Store) fsKeysNamed(ctx context.Context, name string) ([]string, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	return fsKeysNamed(ctx, tx, name)
}

// ScanEvents calls fn with each event q selects, oldest first, without
// holding them all in memory: e is the decoded event and raw the JSON object
// exactly as stored. Both are only valid during the call. An error from fn
// stops the scan and is returned.
func (s *Store) ScanEvents(ctx context.Context, q EventQuery, fn func(e *event.Event, raw []byte) error) error {
	return s.scanEvents(ctx, q, true, fn)
}

// ScanRawEvents calls fn with the JSON object of each event q selects,
// oldest first, exactly as stored, without decoding it (as `fshealth events
// --json` prints them): raw is only valid during the call.
func (s *Store) ScanRawEvents(ctx context.Context, q EventQuery, fn func(raw []byte) error) error {
	return s.scanEvents(ctx, q, false, func(_ *event.Event, raw []byte) error { return fn(raw) })
}

// scanEvents is ScanEvents; the events are decoded only if decode is set
// (fn then gets a nil event otherwise).
func (s *Store) scanEvents(ctx context.Context, q EventQuery, decode bool, fn func(e *event.Event, raw []byte) error) error {
	var (
		where []string
		args  []any
	)
	if !q.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, ns(q.Since))
	}
	if q.FS != "" {
		// The keys first, so that SQLite knows how few they are and
		// reads each one's events by the events_fs_time index.
		keys, err := s.fsKeysNamed(ctx, q.FS)
		if err != nil {
			return s.errf("querying events", err)
		}
		if len(keys) == 0 {
			return nil
		}
		cond, kargs := inKeys("fs_key", keys)
		where = append(where, strings.TrimPrefix(cond, " AND "))
		args = append(args, kargs...)
	}
	from := "FROM events"
	if len(where) > 0 {
		from += " WHERE " + strings.Join(where, " AND ")
	}
	// newestFirst: the newest Limit events are read newest first, as the
	// index gives them, and returned in reverse, instead of sorted again
	// by SQLite (a sort of their whole JSON: a tenth of `fshealth events
	// --fs X`'s time on a big history).
	newestFirst := q.Limit > 0 && q.Limit <= reverseMax
	var query string
	switch {
	case newestFirst:
		query = "SELECT json " + from + " ORDER BY time DESC, seq DESC LIMIT ?"
		args = append(args, q.Limit)
	case q.Limit > 0:
		query = "SELECT json FROM (SELECT seq, time, json " + from + " ORDER BY time DESC, seq DESC LIMIT ?) ORDER BY time, seq"
		args = append(args, q.Limit)
	default:
		query = "SELECT json " + from + " ORDER BY time, seq"
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return s.errf("querying events", err)
	}
	defer rows.Close()
	emit := func(raw []byte) error {
		if !decode {
			return fn(nil, raw)
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return s.errf("querying events", fmt.Errorf("stored event is not valid JSON: %w", err))
		}
		return fn(&e, raw)
	}
	var raws [][]byte
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return s.errf("querying events", err)
		}
		if newestFirst {
			raws = append(raws, bytes.Clone(raw))
			continue
		}
		if err := emit(raw); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.errf("querying events", err)
	}
	for i := len(raws) - 1; i >= 0; i-- {
		if err := emit(raws[i]); err != nil {
			return err
		}
	}
	return nil
}

// reverseMax is the largest EventQuery.Limit whose events are held in
// memory to be returned oldest first (about 1 KiB each); larger limits
// are sorted by SQLite. A variable for tests.
var reverseMax = 10000
