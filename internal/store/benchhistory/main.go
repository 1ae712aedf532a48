// Command benchhistory measures fshealth on a big history (`make
// bench-history`): it writes a state database of 1,000,000 events spread
// over a year (one noisy file system, a few quiet ones), then times, against
// floors measured in the same run on the same machine,
//
//   - the queries behind `events --since 1h`, `events --fs X`, `status`,
//     `check` and `report`, in process and as the real commands (the
//     fshealth binary run against the database);
//   - the daemon's commit of one error (one event, two outbox rows) on the
//     big database and on an empty one in the same directory;
//   - the database's size, and its size after pruning to the default
//     retention.
//
// It prints one table (Markdown) of percentiles, the ratio to the floor, CPU
// and peak RSS.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/store"

	_ "modernc.org/sqlite"
)

func main() {
	events := flag.Int("events", 1_000_000, "events in the history")
	days := flag.Int("days", 365, "days the history spans")
	dir := flag.String("dir", "", "where to write the database (default: a new temporary directory, removed at the end)")
	binary := flag.String("fshealth", "", "the fshealth binary to run the commands with (default: only in-process figures)")
	n := flag.Int("n", 20, "repetitions of each measurement")
	flag.Parse()
	if err := run(*events, *days, *dir, *binary, *n); err != nil {
		fmt.Fprintln(os.Stderr, "benchhistory:", err)
		os.Exit(1)
	}
}

