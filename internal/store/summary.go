package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fshealth/fshealth/internal/errsite"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// The groupings of the error summary (error_groups.dim), the ways `fshealth
// report` groups the history.
const (
	// DimLocation is the kernel code that reported the error (see
	// errsite.Site.Location).
	DimLocation = "location"
	// DimErrno is the errno name.
	DimErrno = "errno"
	// DimSource is where fshealth learnt of the error (event.Source*).
	DimSource = "source"
	// DimFile is the inode, as a decimal number; its label is a path it
	// was known by.
	DimFile = "file"
	// DimDevice is the file system's device.
	DimDevice = "device"
	// DimDisk is the disk a failed request was on, as the block layer
	// names it, else the one disk under the file system.
	DimDisk = "disk"
	// DimRegion is the disk and 1 GiB region of sectors of a failed
	// request (errsite.Site.Region).
	DimRegion = "region"
)

// Dims are the groupings, in the order reports show them.
var Dims = []string{DimLocation, DimErrno, DimSource, DimFile, DimDevice, DimDisk, DimRegion}

// hourNS is an hour in nanoseconds, the summary's time bucket.
const hourNS = int64(time.Hour)

// spans are the lengths of the summary's time buckets, in hours, longest
// first: 30 days, a day, an hour; rateSpans those of the rate.
var (
	spans     = []int64{720, 24, 1}
	rateSpans = []int64{24, 1}
)

// bucketOf returns the bucket of length size the Unix nanoseconds t are in.
func bucketOf(t, size int64) int64 {
	h := t / size
	if t < 0 && t%size != 0 {
		h--
	}
	return h
}

// hourOf returns the hour bucket of the Unix nanoseconds t.
func hourOf(t int64) int64 { return bucketOf(t, hourNS) }

// bucketAfter returns the first bucket of length size that starts at or
// after t.
func bucketAfter(t, size int64) int64 {
	b := bucketOf(t, size)
	if b*size < t {
		b++
	}
	return b
}

// groupKey identifies one row of error_groups.
type groupKey struct {
	span, bucket int64 // hours, Unix time / span
	dim, fsKey   string
	val          string
}

// groupSum is what one batch adds to one row of error_groups.
type groupSum struct {
	label          string
	errors, events int64
	first, last    int64
}

// fileKey identifies one row of damaged_files.
type fileKey struct {
	fsKey string
	inode uint64
	gen   int64
}

// fileSum is what one batch adds to one row of damaged_files.
type fileSum struct {
	path, pathError string
	pending         bool
	errno           string
	errors, events  int64
	first, last     int64
}

// summary is the error summary of a batch of events, added up before it
// is written: a storm of events about one place costs one row update.
type summary struct {
	// parts says which tables the summary writes.
	parts      summaryParts
	rate       map[rateKey]*[2]int64 // errors, events
	rateOrder  []rateKey
	groups     map[groupKey]*groupSum
	groupOrder []groupKey
	files      map[fileKey]*fileSum
	fileOrder  []fileKey
}

func newSummary(parts summaryParts) *summary {
	return &summary{parts: parts, rate: map[rateKey]*[2]int64{}, groups: map[groupKey]*groupSum{}, files: map[fileKey]*fileSum{}}
}

// summaryParts selects the tables a summary writes.
type summaryParts int

const (
	summaryGroups summaryParts = 1 << iota // error_groups
	summaryFiles                           // damaged_files
	summaryAll    = summaryGroups | summaryFiles
)

// empty reports whether the summary has nothing to write.
func (s *summary) empty() bool { return len(s.groups) == 0 && len(s.files) == 0 && len(s.rate) == 0 }

// rateKey identifies one row of error_rate.
type rateKey struct {
	span, bucket int64
	fsKey        string
}

