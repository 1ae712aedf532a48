package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// memSeq numbers the in-memory databases of the process.
var memSeq atomic.Int64

// OpenMemory opens an empty in-memory store with the same schema, for when
// the database on disk cannot be used (degraded mode). Outbox rows and
// actions it creates get ids from floor up, so that they can later be merged
// into the disk database under the same ids (MergeInto): floor must be above
// every id the disk database has.
func OpenMemory(floor int64) (*Store, error) {
	name := "fshealth-mem-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(memSeq.Add(1), 10)
	q := url.Values{}
	q.Set("mode", "memory")
	q.Set("cache", "shared")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+name+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("in-memory history: %w", err)
	}
	// One connection: the memory database lives as long as it does, and
	// shared-cache connections would lock each other out.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{path: "in-memory history", file: name, db: db, mem: true, nextID: max(floor, 1), names: map[fsName]struct{}{}}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// InMemory reports whether s is an in-memory store.
func (s *Store) InMemory() bool { return s.mem }

// newID returns the id for a new outbox row or action: nil (SQLite chooses)
// on disk, the next of the store's own ids in memory. The caller holds s.mu.
func (s *Store) newID() any {
	if !s.mem {
		return nil
	}
	s.nextID++
	return s.nextID - 1
}

// attached runs fn on one connection of s with the in-memory store mem
// attached as "mem": in one write transaction if inTx, else each statement
// on its own (so a database on a read-only file system can be read).
func (s *Store) attached(ctx context.Context, mem *Store, op string, inTx bool, fn func(q queryExecer) error) error {
	if !mem.mem {
		return fmt.Errorf("%s: %s: %s is not an in-memory store", s.path, op, mem.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.writeSummaries(ctx); err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.errf(op, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS mem`, "file:"+mem.file+"?mode=memory&cache=shared"); err != nil {
		return s.errf(op, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE mem`)
	if !inTx {
		if err := fn(conn); err != nil {
			return s.errf(op, err)
		}
		return nil
	}
	return s.inTx(ctx, conn, op, func(tx *sql.Tx) error { return fn(tx) })
}

// queryExecer is what *sql.Conn and *sql.Tx have in common.
type queryExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// seedQueries copy, from the database "src" to the in-memory "dst", what
// the in-memory store needs to carry on (see SeedMemory).
var seedQueries = []string{
	`INSERT OR REPLACE INTO dst.outbox SELECT * FROM src.outbox WHERE state = 'pending'`,
	`INSERT OR REPLACE INTO dst.actions SELECT * FROM src.actions WHERE state = 'pending'`,
	`INSERT OR REPLACE INTO dst.ext4_reported SELECT * FROM src.ext4_reported`,
	`INSERT OR REPLACE INTO dst.btrfs_counters SELECT * FROM src.btrfs_counters`,
	`INSERT OR IGNORE INTO dst.filesystems (key, uuid, device, fstype, label, mountpoints, watched)
		SELECT key, uuid, device, fstype, label, mountpoints, watched FROM src.filesystems`,
	`INSERT OR IGNORE INTO dst.fs_names SELECT * FROM src.fs_names`,
}

// seedTop is the highest outbox or action id of "src".
const seedTop = `SELECT max(coalesce((SELECT max(id) FROM src.outbox), 0), coalesce((SELECT max(id) FROM src.actions), 0))`

// seed runs the seed queries with src and dst named, and returns the
// highest id of src.
func seed(ctx context.Context, q queryExecer, src, dst string) (int64, error) {
	r := strings.NewReplacer("src.", src+".", "dst.", dst+".")
	for _, s := range seedQueries {
		if _, err := q.ExecContext(ctx, r.Replace(s)); err != nil {
			return 0, err
		}
	}
	var top int64
	err := q.QueryRowContext(ctx, r.Replace(seedTop)).Scan(&top)
	return top, err
}

// SeedMemory copies into the in-memory store mem what it needs to carry on
// from s: the pending outbox rows and actions (under their ids, so a
// delivery or action in flight is recorded in mem), what was reported of
// ext4 and btrfs counters, and the identity of every file system (with
// counters at zero: MergeInto adds mem's counts). mem's next id is set above
// every id of s. The caller must not use mem meanwhile.
func (s *Store) SeedMemory(ctx context.Context, mem *Store) error {
	var top int64
	err := s.attached(ctx, mem, "copying the pending state to memory", false, func(q queryExecer) (err error) {
		top, err = seed(ctx, q, "main", "mem")
		return err
	})
	if err != nil {
		return err
	}
	mem.raiseNextID(top + 1)
	return nil
}

// SeedFrom is SeedMemory from the database file at path, opened read-only
// (it cannot be opened for writing: it is on a read-only or full file
// system). s must be an in-memory store.
func (s *Store) SeedFrom(ctx context.Context, path string) error {
	if !s.mem {
		return fmt.Errorf("%s: seeding: not an in-memory store", s.path)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	top, err := s.seedFrom(ctx, path, "mode=ro")
	if err != nil {
		// A database in WAL mode cannot be opened read-only on a
		// read-only file system without its shared-memory file; with
		// no write-ahead log left to read, it can be as immutable.
		if fi, serr := os.Stat(path + "-wal"); errors.Is(serr, fs.ErrNotExist) || serr == nil && fi.Size() == 0 {
			top, err = s.seedFrom(ctx, path, "mode=ro&immutable=1")
		}
	}
	if err != nil {
		return fmt.Errorf("%s: copying the pending state to memory: %w", path, err)
	}
	s.nextID = max(s.nextID, top+1)
	return nil
}

// seedFrom is SeedFrom with the URI parameters query; the caller holds
// s.mu.
func (s *Store) seedFrom(ctx context.Context, path, query string) (int64, error) {
	u := url.URL{Scheme: "file", Path: path, RawQuery: query}
	var top int64
	err := func() error {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS disk`, u.String()); err != nil {
			return err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `DETACH DATABASE disk`)
		var v int
		if err := conn.QueryRowContext(ctx, `SELECT version FROM disk.schema_version`).Scan(&v); err != nil {
			return err
		}
		if v != len(migrations) {
			return fmt.Errorf("schema version %d, not %d", v, len(migrations))
		}
		top, err = seed(ctx, conn, "disk", "main")
		return err
	}()
	return top, err
}

// raiseNextID makes the next id at least n.
func (s *Store) raiseNextID(n int64) {
	s.mu.Lock()
	s.nextID = max(s.nextID, n)
	s.mu.Unlock()
}

// MergeStats says what MergeInto committed.
type MergeStats struct {
	// Events counts the events added to the history.
	Events int64
	// Deliveries counts the outbox rows added or updated.
	Deliveries int64
}

// MergeInto commits everything the in-memory store mem recorded into s, in
// one transaction: the events (an event already there is not added again),
// the file systems' counters (added), the incidents, actions, outbox rows
// (under their ids: rows SeedMemory copied update their originals) and the
// reported counters. The caller must not use mem meanwhile, and drops it
// afterwards: merging twice would add the counters twice.
func (s *Store) MergeInto(ctx context.Context, mem *Store) (MergeStats, error) {
	var st MergeStats
	err := s.attached(ctx, mem, "committing the history kept in memory", true, func(tx queryExecer) error {
		// The files damaged before a file system was marked healthy in
		// memory are not damaged any more.
		if _, err := tx.ExecContext(ctx, `DELETE FROM main.damaged_files WHERE EXISTS (SELECT 1 FROM mem.filesystems AS m
JOIN main.filesystems AS f ON f.key = m.key WHERE m.key = damaged_files.fs_key AND m.healthy_since > f.healthy_since)`); err != nil {
			return err
		}
		// The events not yet in the history are summarised as Commit
		// would have (an event carried from it is there already).
		t := tx.(*sql.Tx)
		err := summariseStored(ctx, t, summaryGroups, `SELECT fs_key, json FROM mem.events
WHERE kind = 'error' AND id NOT IN (SELECT id FROM main.events) ORDER BY seq`)
		if err == nil {
			err = summariseStored(ctx, t, summaryFiles, `SELECT e.fs_key, e.json FROM mem.events AS e
WHERE e.kind = 'error' AND e.id NOT IN (SELECT id FROM main.events)
	AND e.time >= max(coalesce((SELECT healthy_since FROM mem.filesystems WHERE key = e.fs_key), 0),
		coalesce((SELECT healthy_since FROM main.filesystems WHERE key = e.fs_key), 0))
ORDER BY e.seq`)
		}
		if err != nil {
			return fmt.Errorf("summarising the history kept in memory: %w", err)
		}
		for _, q := range []struct {
			sql   string
			count *int64
		}{
			{`INSERT INTO main.filesystems (key, uuid, device, fstype, label, mountpoints, watched, errors, total_errors,
	events, first_error, last_error, last_errno, last_event_id, healthy_since)
SELECT key, uuid, device, fstype, label, mountpoints, watched, errors, total_errors,
	events, first_error, last_error, last_errno, last_event_id, healthy_since FROM mem.filesystems WHERE true
ON CONFLICT (key) DO UPDATE SET
	uuid = iif(excluded.uuid <> '', excluded.uuid, uuid),
	device = iif(excluded.device <> '', excluded.device, device),
	fstype = iif(excluded.fstype <> '', excluded.fstype, fstype),
	label = iif(excluded.label <> '', excluded.label, label),
	mountpoints = iif(excluded.mountpoints <> '[]', excluded.mountpoints, mountpoints),
	watched = excluded.watched,
	errors = iif(excluded.healthy_since > healthy_since, excluded.errors, errors + excluded.errors),
	first_error = iif(excluded.healthy_since > healthy_since, excluded.first_error,
		iif(first_error = 0, excluded.first_error, first_error)),
	healthy_since = max(healthy_since, excluded.healthy_since),
	total_errors = total_errors + excluded.total_errors,
	events = events + excluded.events,
	last_error = iif(excluded.last_error <> 0, excluded.last_error, last_error),
	last_errno = iif(excluded.last_error <> 0, excluded.last_errno, last_errno),
	last_event_id = iif(excluded.last_error <> 0, excluded.last_event_id, last_event_id)`, nil},
			{`INSERT OR IGNORE INTO main.fs_names SELECT * FROM mem.fs_names`, nil},
			{`INSERT OR IGNORE INTO main.events (id, time, kind, fs_key, errno, error_count, json)
SELECT id, time, kind, fs_key, errno, error_count, json FROM mem.events ORDER BY seq`, &st.Events},
			{`INSERT OR REPLACE INTO main.incidents SELECT * FROM mem.incidents`, nil},
			{`INSERT INTO main.actions SELECT * FROM mem.actions WHERE true
ON CONFLICT (id) DO UPDATE SET state = excluded.state, started = excluded.started, finished = excluded.finished,
	outcome = excluded.outcome, output = excluded.output`, nil},
			{`INSERT INTO main.outbox SELECT * FROM mem.outbox WHERE true
ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, next_attempt = excluded.next_attempt,
	last_error = excluded.last_error, state = excluded.state, delivered = excluded.delivered`, &st.Deliveries},
			{`INSERT OR REPLACE INTO main.ext4_reported SELECT * FROM mem.ext4_reported`, nil},
			{`INSERT OR REPLACE INTO main.btrfs_counters SELECT * FROM mem.btrfs_counters`, nil},
		} {
			r, err := tx.ExecContext(ctx, q.sql)
			if err != nil {
				return err
			}
			if q.count != nil {
				if *q.count, err = r.RowsAffected(); err != nil {
					return err
				}
			}
		}
		// The summary was complete (attached wrote what was pending)
		// and now has the merged events too.
		return setSummarised(ctx, tx, "main.")
	})
	if err != nil {
		return MergeStats{}, err
	}
	// Identities cached before the merge may be missing rows now added.
	s.mu.Lock()
	s.names = map[fsName]struct{}{}
	s.mu.Unlock()
	return st, nil
}

// Trim bounds an in-memory store: it deletes the oldest events beyond
// maxEvents, and delivered or given-up outbox rows it created itself beyond
// maxEvents, and returns how many events it deleted.
func (s *Store) Trim(ctx context.Context, maxEvents int) (int64, error) {
	if !s.mem {
		return 0, fmt.Errorf("%s: trimming: not an in-memory store", s.path)
	}
	var dropped int64
	err := s.write(ctx, "trimming", func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq <= (SELECT max(seq) FROM events) - ?`, maxEvents)
		if err != nil {
			return err
		}
		if dropped, err = r.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM outbox WHERE state <> 'pending' AND id IN
			(SELECT id FROM outbox WHERE state <> 'pending' ORDER BY id DESC LIMIT -1 OFFSET ?)`, maxEvents)
		return err
	})
	return dropped, err
}

// CountEvents returns the number of events in the store.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil {
		return 0, s.errf("counting events", err)
	}
	return n, nil
}

// SQLite primary result codes that mean the storage is at fault.
const (
	sqlitePerm     = 3
	sqliteReadOnly = 8
	sqliteIOErr    = 10
	sqliteCorrupt  = 11
	sqliteFull     = 13
	sqliteCantOpen = 14
	sqliteNotADB   = 26
)

// sqliteCode returns the primary SQLite result code in err's chain, or 0.
func sqliteCode(err error) int {
	var ce interface{ Code() int }
	if errors.As(err, &ce) {
		return ce.Code() & 0xff
	}
	return 0
}

// IsCorrupt reports whether err says the database file is damaged or not a
// database at all: such a file is moved aside (MoveAside) for a new one.
func IsCorrupt(err error) bool {
	c := sqliteCode(err)
	return c == sqliteCorrupt || c == sqliteNotADB
}

// IsStorageFault reports whether err is the storage failing (I/O error, full,
// read-only, corrupt, cannot open, permission, a newer schema) rather than
// a mistake of the caller: the daemon then keeps its history in memory.
func IsStorageFault(err error) bool {
	if err == nil {
		return false
	}
	switch sqliteCode(err) {
	case sqlitePerm, sqliteReadOnly, sqliteIOErr, sqliteCorrupt, sqliteFull, sqliteCantOpen, sqliteNotADB:
		return true
	}
	if errors.Is(err, ErrNewerSchema) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EIO, syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT, syscall.ELOOP,
		syscall.ENOTDIR, syscall.EUCLEAN, syscall.ESHUTDOWN, syscall.ENXIO, syscall.ENODEV} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Cause says in a few words what kind of storage fault err is.
func Cause(err error) string {
	switch {
	case errors.Is(err, ErrNewerSchema):
		return "written by a newer fshealth"
	case errors.Is(err, syscall.EROFS):
		return "read-only file system"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "file system full"
	case errors.Is(err, syscall.EIO):
		return "I/O error"
	}
	switch sqliteCode(err) {
	case sqliteReadOnly:
		return "read-only"
	case sqliteIOErr:
		return "I/O error"
	case sqliteCorrupt:
		return "database corrupt"
	case sqliteNotADB:
		return "not a database"
	case sqliteFull:
		return "file system full"
	case sqliteCantOpen:
		return "cannot open the database"
	case sqlitePerm:
		return "permission denied"
	}
	return "unusable"
}

// QuickCheck runs SQLite's quick_check on the database; an error wrapping
// a SQLITE_CORRUPT code (IsCorrupt) says it is damaged.
func (s *Store) QuickCheck(ctx context.Context) error {
	var res string
	if err := s.db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&res); err != nil {
		return s.errf("checking", err)
	}
	if res != "ok" {
		return s.errf("checking", &corruptError{res})
	}
	return nil
}

// corruptError is a failed integrity check; it has SQLite's SQLITE_CORRUPT
// code, so IsCorrupt recognises it.
type corruptError struct{ msg string }

func (e *corruptError) Error() string { return "database corrupt: " + e.msg }

// Code returns SQLITE_CORRUPT.
func (e *corruptError) Code() int { return sqliteCorrupt }
