package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampleEvery is how often storm samples the daemon's VmRSS.
const rssSampleEvery = 50 * time.Millisecond

// stormFS is one file system of the storm and what was seen of it.
type stormFS struct {
	sc     *scratch
	before uint64 // errors_count before the storm
	grew   uint64 // errors_count growth
	raised int    // successful writes to trigger_fs_error
	end    time.Time
	err    error

	// From the daemon's stderr (journal channel, mode stderr), after
	// each commit: events and their error_count sum.
	logEvents int
	logErrors uint64
	// From the journal channel's alert lines.
	journalAlerts      int
	journalAlertErrors uint64
	// From the webhook receiver.
	firstAlerts  int // type "error"
	digests      int
	otherAlerts  []string // any other type
	alertErrors  uint64   // sum of count
	firstCount   uint64
	lastDigestAt time.Time

	// From the history and the status.
	histEvents   int
	histErrors   uint64
	statusErrors uint64
	statusEvents uint64
}

// stormState is what the stderr reader and the receiver update while the
// storm runs.
type stormState struct {
	mu          sync.Mutex
	byDev       map[string]*stormFS
	lastEventAt time.Time
	lastAlertAt time.Time
	logOverflow int
	unknownDev  []string
}

func (s *stormState) fs(dev string) *stormFS {
	f := s.byDev[dev]
	if f == nil && len(s.unknownDev) < maxWarnings {
		s.unknownDev = append(s.unknownDev, dev)
	}
	return f
}

// onLine reads one line of the daemon's stderr.
func (s *stormState) onLine(line []byte, at time.Time) {
	isAlert := bytes.Contains(line, []byte(" alert_id="))
	isEvent := !isAlert && bytes.Contains(line, []byte(" event_id="))
	if !isAlert && !isEvent {
		return
	}
	f := logFields(line, "kind", "error_count", "device")
	s.mu.Lock()
	defer s.mu.Unlock()
	if isEvent {
		s.lastEventAt = at
		if f["kind"] == "overflow" {
			s.logOverflow++
			return
		}
	}
	fs := s.fs(f["device"])
	if fs == nil {
		return
	}
	n, _ := strconv.ParseUint(f["error_count"], 10, 64)
	if isEvent {
		fs.logEvents++
		fs.logErrors += n
	} else {
		fs.journalAlerts++
		fs.journalAlertErrors += n
	}
}

// onAlert counts one webhook alert.
func (s *stormState) onAlert(r received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastAlertAt = r.at
	fs := s.fs(r.alert.Filesystem.Device)
	if fs == nil {
		return
	}
	switch r.alert.Type {
	case "error":
		fs.firstAlerts++
		fs.firstCount = r.alert.Count
	case "digest":
		fs.digests++
		fs.lastDigestAt = r.at
	default:
		if len(fs.otherAlerts) < maxWarnings {
			fs.otherAlerts = append(fs.otherAlerts, r.alert.Type+" "+r.alert.ID)
		}
	}
	fs.alertErrors += r.alert.Count
}

// complete reports whether the daemon has logged (after committing) and
// alerted every error. wantJournal says whether alerts also go to the
// journal channel.
func (s *stormState) complete(fss []*stormFS, wantJournal bool) (recorded, alerted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recorded, alerted = true, true
	for _, f := range fss {
		if f.logErrors < f.grew {
			recorded = false
		}
		if f.alertErrors < f.grew || (wantJournal && f.journalAlertErrors < f.grew) {
			alerted = false
		}
	}
	return recorded, alerted
}

