package store

import (
	"context"
	"database/sql"
	"time"
)

// ErrnosSinceHealthy returns, for each file system with errors since it was
// last marked healthy (FilesystemStatus.Errors > 0), the number of errors of
// each errno name among its events since then, as far as the history still
// holds them (Prune may have removed the oldest). It reads the error
// summary of the whole hours since and the events of the hour it was
// marked healthy in, so its cost does not grow with the history. It only
// reads.
func (s *Store) ErrnosSinceHealthy(ctx context.Context) (map[string]map[string]uint64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.errf("querying the errors of unhealthy file systems", err)
	}
	defer tx.Rollback()
	out := map[string]map[string]uint64{}
	for _, q := range []string{
		// The whole hours after the one it was marked healthy in.
		`SELECT g.fs_key, g.value, sum(g.errors) FROM filesystems AS f
JOIN error_groups AS g ON g.fs_key = f.key AND g.dim = 'errno' AND g.hour > f.healthy_since / 3600000000000
WHERE f.errors > 0 GROUP BY g.fs_key, g.value`,
		// The rest of that hour.
		`SELECT e.fs_key, e.errno, sum(e.error_count)
FROM filesystems AS f JOIN events AS e ON e.fs_key = f.key
WHERE f.errors > 0 AND e.kind = 'error' AND e.time >= f.healthy_since
	AND e.time < (f.healthy_since / 3600000000000 + 1) * 3600000000000
GROUP BY e.fs_key, e.errno`,
	} {
		if err := addErrnos(ctx, tx, q, out); err != nil {
			return nil, s.errf("querying the errors of unhealthy file systems", err)
		}
	}
	return out, nil
}

// addErrnos adds to out the (file system, errno, errors) rows of query.
func addErrnos(ctx context.Context, tx *sql.Tx, query string, out map[string]map[string]uint64) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key, errno string
			n          int64
		)
		if err := rows.Scan(&key, &errno, &n); err != nil {
			return err
		}
		if out[key] == nil {
			out[key] = map[string]uint64{}
		}
		out[key][errno] += uint64(n)
	}
	return rows.Err()
}

// Overflows returns how many event queue overflow notices the history holds
// since the time since, and when the last one was received (zero if none).
// It only reads.
func (s *Store) Overflows(ctx context.Context, since time.Time) (n int, last time.Time, err error) {
	var lastNS int64
	err = s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(time), 0) FROM events WHERE kind = 'overflow' AND time >= ?`,
		ns(since)).Scan(&n, &lastNS)
	if err != nil {
		return 0, time.Time{}, s.errf("querying queue overflows", err)
	}
	return n, fromNS(lastNS), nil
}

// GivenUpSince returns, per channel, how many of the deliveries created since
// the time since were given up. It only reads.
func (s *Store) GivenUpSince(ctx context.Context, since time.Time) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT channel, count(*) FROM outbox WHERE state = 'failed' AND created >= ? GROUP BY channel`, ns(since))
	if err != nil {
		return nil, s.errf("querying given-up deliveries", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			ch string
			n  int
		)
		if err := rows.Scan(&ch, &n); err != nil {
			return nil, s.errf("querying given-up deliveries", err)
		}
		out[ch] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("querying given-up deliveries", err)
	}
	return out, nil
}
