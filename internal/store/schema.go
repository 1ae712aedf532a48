package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// migrations[i] brings the schema from version i to version i+1. Append new
// migrations; never edit one that has been released.
var migrations = []string{
	// Version 1.
	`
CREATE TABLE schema_version (
	version INTEGER NOT NULL
);

-- One row per file system ever seen: its identity and health. Rows are never
-- deleted, so health and counters survive pruning and unmounting.
CREATE TABLE filesystems (
	key           TEXT PRIMARY KEY,           -- UUID if known, else device
	uuid          TEXT NOT NULL DEFAULT '',
	device        TEXT NOT NULL DEFAULT '',
	fstype        TEXT NOT NULL DEFAULT '',
	label         TEXT NOT NULL DEFAULT '',
	mountpoints   TEXT NOT NULL DEFAULT '[]', -- JSON array
	watched       INTEGER NOT NULL DEFAULT 0,
	errors        INTEGER NOT NULL DEFAULT 0, -- since healthy_since
	total_errors  INTEGER NOT NULL DEFAULT 0,
	events        INTEGER NOT NULL DEFAULT 0,
	first_error   INTEGER NOT NULL DEFAULT 0, -- since healthy_since
	last_error    INTEGER NOT NULL DEFAULT 0,
	last_errno    TEXT NOT NULL DEFAULT '',
	last_event_id TEXT NOT NULL DEFAULT '',
	healthy_since INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Every name a file system is known by (UUID, device, mount points), for
-- EventQuery.FS.
CREATE TABLE fs_names (
	name   TEXT NOT NULL,
	fs_key TEXT NOT NULL REFERENCES filesystems(key),
	PRIMARY KEY (name, fs_key)
) WITHOUT ROWID;

-- The history: each event as the JSON object fshealth prints.
CREATE TABLE events (
	seq         INTEGER PRIMARY KEY,        -- commit order
	id          TEXT NOT NULL UNIQUE,
	time        INTEGER NOT NULL,           -- Unix ns
	kind        TEXT NOT NULL,
	fs_key      TEXT REFERENCES filesystems(key), -- NULL if none
	errno       TEXT NOT NULL,
	error_count INTEGER NOT NULL,
	json        BLOB NOT NULL
);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_fs_time ON events(fs_key, time);

-- The outbox: one row per alert and channel.
CREATE TABLE outbox (
	id           INTEGER PRIMARY KEY,
	channel      TEXT NOT NULL,
	alert_id     TEXT NOT NULL,
	alert        BLOB NOT NULL,             -- JSON
	created      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
	delivered    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(state, next_attempt);
CREATE INDEX outbox_created ON outbox(created);

-- Policy state that must survive restarts.
CREATE TABLE incidents (
	key            TEXT PRIMARY KEY,
	fs_key         TEXT NOT NULL,
	error_kind     TEXT NOT NULL,
	opened         INTEGER NOT NULL,
	last_event     INTEGER NOT NULL,
	last_alert     INTEGER NOT NULL,
	next_reminder  INTEGER NOT NULL,
	folded_since   INTEGER NOT NULL,
	events         INTEGER NOT NULL,
	errors         INTEGER NOT NULL,
	folded         INTEGER NOT NULL,
	reminders_sent INTEGER NOT NULL,
	actions_run    TEXT NOT NULL,           -- JSON array
	resolved       INTEGER NOT NULL,        -- 0 while open
	state          TEXT NOT NULL DEFAULT '' -- the policy engine's full state (JSON), opaque here
) WITHOUT ROWID;
CREATE INDEX incidents_resolved ON incidents(resolved);

-- Recovery actions: intents, then outcomes.
CREATE TABLE actions (
	id           INTEGER PRIMARY KEY,
	incident_key TEXT NOT NULL,
	fs_key       TEXT NOT NULL,
	event_id     TEXT NOT NULL,
	name         TEXT NOT NULL,
	argv         TEXT NOT NULL,             -- JSON array
	dry_run      INTEGER NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
	created      INTEGER NOT NULL,
	started      INTEGER NOT NULL DEFAULT 0,
	finished     INTEGER NOT NULL DEFAULT 0,
	outcome      TEXT NOT NULL DEFAULT '',
	output       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX actions_pending ON actions(id) WHERE state = 'pending';
CREATE INDEX actions_fs ON actions(fs_key, id);
CREATE INDEX actions_finished ON actions(finished) WHERE state <> 'pending';

-- The ext4 errors_count fshealth has reported, per file system UUID.
CREATE TABLE ext4_reported (
	uuid    TEXT PRIMARY KEY,
	count   INTEGER NOT NULL,
	updated INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// Version 2.
	`
-- The btrfs device error counters last read (and reported), per file
-- system UUID, as a JSON array of btrfs.DeviceStats.
CREATE TABLE btrfs_counters (
	uuid    TEXT PRIMARY KEY,
	devs    TEXT NOT NULL,
	updated INTEGER NOT NULL
) WITHOUT ROWID;
`,
	// Version 3.
	`
-- The timeout of each action, in nanoseconds; 0: the default.
ALTER TABLE actions ADD COLUMN timeout INTEGER NOT NULL DEFAULT 0;
`,
	// Version 4.
	`
-- Requests of the command line to the running daemon (fshealth resolve):
-- pending while done = 0.
CREATE TABLE requests (
	id      INTEGER PRIMARY KEY,
	kind    TEXT NOT NULL,
	fs_key  TEXT NOT NULL,
	note    TEXT NOT NULL DEFAULT '',
	created INTEGER NOT NULL,
	done    INTEGER NOT NULL DEFAULT 0,
	outcome TEXT NOT NULL DEFAULT ''
);
CREATE INDEX requests_pending ON requests(id) WHERE done = 0;
`,
	// Version 5.
	`
-- The history summarised at commit time, for fshealth report and check:
-- per time bucket of span hours (1, 24 and 720: hours, days and 30-day
-- periods; bucket = Unix time / span), file system and grouping (dim:
-- location, errno, source, file, device, disk, region), the errors and
-- events of each value, and the first and last time. A period is read from
-- its whole 30-day buckets, then whole days, then whole hours, then the
-- events of its first, partial hour. The rows of one bucket are adjacent,
-- so a commit updates few pages. Prune deletes the buckets it deletes all
-- the events of.
CREATE TABLE error_groups (
	span   INTEGER NOT NULL,
	bucket INTEGER NOT NULL,
	dim    TEXT NOT NULL,
	fs_key TEXT NOT NULL,
	value  TEXT NOT NULL,
	label  TEXT NOT NULL DEFAULT '',          -- file: a path it was known by
	errors INTEGER NOT NULL,
	events INTEGER NOT NULL,
	first  INTEGER NOT NULL,
	last   INTEGER NOT NULL,
	PRIMARY KEY (span, bucket, dim, fs_key, value)
) WITHOUT ROWID;

-- The errors and events of each file system per hour and per day (span 1
-- and 24, as above), for the rate chart of fshealth report.
CREATE TABLE error_rate (
	span   INTEGER NOT NULL,
	bucket INTEGER NOT NULL,
	fs_key TEXT NOT NULL,
	errors INTEGER NOT NULL,
	events INTEGER NOT NULL,
	PRIMARY KEY (span, bucket, fs_key)
) WITHOUT ROWID;

-- The files (inodes) that reported errors since their file system was
-- last marked healthy (which empties its list), like zpool status -v.
CREATE TABLE damaged_files (
	fs_key       TEXT NOT NULL,
	inode        INTEGER NOT NULL,
	generation   INTEGER NOT NULL,            -- -1: unknown
	path         TEXT NOT NULL DEFAULT '',
	path_pending INTEGER NOT NULL DEFAULT 0,
	path_error   TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL DEFAULT '',    -- '', 'deleted', 'replaced'
	errno        TEXT NOT NULL DEFAULT '',    -- of the last error
	errors       INTEGER NOT NULL,
	events       INTEGER NOT NULL,
	first        INTEGER NOT NULL,
	last         INTEGER NOT NULL,
	PRIMARY KEY (fs_key, inode, generation)
) WITHOUT ROWID;

-- The events whose path is still pending, for AttachPath and PendingPaths
-- without a scan of the whole history.
CREATE INDEX events_path_pending ON events(fs_key, seq) WHERE instr(json, '"path_pending":true') > 0;
`,
	// Version 6.
	`
-- How far the error summary (error_groups, error_rate, damaged_files) has
-- got: every event up to seq is in it. Commit writes the summary in a
-- transaction of its own right after the events' (which is the one the
-- alerts wait for); Open summarises the events after seq (a crash between
-- the two). One row.
CREATE TABLE summarised (
	seq INTEGER NOT NULL
);
INSERT INTO summarised (seq) SELECT coalesce(max(seq), 0) FROM events;
`,
}

// backfills[v], if set, runs in the transaction of the migration to
// version v, after its SQL: it fills what the new tables derive from the
// data already there.
var backfills = map[int]func(ctx context.Context, tx *sql.Tx) error{
	5: backfillSummaries,
}

// SchemaVersion is the schema version this code reads and writes: the number
// of migrations (a test checks that they agree).
const SchemaVersion = 6

// migrate brings the schema up to SchemaVersion in one transaction, or fails
// if the database is newer than this code or not an fshealth database.
func (s *Store) migrate() error {
	ctx := context.Background()
	// _txlock=immediate: BEGIN takes the write lock, so two processes
	// opening a new database do not both create the schema.
	return s.writeLocked(ctx, "opening", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil {
			return err
		}
		v := 0
		if n == 1 {
			err := tx.QueryRow(`SELECT version FROM schema_version`).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return errors.New("schema_version is empty")
			}
			if err != nil {
				return err
			}
		} else {
			var tables int
			if err := tx.QueryRow(`SELECT count(*) FROM sqlite_master`).Scan(&tables); err != nil {
				return err
			}
			if tables > 0 {
				return errors.New("not an fshealth database (it has tables but no schema_version)")
			}
		}
		if v > len(migrations) {
			return s.newerSchemaTx(v)
		}
		latest := len(migrations)
		for i := v; i < latest; i++ {
			if _, err := tx.Exec(migrations[i]); err != nil {
				return fmt.Errorf("migration to version %d: %w", i+1, err)
			}
			if fill := backfills[i+1]; fill != nil && v > 0 {
				if err := fill(ctx, tx); err != nil {
					return fmt.Errorf("migration to version %d: %w", i+1, err)
				}
			}
		}
		if v == latest {
			return nil
		}
		if v == 0 {
			_, err := tx.Exec(`INSERT INTO schema_version(version) VALUES (?)`, latest)
			return err
		}
		_, err := tx.Exec(`UPDATE schema_version SET version = ?`, latest)
		return err
	})
}

// newerSchemaTx is the error for a newer schema, without the path that
// writeLocked adds.
func (s *Store) newerSchemaTx(v int) error {
	return fmt.Errorf("schema version %d was written by a newer fshealth (this one supports up to %d): upgrade fshealth or use another --state-dir (%w)",
		v, len(migrations), ErrNewerSchema)
}
