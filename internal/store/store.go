// Package store is fshealth's durable state: the history of every event, the
// health of every file system, the outbox of alerts still to deliver, the
// recovery actions and the policy's incidents. It is one SQLite database
// (modernc.org/sqlite, no cgo) in WAL mode with synchronous=FULL, so a call
// that commits returns only once the data is on stable storage, and readers
// in other processes (`fshealth events`, `fshealth status`) can query it
// while the daemon writes. The one exception is the error summary Commit
// writes after the events (see Commit), which is derived from them and
// written again from them if it is lost.
//
// Times are stored as Unix nanoseconds, zero meaning "none"; times read back
// are in the local time zone. Every error names the database file.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/fshealth/fshealth/internal/event"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// FileName is the database's file name inside the state directory.
const FileName = "fshealth.db"

// PathIn returns the database path inside stateDir.
func PathIn(stateDir string) string {
	return filepath.Join(stateDir, FileName)
}

// busyTimeout is how long a connection waits for a lock another connection
// (or process) holds before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// walSizeLimit caps the size the WAL file is truncated back to after a
// checkpoint, so one large transaction (a prune) does not leave a large WAL
// behind for good.
const walSizeLimit = 4 << 20

// maxConns bounds the connection pool. Writes are serialised by Store.mu, so
// more connections only let reads proceed while a commit is in progress.
// Idle connections are kept for good: closing them would mean a timer
// waking the idle daemon, and reopening them would slow the next commit.
const maxConns = 3

// ErrNewerSchema is wrapped by the error Open and OpenReadOnly return when the
// database was written by a newer fshealth.
var ErrNewerSchema = errors.New("database schema too new")

// ErrNoHistory is wrapped (together with fs.ErrNotExist) by the error
// OpenReadOnly returns when the database file does not exist.
var ErrNoHistory = errors.New("no history")

// ErrNotFound is wrapped by errors about a delivery, action or file system
// that does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open fshealth database. Its methods are safe for concurrent
// use; writes are serialised.
type Store struct {
	// path is the database file's path as shown in messages; file is the
	// path SQLite opens (a /proc/self/fd path for OpenIn).
	path, file string
	db         *sql.DB
	readOnly   bool
	// mem marks an in-memory store (OpenMemory); nextID is the id it gives
	// the next outbox row or action, guarded by mu.
	mem    bool
	nextID int64
	// dirFD is the descriptor of the directory Open opened the database
	// in, closed with it; 0 if none.
	dirFD int

	// mu serialises write transactions within the process, which is
	// cheaper and fairer than SQLite's busy handler.
	mu    sync.Mutex
	stmts *statements
	// names caches the (name, file system key) pairs already in fs_names,
	// so that Commit inserts only new ones. Guarded by mu.
	names map[fsName]struct{}

	// sumConn is the connection the error summary of committed events is
	// written on, in a transaction of its own after theirs, with
	// synchronous=NORMAL: no fdatasync of its own (the next commit's
	// covers it; a crash may lose it, and Open writes it again from the
	// events after the summarised watermark). nil for in-memory and
	// read-only stores, which write the summary with the events.
	sumConn *sql.Conn
	// pending are the summaries of committed events not yet written (a
	// failed summary transaction), oldest first, written before any other
	// write. Guarded by mu.
	pending []pendingSummary
}

// pendingSummary is the error summary of one committed batch, not yet
// written, and the last event sequence number it covers.
type pendingSummary struct {
	sum *summary
	seq int64
}

// Open opens the database at path for reading and writing, creating it (mode
// 0600, and its directory, mode 0700, if missing) and bringing its schema up
// to date. It is an error, wrapping ErrNewerSchema, if the schema is newer
// than this code.
func Open(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("%s: creating the state directory: %w", abs, err)
	}
	// The files are opened relative to a descriptor of the directory, and
	// refused if they are symbolic links, as OpenIn does.
	dir := filepath.Dir(abs)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	name := filepath.Base(abs)
	if err := checkFiles(fd, dir, name); err != nil {
		unix.Close(fd)
		return nil, err
	}
	s, err := openRW("/proc/self/fd/"+strconv.Itoa(fd)+"/"+name, abs)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.dirFD = fd
	return s, nil
}

