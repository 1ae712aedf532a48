package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
)

// Health values of FilesystemStatus.
const (
	// HealthOK means no error since the file system was first seen or last
	// marked healthy.
	HealthOK = "ok"
	// HealthErrors means errors were seen since then.
	HealthErrors = "errors"
)

// FilesystemStatus is a file system and its health. Rows are never deleted:
// an unwatched or unmounted file system keeps its history and health, and
// Prune keeps the counters.
type FilesystemStatus struct {
	// Key is the file system's UUID if known, else its device.
	Key string
	// UUID, Device, FSType and Label identify the file system, as last
	// seen.
	UUID, Device, FSType, Label string
	// Mountpoints are the mount points last seen.
	Mountpoints []string
	// Watched says whether the daemon watches it now (see SetWatched).
	Watched bool
	// Health is HealthOK or HealthErrors.
	Health string
	// Errors is the sum of the error_count of its error events since it
	// was last marked healthy (or ever, if never).
	Errors uint64
	// TotalErrors is the sum of the error_count of all its error events.
	TotalErrors uint64
	// Events is the number of events (errors and overflow notices) ever
	// recorded for it.
	Events uint64
	// FirstError is when the first error since it was last marked healthy
	// was received; zero if none.
	FirstError time.Time
	// LastError is when its most recent error was received; zero if none.
	LastError time.Time
	// LastErrno is the errno name of its most recent error, e.g. "EUCLEAN".
	LastErrno string
	// LastEventID is the id of its most recent error event.
	LastEventID string
	// HealthySince is when it was last marked healthy; zero if never.
	HealthySince time.Time
	// LastAction is its most recent recovery action, if any.
	LastAction *Action
}

// SetWatched marks exactly the file systems fss as watched and every other
// one as unwatched, creating rows as needed and updating the identity
// (device, type, label, mount points) of the known ones.
func (s *Store) SetWatched(ctx context.Context, fss []alert.Filesystem) error {
	return s.write(ctx, "setting the watched file systems", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE filesystems SET watched = 0 WHERE watched <> 0`); err != nil {
			return err
		}
		for _, f := range fss {
			key := FSKey(f.UUID, f.Device)
			if key == "" {
				return fmt.Errorf("file system %v has neither UUID nor device", f.Mountpoints)
			}
			mp, err := json.Marshal(nonNil(f.Mountpoints))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `
INSERT INTO filesystems (key, uuid, device, fstype, label, mountpoints, watched)
VALUES (?, ?, ?, ?, ?, ?, 1)
ON CONFLICT (key) DO UPDATE SET
	uuid = iif(excluded.uuid <> '', excluded.uuid, uuid),
	device = iif(excluded.device <> '', excluded.device, device),
	fstype = iif(excluded.fstype <> '', excluded.fstype, fstype),
	label = iif(excluded.label <> '', excluded.label, label),
	mountpoints = iif(excluded.mountpoints <> '[]', excluded.mountpoints, mountpoints),
	watched = 1`, key, f.UUID, f.Device, f.FSType, f.Label, string(mp)); err != nil {
				return fmt.Errorf("file system %s: %w", key, err)
			}
			for _, n := range append([]string{f.UUID, f.Device}, f.Mountpoints...) {
				if n == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO fs_names (name, fs_key) VALUES (?, ?)`, n, key); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Filesystems returns every file system ever seen, watched or not, ordered
// by key.
func (s *Store) Filesystems(ctx context.Context) ([]FilesystemStatus, error) {
	// One read transaction, so the actions match the rows.
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.errf("querying file systems", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `
SELECT key, uuid, device, fstype, label, mountpoints, watched, errors, total_errors, events,
	first_error, last_error, last_errno, last_event_id, healthy_since
FROM filesystems ORDER BY key`)
	if err != nil {
		return nil, s.errf("querying file systems", err)
	}
	var out []FilesystemStatus
	for rows.Next() {
		var (
			f                    FilesystemStatus
			mp                   string
			errs, total, events  int64
			first, last, healthy int64
		)
		if err := rows.Scan(&f.Key, &f.UUID, &f.Device, &f.FSType, &f.Label, &mp, &f.Watched, &errs, &total, &events,
			&first, &last, &f.LastErrno, &f.LastEventID, &healthy); err != nil {
			rows.Close()
			return nil, s.errf("querying file systems", err)
		}
		if err := json.Unmarshal([]byte(mp), &f.Mountpoints); err != nil {
			rows.Close()
			return nil, s.errf("querying file systems", fmt.Errorf("mount points of %s: %w", f.Key, err))
		}
		f.Errors, f.TotalErrors, f.Events = uint64(errs), uint64(total), uint64(events)
		f.FirstError, f.LastError, f.HealthySince = fromNS(first), fromNS(last), fromNS(healthy)
		f.Health = HealthOK
		if f.Errors > 0 {
			f.Health = HealthErrors
		}
		out = append(out, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.errf("querying file systems", err)
	}
	// The most recent action of each file system.
	last, err := queryActions(ctx, tx, `WHERE id IN (SELECT max(id) FROM actions GROUP BY fs_key)`)
	if err != nil {
		return nil, s.errf("querying file systems", err)
	}
	byKey := make(map[string]*Action, len(last))
	for i := range last {
		byKey[last[i].FSKey] = &last[i]
	}
	for i := range out {
		out[i].LastAction = byKey[out[i].Key]
	}
	return out, nil
}

// MarkHealthy records that the file system key is healthy again as of at (for
// example after e2fsck cleared its errors): Health becomes HealthOK and
// Errors and FirstError start again from zero, and its list of damaged files
// is emptied. TotalErrors, LastError and the
// history are kept. It is an error, wrapping ErrNotFound, if there is no such
// file system.
func (s *Store) MarkHealthy(ctx context.Context, key string, at time.Time) error {
	return s.write(ctx, "marking "+key+" healthy", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE filesystems SET errors = 0, first_error = 0, healthy_since = ? WHERE key = ?`, ns(at), key)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("file system %s: %w", key, ErrNotFound)
		}
		// Its damaged files were those of the errors before.
		_, err = tx.ExecContext(ctx, `DELETE FROM damaged_files WHERE fs_key = ?`, key)
		return err
	})
}
