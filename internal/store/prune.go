package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneChunk is how many rows one prune transaction deletes, so that a large
// prune does not hold up Commit for long or swell the WAL.
const pruneChunk = 2000

// vacuumChunk is how many free pages one incremental_vacuum step returns to
// the file system.
const vacuumChunk = 2048

// PruneStats says what Prune deleted.
type PruneStats struct {
	// Events, Deliveries, Actions and Incidents count the rows deleted.
	Events, Deliveries, Actions, Incidents int64
	// FreedPages counts the database pages given back to the file system.
	FreedPages int64
	// Size is the database's size in bytes afterwards (pages in use and
	// free, not counting the WAL).
	Size int64
}

// Prune deletes what is older than before: events (every file system's
// health row and counters are kept) and the error summary of the time
// buckets that end before it (damaged files stay until resolved), delivered and failed outbox rows,
// finished actions, and resolved incidents. It deletes in small
// transactions so that commits are not held up, then, if much space is
// free, gives it back to the file system (incremental_vacuum), so the
// database never grows without bound. Pending deliveries, pending actions
// and open incidents are never deleted.
func (s *Store) Prune(ctx context.Context, before time.Time) (PruneStats, error) {
	var st PruneStats
	b := ns(before)
	for _, p := range []struct {
		what  string
		count *int64
		query string
	}{
		{"events", &st.Events, `DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time < ?1 LIMIT ?2)`},
		// The summary of the buckets whose events are all deleted.
		{"hourly error summaries", new(int64), pruneGroupsSQL(1)},
		{"daily error summaries", new(int64), pruneGroupsSQL(24)},
		{"30-day error summaries", new(int64), pruneGroupsSQL(720)},
		{"hourly error rates", new(int64), pruneRateSQL(1)},
		{"daily error rates", new(int64), pruneRateSQL(24)},
		{"outbox rows", &st.Deliveries, `DELETE FROM outbox WHERE id IN
			(SELECT id FROM outbox WHERE created < ?1 AND state <> 'pending' LIMIT ?2)`},
		{"actions", &st.Actions, `DELETE FROM actions WHERE id IN
			(SELECT id FROM actions WHERE finished < ?1 AND state <> 'pending' LIMIT ?2)`},
		{"incidents", &st.Incidents, `DELETE FROM incidents WHERE key IN
			(SELECT key FROM incidents WHERE resolved < ?1 AND resolved <> 0 LIMIT ?2)`},
		{"requests", new(int64), `DELETE FROM requests WHERE id IN
			(SELECT id FROM requests WHERE done < ?1 AND done <> 0 LIMIT ?2)`},
	} {
		for {
			var n int64
			err := s.write(ctx, "pruning "+p.what, func(tx *sql.Tx) error {
				r, err := tx.ExecContext(ctx, p.query, b, pruneChunk)
				if err != nil {
					return err
				}
				n, err = r.RowsAffected()
				return err
			})
			if err != nil {
				return st, err
			}
			*p.count += n
			if n < pruneChunk {
				break
			}
		}
	}
	freed, size, err := s.vacuum(ctx)
	st.FreedPages, st.Size = freed, size
	return st, err
}

// vacuum gives free pages back to the file system if there are many: more
// than a quarter of the file, or more than 4 MiB.
func (s *Store) vacuum(ctx context.Context) (freed, size int64, err error) {
	if s.readOnly {
		return 0, 0, fmt.Errorf("%s: vacuum: database is open read-only", s.path)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return 0, 0, s.errf("vacuum", err)
	}
	defer conn.Close()
	var pageSize, pages, free int64
	stat := func() error {
		for _, p := range []struct {
			name string
			dst  *int64
		}{{"page_size", &pageSize}, {"page_count", &pages}, {"freelist_count", &free}} {
			if err := conn.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(p.dst); err != nil {
				return err
			}
		}
		return nil
	}
	if err := stat(); err != nil {
		return 0, 0, s.errf("vacuum", err)
	}
	start := free
	if free > 0 && (free*4 > pages || free*pageSize > 4<<20) {
		for free > 0 {
			// Each step is its own transaction: commits can go
			// between them.
			s.mu.Lock()
			_, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", vacuumChunk))
			s.mu.Unlock()
			if err != nil {
				return start - free, pages * pageSize, s.errf("vacuum", err)
			}
			before := free
			if err := stat(); err != nil {
				return start - free, pages * pageSize, s.errf("vacuum", err)
			}
			if free >= before {
				break // auto_vacuum is off (a database from elsewhere)
			}
		}
		// Copy the WAL back into the (now shorter) database file without
		// waiting for readers; the WAL is truncated to walSizeLimit when
		// it is next reset.
		var busy, logPages, checkpointed int64
		s.mu.Lock()
		err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &checkpointed)
		s.mu.Unlock()
		if err != nil {
			return start - free, pages * pageSize, s.errf("checkpoint", err)
		}
	}
	return start - free, pages * pageSize, nil
}

// pruneGroupsSQL deletes (up to ?2) the rows of error_groups of span hours
// whose bucket ends at or before ?1 (Unix ns).
func pruneGroupsSQL(span int64) string {
	return fmt.Sprintf(`DELETE FROM error_groups WHERE (span, bucket, dim, fs_key, value) IN
			(SELECT span, bucket, dim, fs_key, value FROM error_groups WHERE span = %d AND bucket < ?1 / %d LIMIT ?2)`,
		span, span*int64(time.Hour))
}

// pruneRateSQL is pruneGroupsSQL for error_rate.
func pruneRateSQL(span int64) string {
	return fmt.Sprintf(`DELETE FROM error_rate WHERE (span, bucket, fs_key) IN
			(SELECT span, bucket, fs_key FROM error_rate WHERE span = %d AND bucket < ?1 / %d LIMIT ?2)`,
		span, span*int64(time.Hour))
}
