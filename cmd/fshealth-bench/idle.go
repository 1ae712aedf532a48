package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// idleAimKiB is the aim for the idle daemon's RSS: under 30 MB.
const idleAimKiB = 30 * 1000 * 1000 / 1024

// maxTimelineLines bounds the per-second wake-up lines idle prints.
const maxTimelineLines = 40

// maxStraceLines bounds the strace lines idle prints.
const maxStraceLines = 200

// idle is the idle subcommand, running inside the private mount namespace
// with dir as its scratch directory.
func idle(ctx context.Context, opt *options, dir string) (ok bool, err error) {
	fsh, how, err := findFshealth(ctx, opt.fshealth, dir)
	if err != nil {
		return false, err
	}
	fmt.Printf("fshealth: %s (%s)\n", fsh, how)
	fmt.Printf("load average at start: %s\n", loadavg())
	sc, err := newScratch(dir, opt.size)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := sc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	stateDir := filepath.Join(dir, "state")
	rcv, err := newReceiver(nil, nil)
	if err != nil {
		return false, err
	}
	defer rcv.Close()
	// The defaults, except what the bench needs: one file system, one
	// webhook (so the outbox has a channel), journal on stderr.
	cfg := &daemonConfig{stateDir: stateDir, mountpoints: []string{sc.im.Mountpoint}, webhookURL: rcv.URL}
	cfgPath := filepath.Join(dir, "fshealth.toml")
	if err := cfg.write(cfgPath); err != nil {
		return false, err
	}
	var env []string
	watchdog := "no watchdog"
	if opt.watchdog > 0 {
		// As systemd sets it for WatchdogSec=; without WATCHDOG_PID the
		// daemon accepts it as its own.
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(opt.watchdog.Microseconds(), 10))
		watchdog = fmt.Sprintf("watchdog as with WatchdogSec=%v (WATCHDOG_USEC; the pings go to a socket that is gone)", opt.watchdog)
	}
	d, err := startDaemon(ctx, fsh, dir, cfgPath, stateDir, true, nil, env...)
	if err != nil {
		return false, err
	}
	defer d.kill()
	fmt.Printf("daemon: pid %d, ready %v after start; default settings, one webhook, metrics on %s; %s\n",
		d.pid, time.Since(d.started).Round(time.Millisecond), d.metricsAddr, watchdog)
	sleep := func(t time.Duration) error {
		select {
		case <-time.After(t):
			return nil
		case <-d.exited:
			return d.hasExited()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fmt.Printf("settling for %v, then measuring for %v (reading /proc once a second, which does not wake the daemon)\n", opt.settle, opt.idleFor)
	if err := sleep(opt.settle); err != nil {
		return false, err
	}

	res := &idleResult{dur: opt.idleFor, load0: loadavg()}
	sw0, err := readSwitches(d.pid)
	if err != nil {
		return false, err
	}
	cpu0, cpuErr := threadsCPU(d.pid)
	prev := sw0
	start := time.Now()
	for sec := 1; time.Since(start) < opt.idleFor; sec++ {
		next := start.Add(time.Duration(sec) * time.Second)
		if end := start.Add(opt.idleFor); next.After(end) {
			next = end
		}
		if err := sleep(time.Until(next)); err != nil {
			return false, err
		}
		cur, err := readSwitches(d.pid)
		if err != nil {
			return false, err
		}
		if kib, err := statusKiB(d.pid, "VmRSS"); err == nil {
			res.rss = append(res.rss, kib)
		}
		if n := totalSwitches(cur) - totalSwitches(prev); n > 0 || len(cur) != len(prev) {
			res.timeline = append(res.timeline, idleSecond{at: time.Since(start), n: n, threads: diffThreads(prev, cur)})
		}
		prev = cur
	}
	res.elapsed = time.Since(start)
	res.sw0, res.sw1 = sw0, prev
	res.cpu = -1
	if cpu1, err := threadsCPU(d.pid); err == nil && cpuErr == nil {
		res.cpu = cpu1 - cpu0
	}
	if res.hwm, err = statusKiB(d.pid, "VmHWM"); err != nil {
		return false, err
	}
	res.load1 = loadavg()

	if opt.strace > 0 {
		res.strace, res.straceErr = straceFor(ctx, d.pid, opt.strace, dir)
	}
	// Only now (it wakes the daemon): check that metrics are served.
	if m, err := d.scrape(ctx); err != nil {
		res.metricsErr = err
	} else {
		res.goroutines = m.sum("go_goroutines")
		res.heapInuse = m.sum("go_memstats_heap_inuse_bytes")
		res.heapSys = m.sum("go_memstats_heap_sys_bytes")
		res.gcCycles = m.sum("go_gc_duration_seconds_count")
	}
	res.nWarn, res.warnings = d.log.warningSummary()
	res.exitErr = d.stop()
	res.print(os.Stdout, opt.strace)
	return res.ok(), nil
}

// idleSecond is one second of the idle window in which the daemon's threads
// switched.
type idleSecond struct {
	at      time.Duration
	n       uint64
	threads string
}

// diffThreads describes which threads switched between two readings.
func diffThreads(a, b map[int]threadSwitches) string {
	var parts []string
	tids := make([]int, 0, len(b))
	for tid := range b {
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	for _, tid := range tids {
		t := b[tid]
		o, had := a[tid]
		if !had {
			parts = append(parts, fmt.Sprintf("new thread %d (+%d/+%d)", tid, t.voluntary, t.involunt))
			continue
		}
		if dv, dn := t.voluntary-o.voluntary, t.involunt-o.involunt; dv+dn > 0 {
			parts = append(parts, fmt.Sprintf("tid %d +%d vol +%d invol", tid, dv, dn))
		}
	}
	for tid := range a {
		if _, ok := b[tid]; !ok {
			parts = append(parts, fmt.Sprintf("thread %d exited", tid))
		}
	}
	return strings.Join(parts, ", ")
}

type idleResult struct {
	dur, elapsed time.Duration
	sw0, sw1     map[int]threadSwitches
	timeline     []idleSecond
	rss          []int64
	hwm          int64
	cpu          time.Duration
	load0, load1 string

	strace     []string
	straceErr  error
	metricsErr error
	goroutines float64
	heapInuse  float64
	heapSys    float64
	gcCycles   float64
	nWarn      int
	warnings   []string
	exitErr    error
}

func (r *idleResult) ok() bool {
	return r.metricsErr == nil && r.exitErr == nil
}

func (r *idleResult) print(w *os.File, straceFor time.Duration) {
	n := totalSwitches(r.sw1) - totalSwitches(r.sw0)
	fmt.Fprintf(w, "\n== fshealth daemon: idle for %v\n", r.elapsed.Round(time.Millisecond))
	perMin := float64(n) / r.elapsed.Minutes()
	fmt.Fprintf(w, "  wake-ups      %d context switches over all threads (voluntary + involuntary, /proc/<pid>/task/*/status) = %.1f per minute; %d of %d seconds had any\n",
		n, perMin, len(r.timeline), int(r.elapsed.Round(time.Second)/time.Second))
	if r.cpu >= 0 {
		fmt.Fprintf(w, "  CPU           %v during the window (schedstat, all threads)\n", r.cpu.Round(time.Microsecond))
	}
	fmt.Fprintf(w, "  threads       %d at start, %d at end\n", len(r.sw0), len(r.sw1))
	tids := make([]int, 0, len(r.sw1))
	for tid := range r.sw1 {
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	for _, tid := range tids {
		t := r.sw1[tid]
		o := r.sw0[tid]
		if d := t.voluntary + t.involunt - o.voluntary - o.involunt; d > 0 {
			fmt.Fprintf(w, "                tid %d (%s): +%d voluntary, +%d involuntary\n", tid, t.name, t.voluntary-o.voluntary, t.involunt-o.involunt)
		}
	}
	for i, s := range r.timeline {
		if i == maxTimelineLines {
			fmt.Fprintf(w, "                … %d more seconds with switches\n", len(r.timeline)-i)
			break
		}
		fmt.Fprintf(w, "  t+%-4s        %d: %s\n", strconv.Itoa(int(s.at.Round(time.Second)/time.Second))+"s", s.n, s.threads)
	}
	if len(r.rss) > 0 {
		lo, hi := r.rss[0], r.rss[0]
		for _, v := range r.rss {
			lo, hi = min(lo, v), max(hi, v)
		}
		verdict := "meets"
		if hi >= idleAimKiB {
			verdict = "MISSES"
		}
		fmt.Fprintf(w, "  memory        VmRSS %d–%d KiB (%.1f–%.1f MB) during the window, VmHWM %d KiB: %s the 30 MB aim\n",
			lo, hi, float64(lo)*1024/1e6, float64(hi)*1024/1e6, r.hwm, verdict)
	}
	if r.metricsErr != nil {
		fmt.Fprintf(w, "  metrics       FAILED: %v\n", r.metricsErr)
	} else {
		fmt.Fprintf(w, "  metrics       served (scraped after the window): %.0f goroutines, heap in use %.1f MiB of %.1f MiB, %.0f GC cycles so far\n",
			r.goroutines, r.heapInuse/(1<<20), r.heapSys/(1<<20), r.gcCycles)
	}
	fmt.Fprintf(w, "  load average  %s before, %s after\n", r.load0, r.load1)
	if straceFor > 0 {
		if r.straceErr != nil {
			fmt.Fprintf(w, "  strace        FAILED: %v\n", r.straceErr)
		} else {
			fmt.Fprintf(w, "  strace -f -tt for %v after the window (%d system calls, attach and detach noise included):\n", straceFor, len(r.strace))
			for i, l := range r.strace {
				if i == maxStraceLines {
					fmt.Fprintf(w, "                … %d more\n", len(r.strace)-i)
					break
				}
				fmt.Fprintf(w, "                %s\n", l)
			}
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

// straceFor traces pid's system calls (all threads) for d with strace -f
// -tt and returns the lines.
func straceFor(ctx context.Context, pid int, d time.Duration, dir string) ([]string, error) {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return nil, errors.New("strace is not installed (Debian: apt-get install strace)")
	}
	out := filepath.Join(dir, "strace.txt")
	cmd := exec.Command(bin, "-f", "-tt", "-p", strconv.Itoa(pid), "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	case err := <-done:
		return nil, fmt.Errorf("strace exited early: %v%s", err, indent(stderr.Bytes()))
	}
	// SIGINT makes strace detach cleanly.
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines, s.Err()
}