// storm is the storm subcommand, running inside the private mount namespace
// with dir as its scratch directory.
func storm(ctx context.Context, opt *options, dir string) (ok bool, err error) {
	fsh, how, err := findFshealth(ctx, opt.fshealth, dir)
	if err != nil {
		return false, err
	}
	fmt.Printf("fshealth: %s (%s)\n", fsh, how)
	fmt.Printf("load average at start: %s\n", loadavg())

	st := &stormState{byDev: map[string]*stormFS{}}
	fss := make([]*stormFS, 0, opt.fsCount)
	defer func() {
		var errs []error
		for _, f := range fss {
			errs = append(errs, f.sc.Close())
		}
		if cerr := errors.Join(errs...); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	t0 := time.Now()
	var mps []string
	for i := 0; i < opt.fsCount; i++ {
		sc, err := newScratchAt(dir, filepath.Join(dir, "mnt", fmt.Sprintf("fs%02d", i)), opt.size)
		if err != nil {
			return false, fmt.Errorf("scratch file system %d of %d: %w", i+1, opt.fsCount, err)
		}
		f := &stormFS{sc: sc}
		fss = append(fss, f)
		st.byDev[sc.im.Dev] = f
		mps = append(mps, sc.im.Mountpoint)
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	fmt.Printf("scratch: %d ext4 file systems of %d MiB (%s … %s, errors=continue) under %s, made in %v\n",
		len(fss), opt.size>>20, fss[0].sc.im.Dev, fss[len(fss)-1].sc.im.Dev, filepath.Join(dir, "mnt"), time.Since(t0).Round(time.Millisecond))

	stateDir := filepath.Join(dir, "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return false, err
	}
	if probe, err := syncProbe(stateDir, syncProbeN); err == nil {
		fmt.Printf("state dir: %s (%s); fdatasync after a 4 KiB append: p50 %s µs, p99 %s µs\n",
			stateDir, fsTypeOf(stateDir), us(percentile(probe, 50)), us(percentile(probe, 99)))
	}
	rcv, err := newReceiver(nil, st.onAlert)
	if err != nil {
		return false, err
	}
	defer rcv.Close()
	cfg := &daemonConfig{
		stateDir:    stateDir,
		mountpoints: mps,
		webhookURL:  rcv.URL,
		flood:       map[string]time.Duration{"window": opt.window, "reminder_initial": 0, "reminder_max": max(opt.reminderMax, opt.window)},
	}
	if opt.channels == "webhook" {
		cfg.channels = []string{benchWebhook}
	}
	cfgPath := filepath.Join(dir, "fshealth.toml")
	if err := cfg.write(cfgPath); err != nil {
		return false, err
	}
	d, err := startDaemon(ctx, fsh, dir, cfgPath, stateDir, true, st.onLine)
	if err != nil {
		return false, err
	}
	defer d.kill()
	fmt.Printf("daemon: pid %d, ready %v after start, watching %d file systems; [flood] window %v, reminder_max %v, reminders off; channels: %s\n",
		d.pid, time.Since(d.started).Round(time.Millisecond), len(fss), opt.window, max(opt.reminderMax, opt.window), opt.channels)

	for _, f := range fss {
		if f.before, err = readCount(filepath.Join(f.sc.im.SysfsDir(), "errors_count")); err != nil {
			return false, err
		}
	}
	res := &stormResult{fss: fss, errorsPerFS: opt.errors, window: opt.window}
	if res.stat0, err = readProcStat(d.pid); err != nil {
		return false, err
	}
	if res.rss0, err = statusKiB(d.pid, "VmRSS"); err != nil {
		return false, err
	}
	res.load0 = loadavg()

	// Sample the daemon's RSS while it works.
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(rssSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-t.C:
				if kib, err := statusKiB(d.pid, "VmRSS"); err == nil {
					res.rssSamples = append(res.rssSamples, rssSample{time.Now(), kib})
				}
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampler:
		default:
			close(stopSampler)
		}
		<-samplerDone
	}()

	fmt.Printf("raising %d errors on each of %d file systems (%d in all), one goroutine per file system\n", opt.errors, len(fss), opt.errors*len(fss))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, f := range fss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			for j := 0; j < opt.errors; j++ {
				if err := f.sc.trigger(); err != nil {
					f.err = fmt.Errorf("%s: write trigger_fs_error (error %d): %w", f.sc.im.Dev, j+1, err)
					break
				}
				f.raised++
				if j&1023 == 0 && ctx.Err() != nil {
					f.err = ctx.Err()
					break
				}
			}
			f.end = time.Now()
		}()
	}
	res.start = time.Now()
	close(start)
	wg.Wait()
	for _, f := range fss {
		if f.err != nil {
			return false, f.err
		}
		if f.end.After(res.raiseEnd) {
			res.raiseEnd = f.end
		}
	}
	fmt.Printf("raised in %v; waiting for the daemon to record and alert everything (at most %v)\n", res.raiseEnd.Sub(res.start).Round(time.Millisecond), opt.deadline)

	// ext4 publishes errors_count from a worker: wait for every count.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		settled := true
		for _, f := range fss {
			n, err := readCount(filepath.Join(f.sc.im.SysfsDir(), "errors_count"))
			if err != nil {
				return false, err
			}
			st.mu.Lock()
			f.grew = n - f.before
			st.mu.Unlock()
			if f.grew < uint64(f.raised) {
				settled = false
			}
		}
		if settled || time.Now().After(deadline) {
			break
		}
	}

	wantJournal := opt.channels == "all"
	deadline := time.NewTimer(opt.deadline)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		recorded, alerted := st.complete(fss, wantJournal)
		if recorded && res.recordedAt.IsZero() {
			st.mu.Lock()
			res.recordedAt = st.lastEventAt
			st.mu.Unlock()
			fmt.Printf("recorded everything %v after the first error\n", res.recordedAt.Sub(res.start).Round(time.Millisecond))
		}
		if recorded && alerted {
			st.mu.Lock()
			res.alertedAt = st.lastAlertAt
			st.mu.Unlock()
			fmt.Printf("alerted everything %v after the first error\n", res.alertedAt.Sub(res.start).Round(time.Millisecond))
			break
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			res.timedOut = true
			fmt.Printf("TIMED OUT after %v: the daemon has not recorded and alerted every error\n", opt.deadline)
			break wait
		case <-d.exited:
			return false, d.hasExited()
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	close(stopSampler)
	<-samplerDone

	if res.stat1, err = readProcStat(d.pid); err != nil {
		return false, err
	}
	if res.hwm, err = statusKiB(d.pid, "VmHWM"); err != nil {
		return false, err
	}
	if res.rss1, err = statusKiB(d.pid, "VmRSS"); err != nil {
		return false, err
	}
	res.load1 = loadavg()
	m, err := d.scrape(ctx)
	if err != nil {
		return false, err
	}
	res.overflowMetric = m.sum("fshealth_queue_overflows_total")
	res.undecodable = m.sum("fshealth_undecodable_reads_total")
	res.heapInuse = m.sum("go_memstats_heap_inuse_bytes")
	res.commit = m.histogram(commitMetric)
	res.attempts = m.sum("fshealth_delivery_attempts_total")
	res.failures = m.sum("fshealth_delivery_failures_total")
	st.mu.Lock()
	res.logOverflow = st.logOverflow
	res.unknownDev = st.unknownDev
	st.mu.Unlock()

	// The history and the status, read with fshealth's own commands.
	t1 := time.Now()
	hist, err := readHistory(ctx, fsh, stateDir)
	if err != nil {
		return false, err
	}
	res.eventsCmd = time.Since(t1)
	for _, ev := range hist {
		if ev.Kind != "error" {
			res.histOverflow++
			continue
		}
		res.histEvents++
		if f := st.byDev[ev.Device]; f != nil {
			f.histEvents++
			f.histErrors += ev.ErrorCount
		} else {
			res.histUnknown++
		}
	}
	var sd *statusDoc
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if sd, err = readStatus(ctx, fsh, stateDir); err != nil {
			return false, err
		}
		res.pending = 0
		for _, b := range sd.Deliveries {
			res.pending += b.Pending + b.Failed
		}
		if res.pending == 0 || time.Now().After(wait) {
			break
		}
	}
	for _, s := range sd.Filesystems {
		if f := st.byDev[s.Device]; f != nil {
			f.statusErrors, f.statusEvents = s.TotalErrors, s.Events
		}
	}
	res.dbMain, res.dbWAL, res.dbSHM = dbSize(stateDir)
	res.requests, res.dups, res.bad, res.badText = rcv.counts()
	res.nWarn, res.warnings = d.log.warningSummary()
	res.exitErr = d.stop()
	res.dbMainAfter, res.dbWALAfter, _ = dbSize(stateDir)
	res.wantJournal = wantJournal

	res.print(os.Stdout)
	return res.ok(), nil
}

