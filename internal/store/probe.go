package store

import (
	"context"
	"database/sql"
)

// Probe runs an empty write transaction the way Commit runs its own: it
// takes the process's write lock, then SQLite's (BEGIN IMMEDIATE), and
// commits nothing. It returns once a commit could start now, so a call that
// does not return says that a commit (or another write) is stuck; its error
// says whether the database is usable, which is another matter.
func (s *Store) Probe(ctx context.Context) error {
	return s.write(ctx, "probe", func(*sql.Tx) error { return nil })
}