// The file systems of the history: the noisy one gets 90% of the events.
var (
	noisy = alert.Filesystem{UUID: "a10bc9bc-22a5-499b-9a0d-5899c847da19", Device: "/dev/sdb1", FSType: "ext4", Mountpoints: []string{"/srv"}}
	quiet = []alert.Filesystem{
		{UUID: "6f1c7f2e-8d7a-4a8e-9c55-3f0b1d2e4a61", Device: "/dev/sdc1", FSType: "xfs", Mountpoints: []string{"/backup"}},
		{UUID: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", Device: "/dev/sda2", FSType: "ext4", Mountpoints: []string{"/"}},
		{UUID: "0d5e2c1a-9b7f-4e3d-8a6c-5f4e3d2c1b0a", Device: "/dev/nvme0n1p1", FSType: "ext4", Mountpoints: []string{"/var/lib/docker"}},
	}
)

// genEvent returns the i-th event of a history of n events ending at end
// and spanning span, in time order.
func genEvent(i, n int, end time.Time, span time.Duration) event.Event {
	at := end.Add(-span + time.Duration(float64(span)*float64(i)/float64(n)))
	f := noisy
	if i%10 == 9 {
		f = quiet[(i/10)%len(quiet)]
	}
	e := event.Event{
		ID: fmt.Sprintf("bench-%07d", i), Kind: event.KindError, Time: event.Time{Time: at}, Source: event.SourceFanotify,
		Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning", ErrorCount: uint32(1 + i%3), PID: 4242,
		FSID: "1234:5678", Device: f.Device, FSType: f.FSType, UUID: f.UUID, Mountpoints: f.Mountpoints,
	}
	switch i % 7 {
	case 0, 1, 2, 3: // lookups of a few hundred corrupted inodes
		ino, gen := uint64(1000+i%300), uint32(77+i%300)
		e.Inode, e.Generation, e.Path = &ino, &gen, fmt.Sprintf("%s/data/file-%d", f.Mountpoints[0], ino)
		e.KernelMessage = fmt.Sprintf("EXT4-fs error (device %s): ext4_lookup:1855: inode #%d: comm ls: iget: bogus i_mode (377)", filepath.Base(f.Device), ino)
		e.Ext4 = &ext4.State{ErrorsCount: uint64(i), LastError: &ext4.ErrorInfo{Time: at.Truncate(time.Second), Function: "ext4_lookup", Line: 1855, Inode: ino, Code: 5, Error: "EUCLEAN"}}
	case 4: // a bad directory block
		ino := uint64(2)
		e.Inode = &ino
		e.KernelMessage = fmt.Sprintf("EXT4-fs error (device %s): htree_dirblock_to_tree:1087: inode #2: block 1234: comm find: bad entry in directory: rec_len is smaller than minimal - offset=0, inode=0, rec_len=0, size=4096 fake=0", filepath.Base(f.Device))
	default: // failed reads of the disk
		e.Source, e.Errno, e.Error, e.ErrorText = event.SourceKmsg, 5, "EIO", "input/output error"
		e.KernelMessage = fmt.Sprintf("I/O error, dev sdb, sector %d op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 2", 2048+(i%5000)*8192)
	}
	return e
}

// generate writes the history to a new database at path.
func generate(path string, n, days int, end time.Time) (time.Duration, error) {
	start := time.Now()
	s, err := store.Open(path)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if err := s.SetWatched(context.Background(), append([]alert.Filesystem{noisy}, quiet...)); err != nil {
		return 0, err
	}
	span := time.Duration(days) * 24 * time.Hour
	const batch = 5000
	b := &store.Batch{Events: make([]event.Event, 0, batch)}
	for i := 0; i < n; i++ {
		b.Events = append(b.Events, genEvent(i, n, end, span))
		if len(b.Events) == batch || i == n-1 {
			if err := s.Commit(context.Background(), b); err != nil {
				return 0, err
			}
			b.Events = b.Events[:0]
		}
	}
	return time.Since(start), nil
}

// sample is one measured figure.
type sample struct {
	name  string
	times []time.Duration
	cpu   time.Duration // per repetition
	floor string        // the name of its floor
	note  string
}

func (s *sample) pct(p float64) time.Duration {
	t := append([]time.Duration(nil), s.times...)
	sort.Slice(t, func(i, j int) bool { return t[i] < t[j] })
	return t[min(len(t)-1, int(p*float64(len(t))))]
}

// timeIt runs fn n times and returns its times and the CPU it took per run.
func timeIt(n int, fn func() error) ([]time.Duration, time.Duration, error) {
	var ts []time.Duration
	var before unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	for i := 0; i < n; i++ {
		t := time.Now()
		if err := fn(); err != nil {
			return nil, 0, err
		}
		ts = append(ts, time.Since(t))
	}
	var after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	return ts, (cpuOf(after) - cpuOf(before)) / time.Duration(n), nil
}

func cpuOf(r unix.Rusage) time.Duration {
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// command runs the fshealth binary n times with args and returns its wall
// times and CPU per run. (Not its peak RSS: a child's ru_maxrss counts the
// parent's memory it was forked with.)
func command(n int, binary string, args ...string) ([]time.Duration, time.Duration, error) {
	var ts []time.Duration
	var cpu time.Duration
	for i := 0; i < n; i++ {
		cmd := exec.Command(binary, args...)
		cmd.Stdout, cmd.Stderr = nil, nil
		t := time.Now()
		if err := cmd.Run(); err != nil {
			// check exits 2 on critical findings, as it should here.
			if ee, ok := err.(*exec.ExitError); !ok || (args[0] != "check" && args[0] != "status") || ee.ExitCode() > 3 {
				return nil, 0, fmt.Errorf("%s %s: %w", binary, strings.Join(args, " "), err)
			}
		}
		ts = append(ts, time.Since(t))
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return ts, cpu / time.Duration(n), nil
}

// fdatasyncFloor times a 4 KiB write and fdatasync of a file in dir.
func fdatasyncFloor(dir string, n int) ([]time.Duration, time.Duration, error) {
	f, err := os.CreateTemp(dir, "floor-")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	return timeIt(n, func() error {
		if _, err := f.WriteAt(buf, 0); err != nil {
			return err
		}
		return unix.Fdatasync(int(f.Fd()))
	})
}

// commitOne commits one error event with two deliveries, as the daemon does
// for the first error of an incident; if durable is not nil, it gets the
// time until the batch was durable (Batch.Durable: what the alerts wait
// for), the rest being the error summary's own transaction.
func commitOne(s *store.Store, seq *int, durable *[]time.Duration) error {
	*seq++
	now := time.Now()
	e := genEvent(0, 1, now, 0)
	e.ID = fmt.Sprintf("commit-%d", *seq)
	e.Time = event.Time{Time: now}
	b := &store.Batch{Events: []event.Event{e}}
	for _, ch := range []string{"webhook", "mail"} {
		b.Deliveries = append(b.Deliveries, store.Delivery{Channel: ch, Alert: alert.Alert{ID: e.ID, Type: alert.TypeError,
			Severity: alert.SeverityCritical, Time: now, Filesystem: noisy, ErrorKind: "EUCLEAN", Count: 1, Since: now, Event: &e}})
	}
	start := time.Now()
	b.Durable = func() {
		if durable != nil {
			*durable = append(*durable, time.Since(start))
		}
	}
	return s.Commit(context.Background(), b)
}

func run(nEvents, days int, dir, binary string, n int) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "fshealth-bench-history-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx := context.Background()
	state := filepath.Join(dir, "state")
	path := store.PathIn(state)
	end := time.Now()
	gen, err := generate(path, nEvents, days, end)
	if err != nil {
		return err
	}
	size := fileSize(path) + fileSize(path+"-wal")
	fmt.Printf("history: %d events over %d days (90%% on %s), written in %s; database %.1f MiB (%.0f bytes per event)\n\n",
		nEvents, days, noisy.Mountpoints[0], gen.Round(time.Second), float64(size)/(1<<20), float64(size)/float64(nEvents))

	var out []*sample
	add := func(s *sample) { out = append(out, s) }

	// Floors.
	ro, err := store.OpenReadOnly(path)
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	ts, cpu, err := timeIt(n*10, func() error {
		var j []byte
		return db.QueryRow(`SELECT json FROM events WHERE id = ?`, fmt.Sprintf("bench-%07d", nEvents/2)).Scan(&j)
	})
	if err != nil {
		return err
	}
	add(&sample{name: "floor: one indexed SQLite point query (an event by id)", times: ts, cpu: cpu})
	ts, cpu, err = fdatasyncFloor(state, n*5)
	if err != nil {
		return err
	}
	add(&sample{name: "floor: 4 KiB write + fdatasync in the state directory", times: ts, cpu: cpu})

	// In-process queries.
	queries := []struct {
		name string
		fn   func() error
	}{
		{"query: events --since 1h", func() error {
			_, err := ro.Events(ctx, store.EventQuery{Since: end.Add(-time.Hour)})
			return err
		}},
		{"query: events --fs /backup --since 30d", func() error {
			_, err := ro.Events(ctx, store.EventQuery{FS: "/backup", Since: end.Add(-30 * 24 * time.Hour)})
			return err
		}},
		{"query: events --fs /srv --limit 100", func() error {
			_, err := ro.Events(ctx, store.EventQuery{FS: "/srv", Limit: 100})
			return err
		}},
		{"query: status (file systems, damaged files)", func() error {
			if _, err := ro.Filesystems(ctx); err != nil {
				return err
			}
			_, err := ro.DamagedFiles(ctx, "")
			return err
		}},
		{"query: check (errnos since healthy, overflows, given up)", func() error {
			if _, err := ro.ErrnosSinceHealthy(ctx); err != nil {
				return err
			}
			if _, _, err := ro.Overflows(ctx, end.Add(-24*time.Hour)); err != nil {
				return err
			}
			_, err := ro.GivenUpSince(ctx, end.Add(-24*time.Hour))
			return err
		}},
		{"query: report --since 24h", func() error {
			_, err := ro.Report(ctx, store.ReportQuery{Since: end.Add(-24*time.Hour - 17*time.Minute)})
			return err
		}},
		{"query: report (the whole year)", func() error {
			_, err := ro.Report(ctx, store.ReportQuery{})
			return err
		}},
	}
	for _, q := range queries {
		ts, cpu, err := timeIt(n, q.fn)
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		add(&sample{name: q.name, times: ts, cpu: cpu, floor: "query"})
	}
	ro.Close()

	// The real commands.
	if binary != "" {
		ts, cpu, err := command(n, binary, "--version")
		if err != nil {
			return err
		}
		add(&sample{name: "floor: fshealth --version (process start)", times: ts, cpu: cpu})
		sd := "--state-dir=" + state
		for _, c := range []struct {
			name string
			args []string
		}{
			{"fshealth events --since 1h", []string{"events", "--since", "1h", sd}},
			{"fshealth events --fs /backup --since 30d", []string{"events", "--fs", "/backup", "--since", "30d", sd}},
			{"fshealth events --fs /backup (the newest 1000, the default)", []string{"events", "--fs", "/backup", sd}},
			{"fshealth events --fs /backup --limit 0 (a year: 3.3% of the history)", []string{"events", "--fs", "/backup", "--limit", "0", sd}},
			{"fshealth events --fs /srv --limit 100", []string{"events", "--fs", "/srv", "--limit", "100", sd}},
			{"fshealth status", []string{"status", sd}},
			{"fshealth status --files --json", []string{"status", "--files", "--json", sd}},
			{"fshealth check", []string{"check", sd}},
			{"fshealth report --since 24h", []string{"report", "--since", "24h", sd}},
			{"fshealth report --since 365d", []string{"report", "--since", "365d", sd}},
		} {
			ts, cpu, err := command(n, binary, c.args...)
			if err != nil {
				return err
			}
			add(&sample{name: c.name, times: ts, cpu: cpu, floor: "process"})
		}
	}

	// The daemon itself, started on the big history and on an empty one:
	// its RSS once ready.
	var readyLines []string
	if binary != "" {
		for _, c := range []struct{ name, state string }{
			{"fshealth daemon, ready, on the big history", state},
			{"fshealth daemon, ready, on an empty history", filepath.Join(dir, "empty-daemon")},
		} {
			ready, rss, err := daemonRSS(binary, dir, c.state)
			if err != nil {
				return err
			}
			readyLines = append(readyLines, fmt.Sprintf("%s: ready in %s, RSS %.1f MiB", c.name, ready.Round(time.Millisecond), float64(rss)/1024))
			add(&sample{name: c.name, times: []time.Duration{ready}, note: fmt.Sprintf("RSS %.1f MiB", float64(rss)/1024)})
		}
	}

	// The daemon's commit, on the big history and on an empty one.
	for _, c := range []struct {
		name, path string
	}{{"commit of one error + 2 outbox rows, big history", path}, {"commit of one error + 2 outbox rows, empty history", filepath.Join(dir, "empty", store.FileName)}} {
		s, err := store.Open(c.path)
		if err != nil {
			return err
		}
		if err := s.SetWatched(ctx, []alert.Filesystem{noisy}); err != nil {
			return err
		}
		seq := 0
		var durable []time.Duration
		ts, cpu, err := timeIt(n*5, func() error { return commitOne(s, &seq, &durable) })
		s.Close()
		if err != nil {
			return err
		}
		add(&sample{name: c.name, times: ts, cpu: cpu, floor: "fdatasync"})
		add(&sample{name: c.name + ", until durable (the alerts are handed over)", times: durable, floor: "fdatasync"})
	}
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)

	// Retention: prune to the default 90 days.
	s, err := store.Open(path)
	if err != nil {
		return err
	}
	t := time.Now()
	ps, err := s.Prune(ctx, end.Add(-90*24*time.Hour))
	s.Close()
	if err != nil {
		return err
	}
	pruneTime := time.Since(t)
	after := fileSize(path) + fileSize(path+"-wal")
	kept := int64(nEvents) - ps.Events

	// Upgrading a database of the previous schema (4) fills the summary
	// from the events, once, when the daemon first opens it.
	migration, err := downgradeAndUpgrade(path)
	if err != nil {
		return err
	}

	floors := map[string]time.Duration{}
	for _, s := range out {
		switch {
		case strings.HasPrefix(s.name, "floor: one indexed"):
			floors["query"] = s.pct(0.5)
		case strings.HasPrefix(s.name, "floor: 4 KiB"):
			floors["fdatasync"] = s.pct(0.5)
		case strings.HasPrefix(s.name, "floor: fshealth --version"):
			floors["process"] = s.pct(0.5)
		}
	}
	fmt.Println("| what | p50 | p90 | max | p50 / floor | CPU per run | note |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, s := range out {
		ratio := "—"
		if f := floors[s.floor]; f > 0 {
			ratio = fmt.Sprintf("%.1f×", float64(s.pct(0.5))/float64(f))
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", s.name, ms3(s.pct(0.5)), ms3(s.pct(0.9)), ms3(s.pct(1)), ratio, ms3(s.cpu), s.note)
	}
	fmt.Printf("\nthis process (generating, querying, committing): peak RSS %.1f MiB, Go heap in use %.1f MiB\n",
		float64(ru.Maxrss)/1024, float64(ms.HeapInuse)/(1<<20))
	fmt.Printf("prune to 90 days: %d events deleted in %s; database %.1f MiB → %.1f MiB (%.0f bytes per event kept)\n",
		ps.Events, pruneTime.Round(time.Millisecond), float64(size)/(1<<20), float64(after)/(1<<20), float64(after)/float64(kept))
	for _, l := range readyLines {
		fmt.Println(l)
	}
	fmt.Printf("upgrade from schema 4 (summarising the %d events kept, once): %s (%.1f µs per event)\n",
		kept, migration.Round(time.Millisecond), float64(migration.Microseconds())/float64(kept))
	return nil
}

// downgradeAndUpgrade turns the database at path back into schema version
// 4 (as an older fshealth left it) and times opening it, which upgrades it.
func downgradeAndUpgrade(path string) (time.Duration, error) {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return 0, err
	}
	for _, q := range []string{`DROP TABLE error_groups`, `DROP TABLE error_rate`, `DROP TABLE damaged_files`, `DROP INDEX events_path_pending`, `DROP TABLE summarised`, `UPDATE schema_version SET version = 4`} {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return 0, fmt.Errorf("%s: %w", q, err)
		}
	}
	db.Close()
	t := time.Now()
	s, err := store.Open(path)
	if err != nil {
		return 0, err
	}
	d := time.Since(t)
	return d, s.Close()
}