// add counts one event; fsKey is its file system's key. Only error events
// are summarised.
func (s *summary) add(ev *event.Event, fsKey string) {
	if ev.Kind != event.KindError || fsKey == "" {
		return
	}
	t := ns(ev.Time.Time)
	if t == 0 {
		t = time.Now().UnixNano()
	}
	n := int64(ev.ErrorCount)
	if s.parts&summaryGroups != 0 {
		for _, span := range rateSpans {
			k := rateKey{span, bucketOf(t, span*hourNS), fsKey}
			r := s.rate[k]
			if r == nil {
				r = new([2]int64)
				s.rate[k] = r
				s.rateOrder = append(s.rateOrder, k)
			}
			r[0] += n
			r[1]++
		}
		for _, g := range groupsOf(ev) {
			for _, span := range spans {
				s.addGroup(groupKey{span, bucketOf(t, span*hourNS), g.dim, fsKey, g.value}, g.label, n, t)
			}
		}
	}
	if ev.Inode != nil && s.parts&summaryFiles != 0 {
		gen := int64(-1)
		if ev.Generation != nil {
			gen = int64(*ev.Generation)
		}
		k := fileKey{fsKey, *ev.Inode, gen}
		f := s.files[k]
		if f == nil {
			f = &fileSum{first: t, last: t}
			s.files[k] = f
			s.fileOrder = append(s.fileOrder, k)
		}
		// The errno of the most recent error, as writing the sum keeps
		// it (upsertFileSQL): the same whatever the batches.
		if t >= f.last {
			f.errno = ev.Error
		}
		f.errors += n
		f.events++
		f.first, f.last = min(f.first, t), max(f.last, t)
		if ev.Path != "" || ev.PathError != "" || ev.PathPending {
			f.path, f.pathError, f.pending = ev.Path, ev.PathError, ev.PathPending
		}
	}
}

func (s *summary) addGroup(k groupKey, label string, n, t int64) {
	g := s.groups[k]
	if g == nil {
		g = &groupSum{first: t, last: t}
		s.groups[k] = g
		s.groupOrder = append(s.groupOrder, k)
	}
	g.errors += n
	g.events++
	g.first, g.last = min(g.first, t), max(g.last, t)
	if label != "" {
		g.label = label
	}
}

// dimValue is one grouping value of an event.
type dimValue struct{ dim, value, label string }

// groupsOf returns the values of each grouping an event has: errno and
// source always, the others when known.
func groupsOf(ev *event.Event) []dimValue {
	site := errsite.Of(ev)
	out := make([]dimValue, 0, len(Dims))
	out = append(out, dimValue{DimErrno, ev.Error, ""}, dimValue{DimSource, ev.Source, ""})
	if site.Location != "" {
		out = append(out, dimValue{DimLocation, site.Location, ""})
	}
	if ev.Inode != nil {
		out = append(out, dimValue{DimFile, strconv.FormatUint(*ev.Inode, 10), ev.Path})
	}
	if ev.Device != "" {
		out = append(out, dimValue{DimDevice, ev.Device, ""})
	}
	disk := site.Disk
	if disk == "" {
		disk = singleDisk(ev.Storage)
	}
	if disk != "" {
		out = append(out, dimValue{DimDisk, disk, ""})
	}
	if r := site.Region(); r != "" {
		out = append(out, dimValue{DimRegion, r, ""})
	}
	return out
}

// singleDisk returns the name of the only disk in a storage stack, "" if
// there is none or more than one.
func singleDisk(layers []storage.Layer) string {
	name := ""
	for i := range layers {
		if layers[i].Kind != storage.KindDisk {
			continue
		}
		if name != "" {
			return ""
		}
		name = layers[i].Name
	}
	return name
}

// summaryStmts are the statements that write a summary.
type summaryStmts struct {
	upsertGroup, upsertRate, upsertFile, markReplaced *sql.Stmt
}

// The statements of summaryStmts.
const (
	upsertRateSQL = `INSERT INTO error_rate (span, bucket, fs_key, errors, events) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (span, bucket, fs_key) DO UPDATE SET errors = errors + excluded.errors, events = events + excluded.events`
	upsertGroupSQL = `INSERT INTO error_groups (span, dim, bucket, fs_key, value, label, errors, events, first, last)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (span, bucket, dim, fs_key, value) DO UPDATE SET
	label = iif(excluded.label <> '', excluded.label, label),
	errors = errors + excluded.errors, events = events + excluded.events,
	first = min(first, excluded.first), last = max(last, excluded.last)`
	upsertFileSQL = `INSERT INTO damaged_files (fs_key, inode, generation, path, path_pending, path_error, errno,
	errors, events, first, last)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (fs_key, inode, generation) DO UPDATE SET
	path = iif(excluded.path <> '' OR excluded.path_error <> '' OR excluded.path_pending, excluded.path, path),
	path_error = iif(excluded.path <> '' OR excluded.path_error <> '' OR excluded.path_pending, excluded.path_error, path_error),
	path_pending = iif(excluded.path <> '' OR excluded.path_error <> '' OR excluded.path_pending, excluded.path_pending, path_pending),
	errno = iif(excluded.last >= last, excluded.errno, errno),
	errors = errors + excluded.errors, events = events + excluded.events,
	first = min(first, excluded.first), last = max(last, excluded.last)`
	// A later error about the inode with another generation: the file
	// the older rows are about was deleted and its inode reused.
	markReplacedSQL = `UPDATE damaged_files SET state = 'replaced'
WHERE fs_key = ?1 AND inode = ?2 AND generation <> ?3 AND generation <> -1 AND ?3 <> -1 AND last <= ?4 AND state <> 'replaced'`
)