type rssSample struct {
	at  time.Time
	kib int64
}

type stormResult struct {
	fss         []*stormFS
	errorsPerFS int
	window      time.Duration
	wantJournal bool

	start, raiseEnd       time.Time
	recordedAt, alertedAt time.Time
	timedOut              bool
	stat0, stat1          procStat
	rss0, rss1, hwm       int64
	rssSamples            []rssSample
	load0, load1          string

	overflowMetric, undecodable float64
	heapInuse                   float64
	commit                      histogram
	attempts, failures          float64
	logOverflow                 int
	unknownDev                  []string

	histEvents, histOverflow, histUnknown int
	eventsCmd                             time.Duration
	pending                               int
	dbMain, dbWAL, dbSHM                  int64
	dbMainAfter, dbWALAfter               int64
	requests, dups, bad                   int
	badText                               []string
	nWarn                                 int
	warnings                              []string
	exitErr                               error
}

// fsOK checks one file system: every error recorded and alerted.
func (r *stormResult) fsOK(f *stormFS) []string {
	var bad []string
	if f.grew != uint64(f.raised) {
		bad = append(bad, fmt.Sprintf("errors_count grew by %d for %d errors raised", f.grew, f.raised))
	}
	if f.histErrors != f.grew {
		bad = append(bad, fmt.Sprintf("history error_count sum %d", f.histErrors))
	}
	if f.logErrors != f.grew {
		bad = append(bad, fmt.Sprintf("journal event error_count sum %d", f.logErrors))
	}
	if f.statusErrors != f.grew || f.statusEvents != uint64(f.histEvents) {
		bad = append(bad, fmt.Sprintf("status total_errors %d, events %d (history: %d events)", f.statusErrors, f.statusEvents, f.histEvents))
	}
	if f.firstAlerts != 1 || len(f.otherAlerts) > 0 {
		bad = append(bad, fmt.Sprintf("%d first alerts (want 1), other alerts %q", f.firstAlerts, f.otherAlerts))
	}
	if f.alertErrors != f.grew {
		bad = append(bad, fmt.Sprintf("webhook alerts count %d (first %d + digests)", f.alertErrors, f.firstCount))
	}
	if r.wantJournal && f.journalAlertErrors != f.grew {
		bad = append(bad, fmt.Sprintf("journal alerts count %d", f.journalAlertErrors))
	}
	return bad
}

