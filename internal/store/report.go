package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// ReportQuery selects the part of the history a report summarises.
type ReportQuery struct {
	// Since excludes errors older than it; zero means from the beginning
	// (as far as the history still holds it).
	Since time.Time
	// FS keeps only the file system known by this name (a mount point, a
	// UUID or a device, as EventQuery.FS); empty means every one.
	FS string
}

// Group is the errors of one file system that have one value of one
// grouping (Dims), e.g. every error ext4 reported at ext4_lookup:1855.
type Group struct {
	// FSKey is the file system's key.
	FSKey string `json:"fs_key"`
	// Dim is the grouping (DimLocation, ...); Value the errors' value of
	// it; Label, for DimFile, a path the inode was known by.
	Dim   string `json:"dim"`
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
	// Errors sums the events' error counts; Events counts the events.
	Errors uint64 `json:"errors"`
	Events uint64 `json:"events"`
	// First and Last are when the first and last of them were received.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// HourCount is the errors of one file system in one hour.
type HourCount struct {
	FSKey string `json:"fs_key"`
	// Hour is the hour's start.
	Hour   time.Time `json:"hour"`
	Errors uint64    `json:"errors"`
	Events uint64    `json:"events"`
}

// Report is the history summarised: the groups, by file system, grouping
// (in the order of Dims) and errors, most first; and the errors per hour,
// oldest first (hours without errors left out).
type Report struct {
	Groups []Group
	Hours  []HourCount
}

// Report summarises the errors q selects. It reads the summary kept at
// commit time (error_groups), by hour, and, for the part of the first hour
// after q.Since, the events themselves: the result is exact, and its cost
// does not grow with the history.
func (s *Store) Report(ctx context.Context, q ReportQuery) (*Report, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.errf("reading the error summary", err)
	}
	defer tx.Rollback()
	r, err := report(ctx, tx, q)
	if err != nil {
		return nil, s.errf("reading the error summary", err)
	}
	return r, nil
}

func report(ctx context.Context, tx *sql.Tx, q ReportQuery) (*Report, error) {
	var keys []string
	if q.FS != "" {
		var err error
		if keys, err = fsKeysNamed(ctx, tx, q.FS); err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, fmt.Errorf("no file system known as %s: %w", event.Safe(q.FS), ErrNotFound)
		}
	}
	since := ns(q.Since)
	// Whole hours from the summary; the hour since falls in from the
	// events, from since on.
	fromHour := hourOf(since)
	if since != 0 && since%hourNS != 0 {
		fromHour++
	}
	fsCond, fsArgs := inKeys("fs_key", keys)
	groups := map[groupKey]*groupSum{}
	rows, err := tx.QueryContext(ctx, `SELECT fs_key, hour, dim, value, label, errors, events, first, last FROM error_groups
WHERE hour >= ?`+fsCond, append([]any{fromHour}, fsArgs...)...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k groupKey
		var g groupSum
		if err := rows.Scan(&k.fsKey, &k.hour, &k.dim, &k.val, &g.label, &g.errors, &g.events, &g.first, &g.last); err != nil {
			rows.Close()
			return nil, err
		}
		groups[k] = &g
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if since != 0 && since < fromHour*hourNS {
		sum := newSummary(summaryGroups)
		err := scanStored(ctx, tx, `SELECT fs_key, json FROM events WHERE kind = 'error' AND time >= ? AND time < ?`+fsCond+` ORDER BY seq`,
			append([]any{since, fromHour * hourNS}, fsArgs...), func(e *event.Event, key string) { sum.add(e, key) })
		if err != nil {
			return nil, err
		}
		for k, g := range sum.groups {
			groups[k] = g // hours before fromHour: not in the summary read
		}
	}
	return assemble(groups), nil
}

