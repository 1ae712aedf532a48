package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	// Until is the end of the period, for the choice of the rate's bucket;
	// zero means now.
	Until time.Time
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
	// labelAt is when the errors Label comes with were last received.
	labelAt int64
}

// RateCount is the errors of one file system in one bucket of the rate
// (an hour, or a day).
type RateCount struct {
	FSKey string `json:"fs_key"`
	// Start is the bucket's start.
	Start  time.Time `json:"start"`
	Errors uint64    `json:"errors"`
	Events uint64    `json:"events"`
}

// MaxHourlySpan is the longest period whose rate a report gives per hour;
// longer ones are given per day (UTC).
const MaxHourlySpan = 72 * time.Hour

// Report is the history summarised: the groups, by file system, grouping
// (in the order of Dims) and errors, most first; and the rate of errors,
// per hour or per day, oldest first (buckets without errors left out).
type Report struct {
	Groups []Group
	// Bucket is the rate's bucket: time.Hour, or 24 hours (UTC days) when
	// the period is longer than MaxHourlySpan.
	Bucket time.Duration
	Rate   []RateCount
}

// Report summarises the errors q selects. It reads the summary kept at
// commit time (error_groups): whole 30-day buckets, whole days before
// the first of them, whole hours before the first whole day, and the
// events of the part of the first hour after q.Since. The result is exact, and its cost grows with the length of the
// period and the variety of the errors, not with their number.
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
	groups, err := sumGroups(ctx, tx, since, keys, "")
	if err != nil {
		return nil, err
	}
	// The rate per hour for short periods, else per day.
	start, until := q.Since, q.Until
	if until.IsZero() {
		until = time.Now()
	}
	if start.IsZero() {
		for _, g := range groups {
			if start.IsZero() || g.First.Before(start) {
				start = g.First
			}
		}
	}
	span := int64(1)
	if until.Sub(start) > MaxHourlySpan {
		span = 24
	}
	rate, err := sumRate(ctx, tx, since, keys, span)
	if err != nil {
		return nil, err
	}
	// An inode none of whose errors in the period came with its path
	// gets the one found for it since, if it is still among the damaged
	// files.
	for k, g := range groups {
		if k.dim != DimFile || g.Label != "" {
			continue
		}
		var path string
		err := tx.QueryRowContext(ctx, `SELECT path FROM damaged_files WHERE fs_key = ? AND inode = ? AND path <> ''
ORDER BY last DESC LIMIT 1`, k.fsKey, k.val).Scan(&path)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		g.Label = path
	}
	r := assemble(groups, rate)
	r.Bucket = time.Duration(span) * time.Hour
	return r, nil
}

// gk identifies a group of a report.
type gk struct{ fsKey, dim, val string }

