package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

// AttachExt4 records ext4's record of errors, read after their events were
// committed: each error event of the file system fsKey that waits for it
// (event.Event.Ext4Pending) gets st and no longer waits. It returns the ids
// of the events it changed, in commit order.
func (s *Store) AttachExt4(ctx context.Context, fsKey string, st *ext4.State) ([]string, error) {
	var ids []string
	err := s.write(ctx, "attaching ext4's record to events", func(tx *sql.Tx) error {
		changed, err := rewriteEvents(ctx, tx, `instr(json, '"ext4_pending":true') > 0`, fsKey, func(e *event.Event) bool {
			if !e.Ext4Pending {
				return false
			}
			e.Ext4, e.Ext4Pending = st, false
			return true
		})
		ids = changed.ids()
		return err
	})
	return ids, err
}

// rewritten is a stored event rewriteEvents changed.
type rewritten struct {
	id   string
	time int64 // ns
}

type rewrittenEvents []rewritten

func (rs rewrittenEvents) ids() []string {
	if len(rs) == 0 {
		return nil
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.id
	}
	return ids
}

// rewriteEvents decodes, in commit order, each error event of the file
// system fsKey whose stored JSON meets the SQL condition where, lets change
// update it (reporting whether it did), and stores the changed ones again.
func rewriteEvents(ctx context.Context, tx *sql.Tx, where, fsKey string, change func(*event.Event) bool) (rewrittenEvents, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, json FROM events WHERE fs_key = ? AND kind = ? AND `+where+` ORDER BY seq`,
		fsKey, event.KindError)
	if err != nil {
		return nil, err
	}
	type update struct {
		seq  int64
		json []byte
	}
	var updates []update
	var changed rewrittenEvents
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			rows.Close()
			return nil, err
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stored event %d is not valid JSON: %w", seq, err)
		}
		if !change(&e) {
			continue
		}
		j, err := event.AppendObject(nil, &e)
		if err != nil {
			rows.Close()
			return nil, err
		}
		updates = append(updates, update{seq, j})
		changed = append(changed, rewritten{e.ID, ns(e.Time.Time)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, u := range updates {
		if _, err := tx.ExecContext(ctx, `UPDATE events SET json = ? WHERE seq = ?`, u.json, u.seq); err != nil {
			return nil, err
		}
	}
	return changed, nil
}