// assemble adds the hourly rows up into a Report.
func assemble(rows map[groupKey]*groupSum) *Report {
	type gk struct{ fsKey, dim, val string }
	type hk struct {
		fsKey string
		hour  int64
	}
	byGroup := map[gk]*Group{}
	labelAt := map[gk]int64{}
	byHour := map[hk]*HourCount{}
	for k, g := range rows {
		key := gk{k.fsKey, k.dim, k.val}
		x := byGroup[key]
		if x == nil {
			x = &Group{FSKey: k.fsKey, Dim: k.dim, Value: k.val, First: fromNS(g.first), Last: fromNS(g.last)}
			byGroup[key] = x
		}
		x.Errors += uint64(g.errors)
		x.Events += uint64(g.events)
		if f := fromNS(g.first); f.Before(x.First) {
			x.First = f
		}
		if l := fromNS(g.last); l.After(x.Last) {
			x.Last = l
		}
		// The label of the latest hour that has one.
		if at, ok := labelAt[key]; g.label != "" && (!ok || g.last > at) {
			x.Label, labelAt[key] = g.label, g.last
		}
		// Every error has exactly one errno: its rows count each error
		// once.
		if k.dim == DimErrno {
			h := byHour[hk{k.fsKey, k.hour}]
			if h == nil {
				h = &HourCount{FSKey: k.fsKey, Hour: time.Unix(0, k.hour*hourNS)}
				byHour[hk{k.fsKey, k.hour}] = h
			}
			h.Errors += uint64(g.errors)
			h.Events += uint64(g.events)
		}
	}
	r := &Report{Groups: make([]Group, 0, len(byGroup)), Hours: make([]HourCount, 0, len(byHour))}
	for _, g := range byGroup {
		r.Groups = append(r.Groups, *g)
	}
	for _, h := range byHour {
		r.Hours = append(r.Hours, *h)
	}
	dimRank := map[string]int{}
	for i, d := range Dims {
		dimRank[d] = i
	}
	sort.Slice(r.Groups, func(i, j int) bool {
		a, b := &r.Groups[i], &r.Groups[j]
		switch {
		case a.FSKey != b.FSKey:
			return a.FSKey < b.FSKey
		case a.Dim != b.Dim:
			return dimRank[a.Dim] < dimRank[b.Dim]
		case a.Errors != b.Errors:
			return a.Errors > b.Errors
		}
		return a.Value < b.Value
	})
	sort.Slice(r.Hours, func(i, j int) bool {
		a, b := &r.Hours[i], &r.Hours[j]
		if !a.Hour.Equal(b.Hour) {
			return a.Hour.Before(b.Hour)
		}
		return a.FSKey < b.FSKey
	})
	return r
}

// fsKeysNamed returns the keys of the file systems known by name.
func fsKeysNamed(ctx context.Context, tx *sql.Tx, name string) ([]string, error) {
	if strings.HasPrefix(name, "/") {
		name = filepath.Clean(name)
	}
	rows, err := tx.QueryContext(ctx, `SELECT fs_key FROM fs_names WHERE name = ? ORDER BY fs_key`, name)
	if err != nil {
		return nil, err
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

// inKeys returns the condition " AND col IN (?, ...)" and its arguments,
// or nothing when keys is nil.
func inKeys(col string, keys []string) (string, []any) {
	if keys == nil {
		return "", nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	return " AND " + col + " IN (?" + strings.Repeat(", ?", len(keys)-1) + ")", args
}

// scanStored calls fn with each event a query selecting fs_key and json
// returns.
func scanStored(ctx context.Context, tx *sql.Tx, query string, args []any, fn func(e *event.Event, fsKey string)) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key sql.NullString
		var raw []byte
		if err := rows.Scan(&key, &raw); err != nil {
			return err
		}
		var e event.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("stored event is not valid JSON: %w", err)
		}
		fn(&e, key.String)
	}
	return rows.Err()
}

// DamagedFile is a file (inode) that reported errors since its file system
// was last marked healthy, as `zpool status -v` lists them.
type DamagedFile struct {
	// FSKey is the file system's key.
	FSKey string `json:"-"`
	// Inode and Generation identify the file; Generation is nil when the
	// error did not say.
	Inode      uint64  `json:"inode"`
	Generation *uint32 `json:"generation,omitempty"`
	// Path is its path, found read-only on the device; PathPending says
	// the lookup is not over; PathError why none was found.
	Path        string `json:"path,omitempty"`
	PathPending bool   `json:"path_pending,omitempty"`
	PathError   string `json:"path_error,omitempty"`
	// State is FileDeleted or FileReplaced when the file is no longer
	// there; "" otherwise (as far as fshealth knows: it does not look).
	State string `json:"state,omitempty"`
	// Errno is the errno name of its last error.
	Errno string `json:"errno"`
	// Errors sums the error counts of its events; Events counts them.
	Errors uint64 `json:"errors"`
	Events uint64 `json:"events"`
	// First and Last are when its first and last errors were received.
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
}

// DamagedFiles returns the damaged files of the file system fsKey (of
// every file system if ""), by file system and most recent error first.
func (s *Store) DamagedFiles(ctx context.Context, fsKey string) ([]DamagedFile, error) {
	query := `SELECT fs_key, inode, generation, path, path_pending, path_error, state, errno, errors, events, first, last
FROM damaged_files`
	var args []any
	if fsKey != "" {
		query += ` WHERE fs_key = ?`
		args = append(args, fsKey)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY fs_key, last DESC, inode`, args...)
	if err != nil {
		return nil, s.errf("reading the damaged files", err)
	}
	defer rows.Close()
	var out []DamagedFile
	for rows.Next() {
		var (
			f                   DamagedFile
			ino, gen            int64
			errs, evs, fst, lst int64
		)
		if err := rows.Scan(&f.FSKey, &ino, &gen, &f.Path, &f.PathPending, &f.PathError, &f.State, &f.Errno,
			&errs, &evs, &fst, &lst); err != nil {
			return nil, s.errf("reading the damaged files", err)
		}
		f.Inode = uint64(ino)
		if gen >= 0 {
			g := uint32(gen)
			f.Generation = &g
		}
		f.Errors, f.Events, f.First, f.Last = uint64(errs), uint64(evs), fromNS(fst), fromNS(lst)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errf("reading the damaged files", err)
	}
	return out, nil
}