func ms3(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// daemonRSS starts `fshealth daemon` on the state directory state,
// watching /, with a retention that keeps the whole history (the year it
// holds would otherwise be pruned at start), and returns how long it took to log "ready" and its resident
// set (VmRSS, KiB) then; it stops it.
func daemonRSS(binary, dir, state string) (time.Duration, int64, error) {
	cfg := filepath.Join(dir, "daemon.toml")
	if err := os.WriteFile(cfg, []byte("[watch]\npaths = [\"/\"]\n\n[journal]\nmode = \"stderr\"\n\n[history]\nretention = \"400d\"\n"), 0o600); err != nil {
		return 0, 0, err
	}
	cmd := exec.Command(binary, "daemon", "--config", cfg, "--state-dir", state)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, err
	}
	t := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	ready := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 64<<10)
		var log []byte
		for {
			n, err := stderr.Read(buf)
			log = append(log, buf[:n]...)
			if strings.Contains(string(log), "msg=ready") {
				ready <- time.Since(t)
				io.Copy(io.Discard, stderr)
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "daemon log:\n%s\n", log)
				return
			}
		}
	}()
	select {
	case d := <-ready:
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			return 0, 0, err
		}
		var rss int64
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &rss)
			}
		}
		return d, rss, nil
	case <-time.After(5 * time.Minute):
		return 0, 0, fmt.Errorf("fshealth daemon on %s: not ready within 5 minutes", state)
	}
}
