package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/event"
)

// Batch is everything one sink call commits atomically: either all of it is
// durable when Commit returns nil, or none of it is.
type Batch struct {
	// Events are the events to add to the history, with their IDs already
	// set; kind error or overflow. Each error event also updates its file
	// system's health row.
	Events []event.Event
	// Deliveries are outbox rows to add; they are stored as pending
	// whatever their State. A zero Created means now; a zero NextAttempt
	// means Created (due at once). Commit sets their IDs.
	Deliveries []Delivery
	// Actions are action intents to add; they are stored as pending
	// whatever their State. Commit sets their IDs.
	Actions []Action
	// Incidents are inserted, or replaced if one with the same key exists.
	// Commit fills in an empty Key from FSKey and ErrorKind, and an empty
	// FSKey from Key.
	Incidents []Incident
	// Ext4Reported records, per file system UUID, the ext4 errors_count
	// fshealth has reported (see SetExt4Reported).
	Ext4Reported map[string]uint64
	// BtrfsCounters records, per btrfs file system UUID, the device error
	// counters last read; increases from them are reported with the same
	// batch.
	BtrfsCounters map[string][]btrfs.DeviceStats

	// Durable, if set, is called once all of the above is on stable
	// storage and the IDs are set, before Commit writes the error summary
	// of the events (which the alerts need not wait for): the daemon hands
	// the alerts to the outbox there. It must not call the Store. It is
	// not called if Commit fails.
	Durable func()
}

// empty reports whether b has nothing to commit.
func (b *Batch) empty() bool {
	return len(b.Events) == 0 && len(b.Deliveries) == 0 && len(b.Actions) == 0 &&
		len(b.Incidents) == 0 && len(b.Ext4Reported) == 0 && len(b.BtrfsCounters) == 0
}

// statements are the prepared statements of the hot paths.
type statements struct {
	upsertFS, insertName, insertEvent, insertDelivery, insertAction, upsertIncident, setExt4 *sql.Stmt
	summary                                                                                  *summaryStmts
}

func (st *statements) close() {
	if st.summary != nil {
		st.summary.close()
	}
	for _, p := range []*sql.Stmt{st.upsertFS, st.insertName, st.insertEvent, st.insertDelivery, st.insertAction, st.upsertIncident, st.setExt4} {
		if p != nil {
			p.Close()
		}
	}
}

// prepare prepares the statements Commit uses.
func (s *Store) prepare() error {
	st := &statements{}
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.upsertFS, `
INSERT INTO filesystems (key, uuid, device, fstype, label, mountpoints,
	errors, total_errors, events, first_error, last_error, last_errno, last_event_id)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (key) DO UPDATE SET
	uuid = iif(excluded.uuid <> '', excluded.uuid, uuid),
	device = iif(excluded.device <> '', excluded.device, device),
	fstype = iif(excluded.fstype <> '', excluded.fstype, fstype),
	label = iif(excluded.label <> '', excluded.label, label),
	mountpoints = iif(excluded.mountpoints <> '[]', excluded.mountpoints, mountpoints),
	errors = errors + excluded.errors,
	total_errors = total_errors + excluded.errors,
	events = events + excluded.events,
	first_error = iif(first_error = 0, excluded.first_error, first_error),
	last_error = iif(excluded.last_error <> 0, excluded.last_error, last_error),
	last_errno = iif(excluded.last_error <> 0, excluded.last_errno, last_errno),
	last_event_id = iif(excluded.last_error <> 0, excluded.last_event_id, last_event_id)`},
		{&st.insertName, `INSERT OR IGNORE INTO fs_names (name, fs_key) VALUES (?, ?)`},
		{&st.insertEvent, `INSERT INTO events (id, time, kind, fs_key, errno, error_count, json) VALUES (?, ?, ?, ?, ?, ?, ?)`},
		{&st.insertDelivery, `INSERT INTO outbox (id, channel, alert_id, alert, created, attempts, next_attempt, last_error, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')`},
		{&st.insertAction, `INSERT INTO actions (id, incident_key, fs_key, event_id, name, argv, dry_run, timeout, state, created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`},
		{&st.upsertIncident, `
INSERT INTO incidents (key, fs_key, error_kind, opened, last_event, last_alert, next_reminder, folded_since,
	events, errors, folded, reminders_sent, actions_run, resolved, state)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
	fs_key = excluded.fs_key, error_kind = excluded.error_kind, opened = excluded.opened,
	last_event = excluded.last_event, last_alert = excluded.last_alert,
	next_reminder = excluded.next_reminder, folded_since = excluded.folded_since,
	events = excluded.events, errors = excluded.errors, folded = excluded.folded,
	reminders_sent = excluded.reminders_sent, actions_run = excluded.actions_run,
	resolved = excluded.resolved, state = excluded.state`},
		{&st.setExt4, `INSERT INTO ext4_reported (uuid, count, updated) VALUES (?, ?, ?)
ON CONFLICT (uuid) DO UPDATE SET count = excluded.count, updated = excluded.updated`},
	} {
		stmt, err := s.db.Prepare(p.sql)
		if err != nil {
			st.close()
			return s.errf("preparing statements", err)
		}
		*p.dst = stmt
	}
	sum, err := prepareSummary(context.Background(), s.db)
	if err != nil {
		st.close()
		return s.errf("preparing statements", err)
	}
	st.summary = sum
	s.mu.Lock()
	s.stmts = st
	s.mu.Unlock()
	return nil
}

