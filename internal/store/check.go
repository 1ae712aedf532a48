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
	err = func() error {
		rows, err := tx.QueryContext(ctx, `SELECT key, healthy_since FROM filesystems WHERE errors > 0 ORDER BY key`)
		if err != nil {
			return err
		}
		type unhealthy struct {
			key   string
			since int64
		}
		var fss []unhealthy
		for rows.Next() {
			var u unhealthy
			if err := rows.Scan(&u.key, &u.since); err != nil {
				rows.Close()
				return err
			}
			fss = append(fss, u)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, u := range fss {
			groups, err := sumGroups(ctx, tx, u.since, []string{u.key}, DimErrno)
			if err != nil {
				return err
			}
			for k, g := range groups {
				if out[k.fsKey] == nil {
					out[k.fsKey] = map[string]uint64{}
				}
				out[k.fsKey][k.val] += g.Errors
			}
		}
		return nil
	}()
	if err != nil {
		return nil, s.errf("querying the errors of unhealthy file systems", err)
	}
	return out, nil
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
