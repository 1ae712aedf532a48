package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/fshealth/fshealth/internal/event"
)

// AttachPath records the outcome of a path lookup that finished after the
// events asking for it were committed: each error event of the file system
// fsKey about inode ino (generation gen) whose path is pending gets path,
// or pathError when none was found, and is no longer pending. It returns
// the ids of the events it changed, in commit order.
func (s *Store) AttachPath(ctx context.Context, fsKey string, ino uint64, gen uint32, path, pathError string) ([]string, error) {
	var ids []string
	err := s.write(ctx, "attaching a path to events", func(tx *sql.Tx) error {
		// Only events whose JSON says the path is pending are decoded,
		// found by the partial index events_path_pending.
		changed, err := rewriteEvents(ctx, tx, pendingSQL, fsKey, func(e *event.Event) bool {
			if !e.PathPending || e.Inode == nil || *e.Inode != ino || e.Gen() != gen {
				return false
			}
			e.PathPending, e.Path, e.PathError = false, path, pathError
			return true
		})
		if err != nil {
			return err
		}
		ids = changed.ids()
		// The inode's groups in the summary of each event's time are
		// labelled with the path.
		for _, c := range changed {
			for _, span := range spans {
				if path == "" {
					break
				}
				if _, err := tx.ExecContext(ctx, `UPDATE error_groups SET label = ?
WHERE span = ? AND dim = ? AND bucket = ? AND fs_key = ? AND value = ?`,
					path, span, DimFile, bucketOf(c.time, span*hourNS), fsKey, strconv.FormatUint(ino, 10)); err != nil {
					return err
				}
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE damaged_files SET path = ?, path_error = ?, path_pending = 0,
	state = iif(? <> '', ?, state) WHERE fs_key = ? AND inode = ? AND generation = ?`,
			path, pathError, fileStateOf(pathError), fileStateOf(pathError), fsKey, int64(ino), int64(gen))
		return err
	})
	return ids, err
}

// pendingSQL selects the events whose path is pending; it is the condition
// of the partial index events_path_pending, spelt the same so that SQLite
// uses it.
const pendingSQL = `instr(json, '"path_pending":true') > 0`

// The states of a damaged file (DamagedFile.State).
const (
	// FileDeleted: the read-only lookup found no directory entry naming
	// the inode any more.
	FileDeleted = "deleted"
	// FileReplaced: the inode now has another generation (the read-only
	// lookup found it so, or a later error named it so): the file was
	// deleted and its inode reused by another file.
	FileReplaced = "replaced"
)

// fileStateOf returns the state of a damaged file that a path lookup's
// error shows (package pathfind words them), "" if it shows none.
func fileStateOf(pathError string) string {
	switch {
	case strings.Contains(pathError, "deleted and its inode reused"):
		return FileReplaced
	case strings.Contains(pathError, "no directory entry"):
		return FileDeleted
	}
	return ""
}

// EventsByID returns the events with the given ids that are in the
// history, by id.
func (s *Store) EventsByID(ctx context.Context, ids []string) (map[string]event.Event, error) {
	out := map[string]event.Event{}
	for _, id := range ids {
		if id == "" {
			continue
		}
		var raw []byte
		err := s.db.QueryRowContext(ctx, `SELECT json FROM events WHERE id = ?`, id).Scan(&raw)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, s.errf("reading events by id", err)
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, s.errf("reading events by id", fmt.Errorf("stored event %s is not valid JSON: %w", id, err))
		}
		out[id] = e
	}
	return out, nil
}

// PendingPath names an inode whose path was pending in the history.
type PendingPath struct {
	FSKey      string
	Inode      uint64
	Generation uint32
}

// PendingPaths returns the inodes of the newest error events whose path is
// still pending (a lookup the daemon did not finish before it stopped), at
// most limit of them, newest first.
func (s *Store) PendingPaths(ctx context.Context, limit int) ([]PendingPath, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT fs_key, json FROM events INDEXED BY events_path_pending WHERE kind = ? AND `+pendingSQL+` ORDER BY seq DESC`,
		event.KindError)
	if err != nil {
		return nil, s.errf("reading pending paths", err)
	}
	defer rows.Close()
	var out []PendingPath
	seen := map[PendingPath]bool{}
	for rows.Next() && len(out) < limit {
		var key sql.NullString
		var raw []byte
		if err := rows.Scan(&key, &raw); err != nil {
			return nil, s.errf("reading pending paths", err)
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, s.errf("reading pending paths", fmt.Errorf("stored event is not valid JSON: %w", err))
		}
		if !e.PathPending || e.Inode == nil || !key.Valid {
			continue
		}
		p := PendingPath{FSKey: key.String, Inode: *e.Inode, Generation: e.Gen()}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("reading pending paths", err)
	}
	return out, nil
}