func (r *stormResult) ok() bool {
	for _, f := range r.fss {
		if len(r.fsOK(f)) > 0 {
			return false
		}
	}
	return !r.timedOut && r.overflowMetric == 0 && r.logOverflow == 0 && r.histOverflow == 0 && r.undecodable == 0 &&
		r.histUnknown == 0 && len(r.unknownDev) == 0 && r.pending == 0 && r.bad == 0 && r.exitErr == nil
}

func (r *stormResult) print(w *os.File) {
	var raised, grew, events, histErr, logEvents uint64
	var alerts, digests int
	for _, f := range r.fss {
		raised += uint64(f.raised)
		grew += f.grew
		events += uint64(f.histEvents)
		histErr += f.histErrors
		logEvents += uint64(f.logEvents)
		alerts += f.firstAlerts + f.digests + len(f.otherAlerts)
		digests += f.digests
	}
	raise := r.raiseEnd.Sub(r.start)
	fmt.Fprintf(w, "\n== fshealth daemon: error storm, %d file systems × %d errors\n", len(r.fss), r.errorsPerFS)
	fmt.Fprintf(w, "  raised        %d errors in %v: %.0f errors/s (the bench's %d writers)\n", raised, raise.Round(time.Millisecond), float64(raised)/raise.Seconds(), len(r.fss))
	if !r.recordedAt.IsZero() {
		rec := r.recordedAt.Sub(r.start)
		fmt.Fprintf(w, "  recorded      %d errors in %d events in %v after the first error (%v after the last): %.0f events/s, %.0f errors/s (%.1f errors per event)\n",
			histErr, events, rec.Round(time.Millisecond), r.recordedAt.Sub(r.raiseEnd).Round(time.Millisecond),
			float64(events)/rec.Seconds(), float64(histErr)/rec.Seconds(), float64(histErr)/max(float64(events), 1))
	}
	if !r.alertedAt.IsZero() {
		fmt.Fprintf(w, "  alerted       %d webhook alerts (%d first alerts, %d digests), the last %v after the first error (flood window %v, doubling)\n",
			alerts, alerts-digests, digests, r.alertedAt.Sub(r.start).Round(time.Millisecond), r.window)
	}
	total := r.alertedAt
	if total.IsZero() {
		total = time.Now()
	}
	fmt.Fprintf(w, "  wall time     %v from the first error to the last alert\n", total.Sub(r.start).Round(time.Millisecond))
	cpuU, cpuS := r.stat1.utime-r.stat0.utime, r.stat1.stime-r.stat0.stime
	fmt.Fprintf(w, "  daemon CPU    %.2f s (user %.2f + sys %.2f, /proc/<pid>/stat) = %.1f µs per event, %.2f µs per error; %d threads\n",
		(cpuU + cpuS).Seconds(), cpuU.Seconds(), cpuS.Seconds(),
		float64((cpuU+cpuS).Microseconds())/max(float64(events), 1), float64((cpuU+cpuS).Microseconds())/max(float64(histErr), 1), r.stat1.threads)
	var peak rssSample
	for _, s := range r.rssSamples {
		if s.kib > peak.kib {
			peak = s
		}
	}
	fmt.Fprintf(w, "  memory        VmRSS %d KiB before, %d KiB sampled peak (%v into the storm), %d KiB after; VmHWM %d KiB; Go heap in use %.1f MiB\n",
		r.rss0, peak.kib, peak.at.Sub(r.start).Round(time.Millisecond), r.rss1, r.hwm, r.heapInuse/(1<<20))
	fmt.Fprintf(w, "  history       %s\n", r.commit.describe())
	fmt.Fprintf(w, "  database      %.1f MiB + WAL %.1f MiB + shm %.1f MiB while running; %.1f MiB + WAL %.1f MiB after stopping\n",
		mib(r.dbMain), mib(r.dbWAL), mib(r.dbSHM), mib(r.dbMainAfter), mib(r.dbWALAfter))
	fmt.Fprintf(w, "  events cmd    fshealth events --json read %d events in %v\n", events+uint64(r.histOverflow), r.eventsCmd.Round(time.Millisecond))
	fmt.Fprintf(w, "  deliveries    %.0f attempts, %.0f failures (every channel); webhook: %d requests, %d duplicates\n", r.attempts, r.failures, r.requests, r.dups)
	fmt.Fprintf(w, "  load average  %s before, %s after\n", r.load0, r.load1)

	check := func(ok bool) string {
		if ok {
			return "OK"
		}
		return "MISMATCH"
	}
	fmt.Fprintf(w, "  overflow      metric %.0f, overflow events in history %d, on the journal %d, undecodable reads %.0f: %s\n",
		r.overflowMetric, r.histOverflow, r.logOverflow, r.undecodable, check(r.overflowMetric == 0 && r.histOverflow == 0 && r.logOverflow == 0 && r.undecodable == 0))
	fmt.Fprintf(w, "  error count   raised %d, errors_count grew by %d, history error_count sum %d (%d events), journal events %d: %s\n",
		raised, grew, histErr, events, logEvents, check(raised == grew && grew == histErr))
	var badFS []string
	for _, f := range r.fss {
		if bad := r.fsOK(f); len(bad) > 0 {
			badFS = append(badFS, f.sc.im.Dev+": "+strings.Join(bad, "; "))
		}
	}
	fmt.Fprintf(w, "  per fs        history, status, journal and alerts (1 first alert + digests adding up to errors_count growth) for each of %d file systems: %s\n",
		len(r.fss), check(len(badFS) == 0))
	for _, b := range badFS {
		fmt.Fprintf(w, "                %s\n", b)
	}
	var dig []int
	for _, f := range r.fss {
		dig = append(dig, f.digests)
	}
	sort.Ints(dig)
	if len(dig) > 0 {
		fmt.Fprintf(w, "  digests       per file system: min %d, max %d\n", dig[0], dig[len(dig)-1])
	}
	fmt.Fprintf(w, "  outbox        pending or failed after the storm: %d: %s\n", r.pending, check(r.pending == 0))
	if r.timedOut {
		fmt.Fprintln(w, "  completion    TIMED OUT")
	}
	if len(r.unknownDev) > 0 || r.histUnknown > 0 {
		fmt.Fprintf(w, "  unknown       devices %q, %d history events of unknown devices: MISMATCH\n", r.unknownDev, r.histUnknown)
	}
	if r.bad > 0 {
		fmt.Fprintf(w, "  receiver      %d bad requests: MISMATCH\n", r.bad)
		for _, b := range r.badText {
			fmt.Fprintf(w, "                %s\n", b)
		}
	}
	if r.nWarn > 0 {
		fmt.Fprintf(w, "  daemon log    %d warnings or errors:\n", r.nWarn)
		for _, l := range r.warnings {
			fmt.Fprintf(w, "                %s\n", l)
		}
	}
	if r.exitErr != nil {
		fmt.Fprintf(w, "  exit          FAILED after SIGTERM: %v\n", r.exitErr)
	} else {
		fmt.Fprintln(w, "  exit          status 0 after SIGTERM: OK")
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
