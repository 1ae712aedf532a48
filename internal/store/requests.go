package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// RequestResolve asks the daemon to end a file system's open incidents and
// mark it healthy: an admin's word that the trouble is over (after
// xfs_repair, a disk replacement, ...), where fshealth cannot see it end by
// itself.
const RequestResolve = "resolve"

// Request is a request of the command line to the daemon.
type Request struct {
	ID      int64
	Kind    string
	FSKey   string
	Note    string
	Created time.Time
	// Done is when the daemon carried it out; zero while pending.
	Done time.Time
	// Outcome says what the daemon did.
	Outcome string
}

// FSKeys returns the keys of the file systems known by name: a mount point
// (cleaned), a UUID or a device, as EventQuery.FS takes them.
func (s *Store) FSKeys(ctx context.Context, name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		name = filepath.Clean(name)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT fs_key FROM fs_names WHERE name = ? ORDER BY fs_key`, name)
	if err != nil {
		return nil, s.errf("looking up "+name, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// AddRequest records a pending request and returns its id.
func (s *Store) AddRequest(ctx context.Context, kind, fsKey, note string) (int64, error) {
	var id int64
	err := s.write(ctx, "recording a request", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `INSERT INTO requests (kind, fs_key, note, created) VALUES (?, ?, ?, ?)`, kind, fsKey, note, ns(time.Now()))
		if err != nil {
			return err
		}
		id, err = r.LastInsertId()
		return err
	})
	return id, err
}

const requestColumns = `id, kind, fs_key, note, created, done, outcome`

// PendingRequests returns the requests not yet carried out, oldest first.
func (s *Store) PendingRequests(ctx context.Context) ([]Request, error) {
	return s.queryRequests(ctx, `WHERE done = 0 ORDER BY id`)
}

// Request returns the request id; the error wraps ErrNotFound if there is
// none.
func (s *Store) Request(ctx context.Context, id int64) (Request, error) {
	rs, err := s.queryRequests(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Request{}, err
	}
	if len(rs) == 0 {
		return Request{}, fmt.Errorf("request %d: %w", id, ErrNotFound)
	}
	return rs[0], nil
}

func (s *Store) queryRequests(ctx context.Context, tail string, args ...any) ([]Request, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests `+tail, args...)
	if err != nil {
		return nil, s.errf("querying requests", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var r Request
		var created, done int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.FSKey, &r.Note, &created, &done, &r.Outcome); err != nil {
			return nil, err
		}
		r.Created, r.Done = fromNS(created), fromNS(done)
		out = append(out, r)
	}
	return out, rows.Err()
}

// FinishRequest records that the daemon carried out request id, with its
// outcome.
func (s *Store) FinishRequest(ctx context.Context, id int64, outcome string, at time.Time) error {
	return s.write(ctx, "finishing a request", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `UPDATE requests SET done = ?, outcome = ? WHERE id = ? AND done = 0`, ns(at), outcome, id)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("request %d: %w", id, errors.Join(ErrNotFound, errors.New("or done already")))
		}
		return nil
	})
}