// openRW opens the database file (the path SQLite uses) for reading and
// writing; path is how messages name it.
func openRW(file, path string) (*Store, error) {
	// A database written by a newer fshealth is never modified: look at
	// its version read-only before SQLite is asked to switch it to WAL
	// mode.
	if fi, err := os.Stat(file); err == nil && fi.Size() > 0 {
		if v, err := schemaVersionOf(file, path); err == nil && v > len(migrations) {
			return nil, (&Store{path: path}).newerSchema(v)
		}
	}
	// Create the file ourselves so that it, and the -wal and -shm files
	// SQLite gives the same mode, are private from the start.
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Close()

	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	// auto_vacuum only takes effect on a new database; it lets Prune give
	// freed pages back to the file system with incremental_vacuum.
	q.Set("_auto_vacuum", "INCREMENTAL")
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	s, err := open(file, path, q, false)
	if err != nil {
		return nil, err
	}
	if err := s.migrate(); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.prepare(); err != nil {
		s.db.Close()
		return nil, err
	}
	if err := s.openSummary(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openSummary sets up the connection the error summary is written on, and
// summarises the events committed after the last summary (a crash between
// an event's commit and its summary's).
func (s *Store) openSummary() error {
	ctx := context.Background()
	// One connection more than the pool had: sumConn keeps one for good.
	s.db.SetMaxOpenConns(maxConns + 1)
	s.db.SetMaxIdleConns(maxConns + 1)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return s.errf("opening", err)
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		conn.Close()
		return s.errf("opening", err)
	}
	s.mu.Lock()
	s.sumConn = conn
	s.mu.Unlock()
	return s.write(ctx, "summarising the events after the last summary", summariseAfterWatermark)
}

// summariseAfterWatermark adds the error events after the summarised
// watermark to the summary (their files only if their file system was not
// marked healthy since), and moves the watermark to the last event.
func summariseAfterWatermark(tx *sql.Tx) error {
	ctx := context.Background()
	var w int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM summarised`).Scan(&w); err != nil {
		return fmt.Errorf("reading the summary's watermark: %w", err)
	}
	err := summariseStored(ctx, tx, summaryGroups, `SELECT fs_key, json FROM events WHERE seq > ? AND kind = 'error' ORDER BY seq`, w)
	if err == nil {
		err = summariseStored(ctx, tx, summaryFiles, `SELECT e.fs_key, e.json FROM events AS e JOIN filesystems AS f ON f.key = e.fs_key
WHERE e.seq > ? AND e.kind = 'error' AND e.time >= f.healthy_since ORDER BY e.seq`, w)
	}
	if err != nil {
		return fmt.Errorf("summarising the events after %d: %w", w, err)
	}
	return setSummarised(ctx, tx, "")
}

// setSummarised moves the summary's watermark (of the schema prefix db,
// "" or "main.") to the last event.
func setSummarised(ctx context.Context, tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, db string) error {
	_, err := tx.ExecContext(ctx, `UPDATE `+db+`summarised SET seq = (SELECT coalesce(max(seq), 0) FROM `+db+`events)`)
	return err
}

// writeSummaries writes the pending summaries in one transaction on
// sumConn, and moves the watermark past them. The caller holds s.mu.
func (s *Store) writeSummaries(ctx context.Context) error {
	if len(s.pending) == 0 || s.sumConn == nil {
		return nil
	}
	err := s.inTx(ctx, s.sumConn, "writing the error summary", func(tx *sql.Tx) error {
		st := s.stmts.summary.inTx(ctx, tx)
		for _, p := range s.pending {
			if err := p.sum.write(ctx, st); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE summarised SET seq = max(seq, ?)`, s.pending[len(s.pending)-1].seq)
		return err
	})
	if err != nil {
		return err
	}
	s.pending = nil
	return nil
}

// schemaVersionOf reads the schema version of the database file without
// writing to it; 0 if it has none yet.
func schemaVersionOf(file, path string) (int, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	s, err := open(file, path, q, true)
	if err != nil {
		return 0, err
	}
	defer s.db.Close()
	var n, v int
	if err := s.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	err = s.db.QueryRow("SELECT version FROM schema_version").Scan(&v)
	return v, err
}

// OpenReadOnly opens an existing database for queries only, as `fshealth
// events` and `fshealth status` do while the daemon runs: WAL mode lets them
// read concurrently with the daemon's commits and see every committed
// transaction. It is an error, wrapping ErrNoHistory and fs.ErrNotExist, if
// the file does not exist, and one wrapping ErrNewerSchema if the schema is
// newer than this code. A database whose schema is older than this code is
// also an error: only the daemon (Open) upgrades it.
func OpenReadOnly(path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	path = abs
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no history at %s: is the daemon running with --state-dir %s? (%w: %w)",
				path, filepath.Dir(path), ErrNoHistory, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_query_only", "1")
	s, err := open(path, path, q, true)
	if err != nil {
		return nil, err
	}
	var v int
	err = s.db.QueryRow("SELECT version FROM schema_version").Scan(&v)
	if err != nil {
		s.db.Close()
		if strings.Contains(err.Error(), "no such table") {
			return nil, fmt.Errorf("%s: not an fshealth database, or not yet initialised by the daemon", path)
		}
		return nil, s.errf("reading the schema version", err)
	}
	switch {
	case v > len(migrations):
		s.db.Close()
		return nil, s.newerSchema(v)
	case v < len(migrations):
		s.db.Close()
		return nil, fmt.Errorf("%s: schema version %d is older than this fshealth's (%d): start the daemon once to upgrade it", path, v, len(migrations))
	}
	return s, nil
}