// prepareSummary prepares the statements of summaryStmts on p (a database
// or a transaction).
func prepareSummary(ctx context.Context, p interface {
	PrepareContext(context.Context, string) (*sql.Stmt, error)
}) (*summaryStmts, error) {
	st := &summaryStmts{}
	for _, x := range []struct {
		dst **sql.Stmt
		sql string
	}{{&st.upsertGroup, upsertGroupSQL}, {&st.upsertRate, upsertRateSQL}, {&st.upsertFile, upsertFileSQL}, {&st.markReplaced, markReplacedSQL}} {
		stmt, err := p.PrepareContext(ctx, x.sql)
		if err != nil {
			st.close()
			return nil, err
		}
		*x.dst = stmt
	}
	return st, nil
}

func (st *summaryStmts) close() {
	for _, p := range []*sql.Stmt{st.upsertGroup, st.upsertRate, st.upsertFile, st.markReplaced} {
		if p != nil {
			p.Close()
		}
	}
}

// inTx returns the statements bound to tx.
func (st *summaryStmts) inTx(ctx context.Context, tx *sql.Tx) *summaryStmts {
	return &summaryStmts{tx.StmtContext(ctx, st.upsertGroup), tx.StmtContext(ctx, st.upsertRate), tx.StmtContext(ctx, st.upsertFile),
		tx.StmtContext(ctx, st.markReplaced)}
}

// write adds the summary to the tables with the statements st.
func (s *summary) write(ctx context.Context, st *summaryStmts) error {
	for _, k := range s.rateOrder {
		r := s.rate[k]
		if _, err := st.upsertRate.ExecContext(ctx, k.span, k.bucket, k.fsKey, r[0], r[1]); err != nil {
			return fmt.Errorf("error rate of %s: %w", k.fsKey, err)
		}
	}
	for _, k := range s.groupOrder {
		g := s.groups[k]
		if _, err := st.upsertGroup.ExecContext(ctx, k.span, k.dim, k.bucket, k.fsKey, k.val, g.label, g.errors, g.events, g.first, g.last); err != nil {
			return fmt.Errorf("error summary of %s: %w", k.fsKey, err)
		}
	}
	for _, k := range s.fileOrder {
		f := s.files[k]
		if _, err := st.upsertFile.ExecContext(ctx, k.fsKey, int64(k.inode), k.gen, f.path, f.pending, f.pathError, f.errno,
			f.errors, f.events, f.first, f.last); err != nil {
			return fmt.Errorf("damaged file (inode %d) of %s: %w", k.inode, k.fsKey, err)
		}
		if _, err := st.markReplaced.ExecContext(ctx, k.fsKey, int64(k.inode), k.gen, f.last); err != nil {
			return fmt.Errorf("damaged file (inode %d) of %s: %w", k.inode, k.fsKey, err)
		}
	}
	return nil
}

// summariseStored adds to the summary tables, in tx, the error events the
// query (selecting fs_key and json of events) returns.
func summariseStored(ctx context.Context, tx *sql.Tx, parts summaryParts, query string, args ...any) error {
	st, err := prepareSummary(ctx, tx)
	if err != nil {
		return err
	}
	defer st.close()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	sum := newSummary(parts)
	flush := func() error {
		err := sum.write(ctx, st)
		sum = newSummary(parts)
		return err
	}
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
		sum.add(&e, key.String)
		if len(sum.groups)+len(sum.files)+len(sum.rate) > 4096 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// backfillSummaries fills the summary tables of schema version 5 from the
// history already there: every error event's groups, and the files of
// the errors since each file system was last marked healthy.
func backfillSummaries(ctx context.Context, tx *sql.Tx) error {
	err := summariseStored(ctx, tx, summaryGroups, `SELECT fs_key, json FROM events WHERE kind = 'error' ORDER BY seq`)
	if err == nil {
		err = summariseStored(ctx, tx, summaryFiles, `SELECT e.fs_key, e.json FROM events AS e JOIN filesystems AS f ON f.key = e.fs_key
WHERE e.kind = 'error' AND e.time >= f.healthy_since ORDER BY e.seq`)
	}
	if err != nil {
		return fmt.Errorf("summarising the history: %w", err)
	}
	return nil
}
