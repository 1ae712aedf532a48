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
		ids = nil
		rows, err := tx.QueryContext(ctx, `SELECT seq, json FROM events WHERE fs_key = ? AND kind = ? AND instr(json, ?) > 0 ORDER BY seq`,
			fsKey, event.KindError, []byte(`"ext4_pending":true`))
		if err != nil {
			return err
		}
		type change struct {
			seq  int64
			id   string
			json []byte
		}
		var changes []change
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw); err != nil {
				rows.Close()
				return err
			}
			var e event.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				rows.Close()
				return fmt.Errorf("stored event %d is not valid JSON: %w", seq, err)
			}
			if !e.Ext4Pending {
				continue
			}
			e.Ext4, e.Ext4Pending = st, false
			j, err := json.Marshal(&e)
			if err != nil {
				rows.Close()
				return err
			}
			changes = append(changes, change{seq, e.ID, j})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range changes {
			if _, err := tx.ExecContext(ctx, `UPDATE events SET json = ? WHERE seq = ?`, c.json, c.seq); err != nil {
				return err
			}
			ids = append(ids, c.id)
		}
		return nil
	})
	return ids, err
}
