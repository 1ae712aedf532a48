package store

import "context"

// CarryEvents copies into the in-memory store mem the latest limit events
// of s, with their ids, after SeedMemory: for when s is still readable but
// no longer the database at the state directory's path (its file system
// was unmounted or mounted over), so that what was recorded in it reaches
// the database there when mem is merged (MergeInto adds an event already
// there only once). The file systems' counters are not carried: they are
// s's own, and adding them could count an event twice.
func (s *Store) CarryEvents(ctx context.Context, mem *Store, limit int) (int64, error) {
	var n int64
	err := s.attached(ctx, mem, "copying the history to memory", false, func(q queryExecer) error {
		r, err := q.ExecContext(ctx, `INSERT OR IGNORE INTO mem.events (id, time, kind, fs_key, errno, error_count, json)
SELECT id, time, kind, fs_key, errno, error_count, json FROM
	(SELECT * FROM main.events ORDER BY seq DESC LIMIT ?) ORDER BY seq`, limit)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return n, err
}
