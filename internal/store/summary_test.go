package store

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

// Kernel messages as the kernel prints them.
const (
	msgLookup = "EXT4-fs error (device sda1): ext4_lookup:1855: inode #12: comm ls: iget: bogus i_mode (377)"
	msgDir    = "EXT4-fs error (device sda1): htree_dirblock_to_tree:1087: inode #2: block 1234: comm ls: bad entry in directory: rec_len is smaller than minimal - offset=0, inode=0, rec_len=0, size=4096 fake=0"
	msgBlock  = "I/O error, dev sdb, sector 4194410 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2"
	msgXFS    = "XFS (sdb1): Metadata corruption detected at xfs_dinode_verify.part.0+0x40b/0x810, inode 0x84 dinode"
)

// inodeEvent is an error event about inode ino (generation gen) with a
// kernel message.
func inodeEvent(id string, at time.Time, f alert.Filesystem, errno string, count uint32, ino uint64, gen uint32, msg string) event.Event {
	e := errEvent(id, at, f, errno, count)
	e.Inode, e.Generation = &ino, &gen
	e.KernelMessage = msg
	return e
}

// history is a day of errors on two file systems, in several hours.
func history() []event.Event {
	at := func(h, m int) time.Time {
		return base.Truncate(time.Hour).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	whole := errEvent("w1", at(0, 5), fs1, "EUCLEAN", 1)
	whole.Ext4 = &ext4.State{ErrorsCount: 1, LastError: &ext4.ErrorInfo{Function: "trigger_test_error", Line: 129}}
	blk := errEvent("b1", at(2, 30), fs2, "EIO", 1)
	blk.Source, blk.KernelMessage = event.SourceKmsg, msgBlock
	blk2 := blk
	blk2.ID, blk2.Time = "b2", event.Time{Time: at(5, 1)}
	xfs := inodeEvent("x1", at(5, 2), fs2, "EUCLEAN", 1, 0x84, 9, msgXFS)
	xfs.Source = event.SourceKmsg
	return []event.Event{
		whole,
		inodeEvent("l1", at(0, 10), fs1, "EUCLEAN", 1, 12, 7, msgLookup),
		inodeEvent("l2", at(0, 40), fs1, "EUCLEAN", 2, 12, 7, msgLookup),
		inodeEvent("d1", at(1, 15), fs1, "EUCLEAN", 1, 2, 0, msgDir),
		blk,
		inodeEvent("l3", at(3, 59), fs1, "EUCLEAN", 1, 12, 7, msgLookup),
		blk2,
		xfs,
	}
}

// bruteReport computes what Report must return for q from the events
// alone.
func bruteReport(evs []event.Event, q ReportQuery, keys map[string]bool) *Report {
	groups := map[gk]*Group{}
	var sel []*event.Event
	start := q.Since
	for i := range evs {
		e := &evs[i]
		if e.Time.Before(q.Since) || keys != nil && !keys[e.FSKey()] || e.Kind != event.KindError {
			continue
		}
		sel = append(sel, e)
		if q.Since.IsZero() && (start.IsZero() || e.Time.Before(start)) {
			start = e.Time.Time
		}
	}
	until := q.Until
	if until.IsZero() {
		until = time.Now()
	}
	span := int64(1)
	if until.Sub(start) > MaxHourlySpan {
		span = 24
	}
	rate := map[rk]*RateCount{}
	for _, e := range sel {
		t, n := e.Time.UnixNano(), int64(e.ErrorCount)
		for _, g := range groupsOf(e) {
			k := gk{e.FSKey(), g.dim, g.value}
			addGroup(groups, k, "", n, 1, t, t)
			addLabel(groups, k, g.label, t)
		}
		k := rk{e.FSKey(), bucketOf(t, span*hourNS)}
		if rate[k] == nil {
			rate[k] = &RateCount{FSKey: k.fsKey, Start: time.Unix(0, k.bucket*span*hourNS)}
		}
		rate[k].Errors += uint64(n)
		rate[k].Events++
	}
	r := assemble(groups, rate)
	r.Bucket = time.Duration(span) * time.Hour
	return r
}

// withFoundPaths gives the inode groups of r without a label the path the
// damaged files of s have for the inode, as Report does.
func withFoundPaths(t *testing.T, s *Store, r *Report) *Report {
	t.Helper()
	files, err := s.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Groups {
		g := &r.Groups[i]
		if g.Dim != DimFile || g.Label != "" {
			continue
		}
		var at time.Time
		for _, f := range files {
			if f.FSKey == g.FSKey && strconv.FormatUint(f.Inode, 10) == g.Value && f.Path != "" && (g.Label == "" || f.Last.After(at)) {
				g.Label, at = f.Path, f.Last
			}
		}
	}
	return r
}

func TestReport(t *testing.T) {
	s := openTemp(t)
	evs := history()
	// In several batches, as the daemon commits them.
	commit(t, s, &Batch{Events: evs[:3]})
	commit(t, s, &Batch{Events: evs[3:5]})
	commit(t, s, &Batch{Events: evs[5:]})

	until := evs[7].Time.Add(time.Hour)
	r, err := s.Report(ctx, ReportQuery{Until: until})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range r.Groups {
		got = append(got, fmt.Sprintf("%s %s %q %q %d/%d", g.FSKey[:4], g.Dim, g.Value, g.Label, g.Errors, g.Events))
	}
	want := []string{
		`1b4e location "ext4_lookup:1855" "" 4/3`,
		`1b4e location "htree_dirblock_to_tree:1087" "" 1/1`,
		`1b4e location "trigger_test_error:129" "" 1/1`,
		`1b4e errno "EUCLEAN" "" 6/5`,
		`1b4e source "fanotify" "" 6/5`,
		`1b4e file "12" "" 4/3`,
		`1b4e file "2" "" 1/1`,
		`1b4e device "/dev/sda1" "" 6/5`,
		`6f1c location "xfs_dinode_verify.part.0" "" 1/1`,
		`6f1c errno "EIO" "" 2/2`,
		`6f1c errno "EUCLEAN" "" 1/1`,
		`6f1c source "kmsg" "" 3/3`,
		`6f1c file "132" "" 1/1`,
		`6f1c device "/dev/sdb1" "" 3/3`,
		`6f1c disk "sdb" "" 2/2`,
		`6f1c region "sdb:4194304-6291455" "" 2/2`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var hours []string
	for _, h := range r.Rate {
		hours = append(hours, fmt.Sprintf("%s+%dh:%d", h.FSKey[:4], h.Start.Sub(base.Truncate(time.Hour))/time.Hour, h.Errors))
	}
	if r.Bucket != time.Hour {
		t.Errorf("the rate of a few hours is per %v, want per hour", r.Bucket)
	}
	if w := "1b4e+0h:4 1b4e+1h:1 6f1c+2h:1 1b4e+3h:1 6f1c+5h:2"; strings.Join(hours, " ") != w {
		t.Errorf("hours %s, want %s", strings.Join(hours, " "), w)
	}
	if g := r.Groups[0]; !g.First.Equal(evs[1].Time.Time) || !g.Last.Equal(evs[5].Time.Time) {
		t.Errorf("first/last of %s: %v %v", g.Value, g.First, g.Last)
	}

	// Any since, within an hour or on its boundary, and any file system:
	// the same as counting the events themselves.
	for _, since := range []time.Time{{}, evs[1].Time.Time, evs[1].Time.Add(time.Nanosecond), base.Truncate(time.Hour).Add(time.Hour),
		evs[4].Time.Add(-time.Minute), evs[7].Time.Add(time.Second)} {
		for _, fs := range []string{"", "/data", fs2.UUID} {
			for _, until := range []time.Time{until, {}} {
				q := ReportQuery{Since: since, FS: fs, Until: until}
				got, err := s.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var keys map[string]bool
				switch fs {
				case "/data":
					keys = map[string]bool{fs1.UUID: true}
				case fs2.UUID:
					keys = map[string]bool{fs2.UUID: true}
				}
				if want := withFoundPaths(t, s, bruteReport(evs, q, keys)); !reflect.DeepEqual(got, want) {
					t.Errorf("%+v:\n%+v\nwant\n%+v", q, got, want)
				}
			}
		}
	}
	if _, err := s.Report(ctx, ReportQuery{FS: "/nowhere"}); err == nil || !strings.Contains(err.Error(), "no file system known as /nowhere") {
		t.Errorf("unknown file system: %v", err)
	}

	// Pruning deletes the hours before the cut, not the hour it falls in.
	if _, err := s.Prune(ctx, evs[4].Time.Time); err != nil {
		t.Fatal(err)
	}
	r, _ = s.Report(ctx, ReportQuery{Until: until})
	if len(r.Rate) != 3 || !r.Rate[0].Start.Equal(base.Truncate(time.Hour).Add(2*time.Hour)) {
		t.Errorf("hours after pruning: %+v", r.Rate)
	}
}

// TestReportAcrossDays: over days, with since anywhere (midnight, within
// an hour, on an hour), Report counts exactly what the events hold.
func TestReportAcrossDays(t *testing.T) {
	s := openTemp(t)
	day := base.Truncate(24 * time.Hour)
	var evs []event.Event
	for i := 0; i < 400; i++ {
		at := day.Add(time.Duration(i) * 137 * time.Minute)
		f := fs1
		if i%3 == 0 {
			f = fs2
		}
		e := inodeEvent(fmt.Sprintf("e%d", i), at, f, []string{"EIO", "EUCLEAN"}[i%2], uint32(1+i%4), uint64(10+i%5), 1, msgLookup)
		if i%7 == 0 {
			e.KernelMessage = msgBlock
		}
		if i%11 == 0 {
			e.Path = fmt.Sprintf("/data/f%d", i)
		}
		evs = append(evs, e)
	}
	for i := 0; i < len(evs); i += 50 {
		commit(t, s, &Batch{Events: evs[i:min(i+50, len(evs))]})
	}
	month := time.Unix(0, bucketAfter(day.UnixNano(), 720*hourNS)*720*hourNS)
	for _, since := range []time.Time{{}, day, day.Add(time.Nanosecond), day.Add(24 * time.Hour), day.Add(30*time.Hour + 7*time.Minute),
		day.Add(47*time.Hour + 59*time.Minute), day.Add(72 * time.Hour), day.Add(200 * time.Hour), month, month.Add(-time.Hour), month.Add(time.Minute)} {
		for _, fs := range []string{"", fs2.UUID} {
			for _, until := range []time.Time{{}, since.Add(48 * time.Hour)} {
				q := ReportQuery{Since: since, FS: fs, Until: until}
				got, err := s.Report(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				var keys map[string]bool
				if fs != "" {
					keys = map[string]bool{fs: true}
				}
				if want := withFoundPaths(t, s, bruteReport(evs, q, keys)); !reflect.DeepEqual(got, want) {
					t.Errorf("%+v:\n%+v\nwant\n%+v", q, got, want)
				}
			}
		}
	}
}

func TestDamagedFiles(t *testing.T) {
	s := openTemp(t)
	evs := history()
	evs[1].PathPending = true
	commit(t, s, &Batch{Events: evs})
	files, err := s.DamagedFiles(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, fmt.Sprintf("%s %d/%d %s %d/%d pending=%v", f.FSKey[:4], f.Inode, *f.Generation, f.Errno, f.Errors, f.Events, f.PathPending))
	}
	if w := "1b4e 12/7 EUCLEAN 4/3 pending=true,1b4e 2/0 EUCLEAN 1/1 pending=false,6f1c 132/9 EUCLEAN 1/1 pending=false"; strings.Join(got, ",") != w {
		t.Errorf("damaged files:\n%s\nwant\n%s", strings.Join(got, ","), w)
	}

	// A path found later fills in; a lookup that finds no entry says the
	// file was deleted.
	commit(t, s, &Batch{Events: []event.Event{inodeEvent("p1", base.Add(10*time.Hour), fs1, "EIO", 1, 40, 3, "")}})
	if _, err := s.AttachPath(ctx, fs1.UUID, 40, 3, "", "no directory entry on /dev/sda1 names inode 40 (deleted, or its entry not yet written to the device)"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AttachPath(ctx, fs1.UUID, 12, 7, "/data/bad", ""); err != nil {
		t.Fatal(err)
	}
	// The report's inode group has the path too, whatever the period.
	for _, since := range []time.Time{{}, evs[1].Time.Add(-time.Second), evs[1].Time.Add(time.Second)} {
		r, _ := s.Report(ctx, ReportQuery{Since: since, FS: fs1.UUID})
		for _, g := range r.Groups {
			if g.Dim == DimFile && g.Value == "12" && g.Label != "/data/bad" {
				t.Errorf("since %v: the report's group of inode 12 has label %q, want the path found", since, g.Label)
			}
		}
	}
	// The inode of the directory is reused by another file.
	commit(t, s, &Batch{Events: []event.Event{inodeEvent("r1", base.Add(11*time.Hour), fs1, "EUCLEAN", 1, 2, 5, msgDir)}})
	files, _ = s.DamagedFiles(ctx, fs1.UUID)
	got = nil
	for _, f := range files {
		got = append(got, fmt.Sprintf("%d/%d %q %q", f.Inode, *f.Generation, f.Path, f.State))
	}
	if w := `2/5 "" "",40/3 "" "deleted",12/7 "/data/bad" "",2/0 "" "replaced"`; strings.Join(got, ",") != w {
		t.Errorf("damaged files of fs1:\n%s\nwant\n%s", strings.Join(got, ","), w)
	}

	// Resolved: the list of that file system is empty; the other stays.
	if err := s.MarkHealthy(ctx, fs1.UUID, base.Add(12*time.Hour)); err != nil {
		t.Fatal(err)
	}
	files, _ = s.DamagedFiles(ctx, "")
	if len(files) != 1 || files[0].FSKey != fs2.UUID {
		t.Errorf("damaged files after resolving fs1: %+v", files)
	}
}

// TestMigrationBackfillsSummary: a database of schema version 4 with a
// history gets the same summary on upgrade as if its events had been
// committed with it.
func TestMigrationBackfillsSummary(t *testing.T) {
	path := PathIn(t.TempDir())
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	evs := history()
	commit(t, s, &Batch{Events: evs[:4]})
	if err := s.MarkHealthy(ctx, fs1.UUID, evs[3].Time.Add(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Events: evs[4:]})
	want, _ := s.Report(ctx, ReportQuery{})
	wantFiles, _ := s.DamagedFiles(ctx, "")
	// Back to version 4, as an older fshealth left it.
	for _, q := range []string{`DROP TABLE error_groups`, `DROP TABLE error_rate`, `DROP TABLE damaged_files`, `DROP INDEX events_path_pending`, `DROP TABLE summarised`, `UPDATE schema_version SET version = 4`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if _, err := OpenReadOnly(path); err == nil || !strings.Contains(err.Error(), "older") {
		t.Fatalf("read-only open of version 4: %v", err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Report(ctx, ReportQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("backfilled report:\n%+v\nwant\n%+v", got, want)
	}
	gotFiles, _ := s.DamagedFiles(ctx, "")
	if !reflect.DeepEqual(gotFiles, wantFiles) || len(gotFiles) != 2 {
		t.Errorf("backfilled damaged files:\n%+v\nwant (the 2 since fs1 was healthy)\n%+v", gotFiles, wantFiles)
	}
}

// TestErrnosSinceHealthyMidHour: marked healthy within an hour, only the
// errors after it count.
func TestErrnosSinceHealthyMidHour(t *testing.T) {
	s := openTemp(t)
	h := base.Truncate(time.Hour)
	commit(t, s, &Batch{Events: []event.Event{
		errEvent("a", h.Add(10*time.Minute), fs1, "EIO", 5),
		errEvent("b", h.Add(40*time.Minute), fs1, "EIO", 2),
		errEvent("c", h.Add(50*time.Minute), fs1, "EUCLEAN", 1),
		errEvent("d", h.Add(3*time.Hour), fs1, "EIO", 4),
	}})
	if err := s.MarkHealthy(ctx, fs1.UUID, h.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, &Batch{Events: []event.Event{errEvent("e", h.Add(4*time.Hour), fs1, "EIO", 1)}})
	got, err := s.ErrnosSinceHealthy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if w := map[string]map[string]uint64{fs1.UUID: {"EIO": 7, "EUCLEAN": 1}}; !reflect.DeepEqual(got, w) {
		t.Errorf("ErrnosSinceHealthy = %v, want %v", got, w)
	}
}

// TestMergeSummarises: events kept in memory are summarised when merged,
// and an event carried from the disk database is not counted twice.
func TestMergeSummarises(t *testing.T) {
	disk := openTemp(t)
	evs := history()
	commit(t, disk, &Batch{Events: evs[:3]})
	mem, err := OpenMemory(1000)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if err := disk.SeedMemory(ctx, mem); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.CarryEvents(ctx, mem, 10); err != nil {
		t.Fatal(err)
	}
	commit(t, mem, &Batch{Events: evs[3:]})
	if _, err := disk.MergeInto(ctx, mem); err != nil {
		t.Fatal(err)
	}
	got, _ := disk.Report(ctx, ReportQuery{})
	if want := withFoundPaths(t, disk, bruteReport(evs, ReportQuery{}, nil)); !reflect.DeepEqual(got, want) {
		t.Errorf("merged report:\n%+v\nwant\n%+v", got, want)
	}
}

// TestQueriesUseIndexes: the queries the command line and the daemon run
// on a big history are answered from indexes, not by scanning the events.
func TestQueriesUseIndexes(t *testing.T) {
	s := openTemp(t)
	for _, q := range []struct {
		name, sql string
		args      []any
		want      string
	}{
		{"events --since", `SELECT json FROM (SELECT seq, time, json FROM events WHERE time >= ?) ORDER BY time, seq`, []any{1}, "events_time"},
		{"events --fs", `SELECT json FROM (SELECT seq, time, json FROM events WHERE fs_key IN (SELECT fs_key FROM fs_names WHERE name = ?)) ORDER BY time, seq`, []any{"/x"}, "events_fs_time"},
		{"AttachPath", `SELECT seq, json FROM events WHERE fs_key = ? AND kind = ? AND ` + pendingSQL + ` ORDER BY seq`, []any{"k", "error"}, "events_path_pending"},
		{"PendingPaths", `SELECT fs_key, json FROM events INDEXED BY events_path_pending WHERE kind = ? AND ` + pendingSQL + ` ORDER BY seq DESC`, []any{"error"}, "events_path_pending"},
		{"overflows", `SELECT count(*), coalesce(max(time), 0) FROM events WHERE kind = 'overflow' AND time >= ?`, []any{1}, "events_time"},
		{"report buckets", `SELECT fs_key, dim, value, sum(errors), sum(events), min(first), max(last) FROM error_groups WHERE span = ? AND bucket >= ? AND bucket < ? GROUP BY fs_key, dim, value`, []any{24, 1, 2}, "PRIMARY KEY"},
		{"report rate", `SELECT fs_key, bucket, errors, events FROM error_rate WHERE span = ? AND bucket >= ? AND bucket < ?`, []any{1, 1, 2}, "PRIMARY KEY"},
		{"check errnos", `SELECT fs_key, dim, value, sum(errors), sum(events), min(first), max(last) FROM error_groups WHERE span = ? AND bucket >= ? AND bucket < ? AND fs_key IN (?) AND dim = ? GROUP BY fs_key, dim, value`, []any{24, 1, 2, "k", "errno"}, "PRIMARY KEY"},
		{"prune summaries", pruneGroupsSQL(24), []any{1, 2}, "PRIMARY KEY"},
		{"prune rates", pruneRateSQL(24), []any{1, 2}, "PRIMARY KEY"},
		{"events --fs, keys resolved", `SELECT json FROM (SELECT seq, time, json FROM events WHERE time >= ? AND fs_key IN (?)) ORDER BY time, seq`, []any{1, "k"}, "events_fs_time"},
	} {
		rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			rows.Scan(&id, &parent, &unused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, q.want) || slices.ContainsFunc(plan, func(d string) bool { return strings.HasPrefix(d, "SCAN ") && !strings.Contains(d, " USING ") }) {
			t.Errorf("%s: plan %q, want it to use %s and scan no table whole", q.name, p, q.want)
		}
	}
}

// TestScanRawEvents: the raw scan gives the stored objects, as ScanEvents
// does, in the same order.
func TestScanRawEvents(t *testing.T) {
	s := openTemp(t)
	commit(t, s, &Batch{Events: history()})
	var decoded, raw []string
	if err := s.ScanEvents(ctx, EventQuery{FS: "/data"}, func(_ *event.Event, r []byte) error {
		decoded = append(decoded, string(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.ScanRawEvents(ctx, EventQuery{FS: "/data"}, func(r []byte) error {
		raw = append(raw, string(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 5 || !reflect.DeepEqual(raw, decoded) {
		t.Errorf("raw scan: %d objects, decoded scan %d; equal %v", len(raw), len(decoded), reflect.DeepEqual(raw, decoded))
	}
}