// open opens the connection pool on path with the URI parameters q and
// checks that the file is a usable SQLite database.
func open(file, path string, q url.Values, readOnly bool) (*Store, error) {
	u := url.URL{Scheme: "file", Path: file, RawQuery: q.Encode()}
	// url.URL writes "file:///abs/path", which SQLite accepts; the path is
	// percent-encoded, so names with '?' or '#' survive.
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	s := &Store{path: path, file: file, db: db, readOnly: readOnly, names: map[fsName]struct{}{}}
	// Opening is lazy: make SQLite read the file now, so that a file that
	// is not a database fails here.
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, s.errf("opening", err)
	}
	if !readOnly && !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("%s: cannot use WAL mode (journal mode is %q): does the file system support shared memory?", path, mode)
	}
	return s, nil
}

// Path returns the database file's absolute path.
func (s *Store) Path() string { return s.path }

// Close closes the database. After a clean close of the last connection,
// SQLite checkpoints the WAL into the database file and removes it.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sumConn != nil {
		// A summary a failed transaction left is written now, or
		// by the next Open.
		s.writeSummaries(context.Background())
		s.sumConn.Close()
		s.sumConn = nil
	}
	if s.stmts != nil {
		s.stmts.close()
		s.stmts = nil
	}
	err := s.db.Close()
	if s.dirFD > 0 {
		unix.Close(s.dirFD)
		s.dirFD = 0
	}
	if err != nil {
		return s.errf("closing", err)
	}
	return nil
}

// errf wraps err with the database path and what was being done.
func (s *Store) errf(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", s.path, op, err)
}

func (s *Store) newerSchema(v int) error {
	return fmt.Errorf("%s: schema version %d was written by a newer fshealth (this one supports up to %d): upgrade fshealth or use another --state-dir (%w)",
		s.path, v, len(migrations), ErrNewerSchema)
}

// write runs fn in one write transaction, serialised with the process's
// other writes, and commits it.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("%s: %s: database is open read-only", s.path, op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stmts == nil {
		return fmt.Errorf("%s: %s: database is closed", s.path, op)
	}
	return s.writeLocked(ctx, op, fn)
}

// writeLocked is write for callers that hold s.mu. The summaries of the
// events committed before are written first, so that every write sees
// them (a file system marked healthy forgets its damaged files, a path
// found labels them, retention deletes their buckets).
func (s *Store) writeLocked(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if err := s.writeSummaries(ctx); err != nil {
		return err
	}
	return s.inTx(ctx, s.db, op, fn)
}

// txBeginner is what *sql.DB and *sql.Conn have in common.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// inTx runs fn in a transaction begun on b, committed if fn succeeds.
func (s *Store) inTx(ctx context.Context, b txBeginner, op string, fn func(tx *sql.Tx) error) error {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return s.errf(op, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.errf(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.errf(op, err)
	}
	return nil
}

// ns converts t to Unix nanoseconds, the zero time to 0.
func ns(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.After(maxNS):
		// UnixNano is undefined past 2262: "--since 2999-01-01" must
		// select nothing, not everything.
		return math.MaxInt64
	case t.Before(minNS):
		return math.MinInt64
	}
	return t.UnixNano()
}

// maxNS and minNS are the times Unix nanoseconds in an int64 can hold.
var maxNS, minNS = time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64)

// fromNS converts Unix nanoseconds to a time, 0 to the zero time.
func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// FSKey returns the key fshealth files a file system under: its UUID if
// known, else its device.
func FSKey(uuid, device string) string {
	return event.FilesystemKey(uuid, device, "")
}

// IncidentKey returns the key of the incident about errorKind on the file
// system fsKey.
func IncidentKey(fsKey, errorKind string) string {
	return fsKey + "/" + errorKind
}

// fsKeyOfIncident returns the file system key of an incident key (everything
// before the last "/": device keys contain slashes, errno names do not).
func fsKeyOfIncident(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return key
}