// sumGroups adds up the groups of the errors received at or after since
// (Unix ns; 0: all) of the file systems keys (nil: all) and of the
// grouping dim ("": all): from the summary's 30-day, day and hour buckets,
// longest first, and the rest of the hour since is in from the events.
func sumGroups(ctx context.Context, tx *sql.Tx, since int64, keys []string, dim string) (map[gk]*Group, error) {
	out := map[gk]*Group{}
	fsCond, fsArgs := inKeys("fs_key", keys)
	dimCond, dimArgs := "", []any(nil)
	if dim != "" {
		dimCond, dimArgs = " AND dim = ?", []any{dim}
	}
	// Each span's whole buckets from since up to where the longer span's
	// begin (its end in Unix hours, end: none yet).
	end, hasEnd := int64(0), false
	fromHour := bucketAfter(since, hourNS)
	for _, span := range spans {
		from := bucketAfter(since, span*hourNS)
		if since == 0 {
			from = math.MinInt64 / (span * hourNS)
		}
		to := int64(math.MaxInt64)
		if hasEnd {
			to = end / span
		}
		end, hasEnd = from*span, true
		if from >= to {
			continue
		}
		args := append(append([]any{span, from, to}, fsArgs...), dimArgs...)
		where := ` WHERE span = ? AND bucket >= ? AND bucket < ?` + fsCond + dimCond
		rows, err := tx.QueryContext(ctx, `SELECT fs_key, dim, value, sum(errors), sum(events), min(first), max(last) FROM error_groups`+
			where+` GROUP BY fs_key, dim, value`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k gk
			var errs, evs, first, last int64
			if err := rows.Scan(&k.fsKey, &k.dim, &k.val, &errs, &evs, &first, &last); err != nil {
				rows.Close()
				return nil, err
			}
			addGroup(out, k, "", errs, evs, first, last)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if dim != "" && dim != DimFile {
			continue
		}
		// The path of each inode: the one of its latest errors.
		rows, err = tx.QueryContext(ctx, `SELECT fs_key, value, label, max(last) FROM error_groups`+where+
			` AND dim = 'file' AND label <> '' GROUP BY fs_key, value`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k gk
			var label string
			var last int64
			if err := rows.Scan(&k.fsKey, &k.val, &label, &last); err != nil {
				rows.Close()
				return nil, err
			}
			k.dim = DimFile
			addLabel(out, k, label, last)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if since != 0 && since < fromHour*hourNS {
		sum := newSummary(summaryGroups)
		err := scanStored(ctx, tx, `SELECT fs_key, json FROM events WHERE kind = 'error' AND time >= ? AND time < ?`+fsCond+` ORDER BY seq`,
			append([]any{since, fromHour * hourNS}, fsArgs...), func(e *event.Event, key string) { sum.add(e, key) })
		if err != nil {
			return nil, err
		}
		for k, g := range sum.groups {
			if k.span != 1 || dim != "" && k.dim != dim {
				continue
			}
			x := gk{k.fsKey, k.dim, k.val}
			addGroup(out, x, "", g.errors, g.events, g.first, g.last)
			addLabel(out, x, g.label, g.last)
		}
	}
	return out, nil
}

// addGroup adds counts to the group k of out.
func addGroup(out map[gk]*Group, k gk, label string, errs, evs, first, last int64) {
	g := out[k]
	if g == nil {
		g = &Group{FSKey: k.fsKey, Dim: k.dim, Value: k.val, First: fromNS(first), Last: fromNS(last)}
		out[k] = g
	}
	g.Errors += uint64(errs)
	g.Events += uint64(evs)
	if f := fromNS(first); f.Before(g.First) {
		g.First = f
	}
	if l := fromNS(last); l.After(g.Last) {
		g.Last = l
	}
}

// addLabel gives the group k of out the label of its errors last received
// at last, if they are its latest with a label. Labels are added after the
// counts.
func addLabel(out map[gk]*Group, k gk, label string, last int64) {
	g := out[k]
	if g == nil || label == "" {
		return
	}
	if g.Label == "" || last >= g.labelAt {
		g.Label, g.labelAt = label, last
	}
}

// rk identifies a bucket of the rate of a file system.
type rk struct {
	fsKey  string
	bucket int64
}

// sumRate adds up the errors per bucket of span hours (1 or 24) from the
// one since is in on, those of that bucket from since on: whole buckets of
// the span from error_rate, for days the hours before the first whole day
// from error_rate too, and the rest of the hour since is in from the
// events.
func sumRate(ctx context.Context, tx *sql.Tx, since int64, keys []string, span int64) (map[rk]*RateCount, error) {
	size := span * hourNS
	fsCond, fsArgs := inKeys("fs_key", keys)
	out := map[rk]*RateCount{}
	add := func(key string, bucket, errs, evs int64) {
		k := rk{key, bucket}
		c := out[k]
		if c == nil {
			c = &RateCount{FSKey: key, Start: time.Unix(0, bucket*size)}
			out[k] = c
		}
		c.Errors += uint64(errs)
		c.Events += uint64(evs)
	}
	fromHour, from := bucketAfter(since, hourNS), bucketAfter(since, size)
	if since == 0 {
		fromHour, from = math.MinInt64/hourNS, math.MinInt64/size
	}
	levels := []struct{ span, from, to int64 }{{span, from, math.MaxInt64}}
	if span != 1 {
		levels = append(levels, struct{ span, from, to int64 }{1, fromHour, from * span})
	}
	for _, l := range levels {
		if l.from >= l.to {
			continue
		}
		rows, err := tx.QueryContext(ctx, `SELECT fs_key, bucket, errors, events FROM error_rate
WHERE span = ? AND bucket >= ? AND bucket < ?`+fsCond, append([]any{l.span, l.from, l.to}, fsArgs...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var key string
			var bucket, errs, evs int64
			if err := rows.Scan(&key, &bucket, &errs, &evs); err != nil {
				rows.Close()
				return nil, err
			}
			add(key, bucketOf(bucket*l.span*hourNS, size), errs, evs)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if since != 0 && since < fromHour*hourNS {
		rows, err := tx.QueryContext(ctx, `SELECT fs_key, sum(error_count), count(*) FROM events
WHERE kind = 'error' AND fs_key IS NOT NULL AND time >= ? AND time < ?`+fsCond+` GROUP BY fs_key`,
			append([]any{since, fromHour * hourNS}, fsArgs...)...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var key string
			var errs, evs int64
			if err := rows.Scan(&key, &errs, &evs); err != nil {
				return nil, err
			}
			add(key, bucketOf(since, size), errs, evs)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// assemble orders the groups and hours into a Report.
func assemble(groups map[gk]*Group, rate map[rk]*RateCount) *Report {
	r := &Report{Groups: make([]Group, 0, len(groups)), Rate: make([]RateCount, 0, len(rate))}
	for _, g := range groups {
		r.Groups = append(r.Groups, *g)
	}
	for _, c := range rate {
		r.Rate = append(r.Rate, *c)
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
	sort.Slice(r.Rate, func(i, j int) bool {
		a, b := &r.Rate[i], &r.Rate[j]
		if !a.Start.Equal(b.Start) {
			return a.Start.Before(b.Start)
		}
		return a.FSKey < b.FSKey
	})
	for i := range r.Groups {
		r.Groups[i].labelAt = 0
	}
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