// fsName is one name of a file system, as kept in fs_names.
type fsName struct{ name, key string }

// fsUpdate is what one batch changes in one file system's row.
type fsUpdate struct {
	key, uuid, device, fstype, label string
	mountpoints                      []string
	errors, events                   uint64
	firstError, lastError            int64
	lastErrno, lastEventID           string
}

// encoded is a batch prepared for the database outside the lock.
type encoded struct {
	events     [][]byte
	fsKeys     []string
	fs         []*fsUpdate
	deliveries [][]byte
	argv       [][]byte
	actionsRun [][]byte
}

// encode validates b and marshals what it stores as JSON.
func encode(b *Batch) (*encoded, error) {
	e := &encoded{
		events:     make([][]byte, len(b.Events)),
		fsKeys:     make([]string, len(b.Events)),
		deliveries: make([][]byte, len(b.Deliveries)),
		argv:       make([][]byte, len(b.Actions)),
		actionsRun: make([][]byte, len(b.Incidents)),
	}
	byKey := map[string]*fsUpdate{}
	for i := range b.Events {
		ev := &b.Events[i]
		if ev.ID == "" {
			return nil, fmt.Errorf("event %d of the batch has no id", i)
		}
		j, err := event.AppendObject(nil, ev)
		if err != nil {
			return nil, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		e.events[i] = j
		key := ev.FSKey()
		e.fsKeys[i] = key
		if key == "" {
			continue
		}
		u := byKey[key]
		if u == nil {
			u = &fsUpdate{key: key}
			byKey[key] = u
			e.fs = append(e.fs, u)
		}
		u.events++
		// The newest event's identity wins.
		u.uuid, u.device, u.fstype, u.label = nonEmpty(ev.UUID, u.uuid), nonEmpty(ev.Device, u.device), nonEmpty(ev.FSType, u.fstype), nonEmpty(ev.Label, u.label)
		if len(ev.Mountpoints) > 0 {
			u.mountpoints = ev.Mountpoints
		}
		if ev.Kind == event.KindError {
			t := ns(ev.Time.Time)
			if t == 0 {
				t = time.Now().UnixNano()
			}
			u.errors += uint64(ev.ErrorCount)
			if u.firstError == 0 {
				u.firstError = t
			}
			u.lastError, u.lastErrno, u.lastEventID = t, ev.Error, ev.ID
		}
	}
	for i := range b.Deliveries {
		d := &b.Deliveries[i]
		if d.Channel == "" {
			return nil, fmt.Errorf("delivery %d of the batch (alert %s) has no channel", i, d.Alert.ID)
		}
		j, err := json.Marshal(&d.Alert)
		if err != nil {
			return nil, fmt.Errorf("alert %s: %w", d.Alert.ID, err)
		}
		e.deliveries[i] = j
	}
	for i := range b.Actions {
		a := &b.Actions[i]
		if a.Name == "" {
			return nil, fmt.Errorf("action %d of the batch has no name", i)
		}
		j, err := json.Marshal(nonNil(a.Argv))
		if err != nil {
			return nil, err
		}
		e.argv[i] = j
	}
	for i := range b.Incidents {
		in := &b.Incidents[i]
		if in.Key == "" {
			if in.FSKey == "" || in.ErrorKind == "" {
				return nil, fmt.Errorf("incident %d of the batch has no key", i)
			}
			in.Key = IncidentKey(in.FSKey, in.ErrorKind)
		}
		if in.FSKey == "" {
			in.FSKey = fsKeyOfIncident(in.Key)
		}
		j, err := json.Marshal(nonNil(in.ActionsRun))
		if err != nil {
			return nil, err
		}
		e.actionsRun[i] = j
	}
	return e, nil
}

func nonEmpty(s, old string) string {
	if s != "" {
		return s
	}
	return old
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Commit writes b in one transaction: the events, the health rows of their
// file systems, the incidents, the action intents, the outbox rows and the
// reported ext4 and btrfs state. When it returns nil, all of it is on
// stable storage; when it returns an error (a duplicate event id, say),
// none of it was written. On success it sets the IDs of b.Deliveries and
// b.Actions, calls b.Durable, and then writes the error summary and
// damaged files of the events in a second transaction, without an
// fdatasync of its own (see Store.sumConn): so the transaction the alerts
// wait for writes the fewest pages, and readers see the summary a moment
// after the events (until the next Open if the process dies in between).
func (s *Store) Commit(ctx context.Context, b *Batch) error {
	if b == nil || b.empty() {
		return nil
	}
	enc, err := encode(b)
	if err != nil {
		return s.errf("commit", err)
	}
	if s.readOnly {
		return fmt.Errorf("%s: commit: database is open read-only", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return fmt.Errorf("%s: commit: database is closed", s.path)
	}
	c := &committer{s: s, ctx: ctx, b: b, enc: enc, now: time.Now(), sum: newSummary(summaryAll),
		deliveryIDs: make([]int64, len(b.Deliveries)), actionIDs: make([]int64, len(b.Actions))}
	for i := range b.Events {
		c.sum.add(&b.Events[i], enc.fsKeys[i])
	}
	steps := []func() error{c.filesystems, c.events, c.incidents, c.actions, c.deliveries, c.ext4Reported, c.btrfsCounters}
	if s.sumConn == nil {
		// In memory: the summary costs no fdatasync.
		steps = append(steps, c.summary)
	}
	// Not writeLocked: a summary still pending is written after this
	// commit, with this one's, not before it.
	err = s.inTx(ctx, s.db, "commit", func(tx *sql.Tx) error {
		c.tx = tx
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.committed()
	if b.Durable != nil {
		b.Durable()
	}
	if s.sumConn != nil && len(b.Events) > 0 {
		s.pending = append(s.pending, pendingSummary{c.sum, c.lastSeq})
		// The batch is committed whatever happens here: a summary that
		// fails to be written stays pending, and the next write (or
		// Close, or the next Open, from the events) writes it first.
		s.writeSummaries(ctx)
	}
	return nil
}

// committer is one Commit in progress: each of its steps writes one part of
// the batch in the transaction tx.
type committer struct {
	s   *Store
	ctx context.Context
	tx  *sql.Tx
	b   *Batch
	enc *encoded
	// now is the commit's time: of intents, deliveries and reported state
	// without one of their own.
	now time.Time
	// newNames are the names of file systems added to fs_names, cached
	// once the transaction commits.
	newNames []fsName
	// deliveryIDs and actionIDs are the ids of the new rows, given to the
	// batch once the transaction commits.
	deliveryIDs, actionIDs []int64
	// sum is the error summary of the events; lastSeq the sequence
	// number of the last of them.
	sum     *summary
	lastSeq int64
}

// filesystems updates the health row of each file system of the events,
// and records the names it is known by.
func (c *committer) filesystems() error {
	if len(c.enc.fs) == 0 {
		return nil
	}
	upsert := c.tx.StmtContext(c.ctx, c.s.stmts.upsertFS)
	name := c.tx.StmtContext(c.ctx, c.s.stmts.insertName)
	for _, u := range c.enc.fs {
		mp, err := json.Marshal(nonNil(u.mountpoints))
		if err != nil {
			return err
		}
		if _, err := upsert.ExecContext(c.ctx, u.key, u.uuid, u.device, u.fstype, u.label, string(mp),
			int64(u.errors), int64(u.events), u.firstError, u.lastError, u.lastErrno, u.lastEventID); err != nil {
			return fmt.Errorf("file system %s: %w", u.key, err)
		}
		for _, n := range append([]string{u.uuid, u.device}, u.mountpoints...) {
			fn := fsName{n, u.key}
			if _, ok := c.s.names[fn]; ok || n == "" {
				continue
			}
			if _, err := name.ExecContext(c.ctx, n, u.key); err != nil {
				return err
			}
			c.newNames = append(c.newNames, fn)
		}
	}
	return nil
}

// events adds the events to the history.
func (c *committer) events() error {
	if len(c.b.Events) == 0 {
		return nil
	}
	ins := c.tx.StmtContext(c.ctx, c.s.stmts.insertEvent)
	for i := range c.b.Events {
		ev := &c.b.Events[i]
		var key any
		if c.enc.fsKeys[i] != "" {
			key = c.enc.fsKeys[i]
		}
		r, err := ins.ExecContext(c.ctx, ev.ID, ns(ev.Time.Time), ev.Kind, key, ev.Error, int64(ev.ErrorCount), c.enc.events[i])
		if err != nil {
			if isConstraint(err) {
				return fmt.Errorf("event %s: %w (duplicate id?)", ev.ID, err)
			}
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
		if c.lastSeq, err = r.LastInsertId(); err != nil {
			return err
		}
	}
	return nil
}

// summary adds the error events to the error summary (fshealth report)
// and their inodes to the damaged files (fshealth status --files).
func (c *committer) summary() error {
	if len(c.b.Events) == 0 {
		return nil
	}
	if c.sum.empty() {
		return nil
	}
	return c.sum.write(c.ctx, c.s.stmts.summary.inTx(c.ctx, c.tx))
}

// incidents inserts or replaces the incidents.
func (c *committer) incidents() error {
	if len(c.b.Incidents) == 0 {
		return nil
	}
	up := c.tx.StmtContext(c.ctx, c.s.stmts.upsertIncident)
	for i := range c.b.Incidents {
		in := &c.b.Incidents[i]
		if _, err := up.ExecContext(c.ctx, in.Key, in.FSKey, in.ErrorKind, ns(in.Opened), ns(in.LastEvent), ns(in.LastAlert),
			ns(in.NextReminder), ns(in.FoldedSince), int64(in.Events), int64(in.Errors), int64(in.Folded),
			in.RemindersSent, string(c.enc.actionsRun[i]), ns(in.Resolved), string(in.State)); err != nil {
			return fmt.Errorf("incident %s: %w", in.Key, err)
		}
	}
	return nil
}

// actions adds the action intents, pending.
func (c *committer) actions() error {
	if len(c.b.Actions) == 0 {
		return nil
	}
	ins := c.tx.StmtContext(c.ctx, c.s.stmts.insertAction)
	for i := range c.b.Actions {
		a := &c.b.Actions[i]
		fsKey := a.FSKey
		if fsKey == "" {
			fsKey = fsKeyOfIncident(a.IncidentKey)
		}
		r, err := ins.ExecContext(c.ctx, c.s.newID(), a.IncidentKey, fsKey, a.EventID, a.Name, string(c.enc.argv[i]), a.DryRun, int64(a.Timeout), ns(c.now))
		if err != nil {
			return fmt.Errorf("action %s: %w", a.Name, err)
		}
		if c.actionIDs[i], err = r.LastInsertId(); err != nil {
			return err
		}
	}
	return nil
}

// deliveries adds the outbox rows, pending.
func (c *committer) deliveries() error {
	if len(c.b.Deliveries) == 0 {
		return nil
	}
	ins := c.tx.StmtContext(c.ctx, c.s.stmts.insertDelivery)
	for i := range c.b.Deliveries {
		d := &c.b.Deliveries[i]
		created := d.Created
		if created.IsZero() {
			created = c.now
		}
		next := d.NextAttempt
		if next.IsZero() {
			next = created
		}
		r, err := ins.ExecContext(c.ctx, c.s.newID(), d.Channel, d.Alert.ID, c.enc.deliveries[i], ns(created), d.Attempts,
			ns(next), d.LastError)
		if err != nil {
			return fmt.Errorf("delivery of alert %s to %s: %w", d.Alert.ID, d.Channel, err)
		}
		if c.deliveryIDs[i], err = r.LastInsertId(); err != nil {
			return err
		}
	}
	return nil
}

// ext4Reported records the ext4 errors_count reported per file system.
func (c *committer) ext4Reported() error {
	if len(c.b.Ext4Reported) == 0 {
		return nil
	}
	set := c.tx.StmtContext(c.ctx, c.s.stmts.setExt4)
	for uuid, n := range c.b.Ext4Reported {
		if _, err := set.ExecContext(c.ctx, uuid, int64(n), ns(c.now)); err != nil {
			return fmt.Errorf("ext4 state of %s: %w", uuid, err)
		}
	}
	return nil
}

// btrfsCounters records the btrfs device error counters last read.
func (c *committer) btrfsCounters() error {
	for uuid, devs := range c.b.BtrfsCounters {
		j, err := json.Marshal(devs)
		if err != nil {
			return err
		}
		if _, err := c.tx.ExecContext(c.ctx, `INSERT INTO btrfs_counters(uuid, devs, updated) VALUES (?, ?, ?)
			ON CONFLICT(uuid) DO UPDATE SET devs = excluded.devs, updated = excluded.updated`, uuid, string(j), ns(c.now)); err != nil {
			return fmt.Errorf("btrfs counters of %s: %w", uuid, err)
		}
	}
	return nil
}

// committed gives the batch what the committed transaction decided (the
// ids of its new rows and their defaults) and caches the new names.
func (c *committer) committed() {
	for _, n := range c.newNames {
		c.s.names[n] = struct{}{}
	}
	for i, id := range c.deliveryIDs {
		d := &c.b.Deliveries[i]
		d.ID, d.State = id, StatePending
		if d.Created.IsZero() {
			d.Created = c.now
		}
		if d.NextAttempt.IsZero() {
			d.NextAttempt = d.Created
		}
	}
	for i, id := range c.actionIDs {
		a := &c.b.Actions[i]
		a.ID, a.State = id, StatePending
		if a.FSKey == "" {
			a.FSKey = fsKeyOfIncident(a.IncidentKey)
		}
	}
}

// isConstraint reports whether err is a constraint violation.
func isConstraint(err error) bool {
	var ce interface{ Code() int }
	if errors.As(err, &ce) {
		return ce.Code()&0xff == 19 // SQLITE_CONSTRAINT
	}
	return false
}
