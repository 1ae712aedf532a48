package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is what the daemon subcommands (daemon-latency, storm, idle)
// share: a configuration for the real `fshealth daemon`, the daemon process
// itself (started in its own process group, killed on every error path), an
// in-process webhook receiver, and readers of /proc and of /metrics.

// daemonConfig describes the configuration file the bench writes.
type daemonConfig struct {
	stateDir    string
	mountpoints []string // [watch] paths
	webhookURL  string   // one [[webhook]] named benchWebhook; "" for none
	// channels, if set, adds a catch-all rule sending to these channels
	// only; empty keeps the implicit default rule (every channel).
	channels []string
	// flood holds the [flood] keys to set (window, reminder_initial,
	// reminder_max); nil keeps the defaults.
	flood map[string]time.Duration
}

// benchWebhook is the name of the webhook channel pointing at the bench.
const benchWebhook = "bench"

// write writes the configuration as TOML to path.
func (c *daemonConfig) write(path string) error {
	var b strings.Builder
	b.WriteString("# written by fshealth-bench\n")
	fmt.Fprintf(&b, "state_dir = %s\n", tomlString(c.stateDir))
	b.WriteString("\n[watch]\npaths = [")
	for i, m := range c.mountpoints {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tomlString(m))
	}
	b.WriteString("]\n")
	// The bench reads the journal channel's lines on the daemon's stderr.
	b.WriteString("\n[journal]\nmode = \"stderr\"\n")
	if len(c.flood) > 0 {
		b.WriteString("\n[flood]\n")
		keys := make([]string, 0, len(c.flood))
		for k := range c.flood {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s = %s\n", k, tomlString(c.flood[k].String()))
		}
	}
	if c.webhookURL != "" {
		fmt.Fprintf(&b, "\n[[webhook]]\nname = %s\nurl = %s\n", tomlString(benchWebhook), tomlString(c.webhookURL))
	}
	if len(c.channels) > 0 {
		b.WriteString("\n[[rule]]\nname = \"bench\"\nseverity = \"critical\"\nchannels = [")
		for i, ch := range c.channels {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(tomlString(ch))
		}
		b.WriteString("]\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// daemonProc is a running `fshealth daemon`.
type daemonProc struct {
	bin         string
	configPath  string
	stateDir    string
	metricsAddr string   // host:port, "" if metrics are off
	env         []string // added to the daemon's environment
	pid         int
	started     time.Time

	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
	log     *daemonLog
	stopAt  func() bool // stops the context.AfterFunc that kills it
}

// daemonLog reads the daemon's stderr: the journal channel's lines (events
// and alerts, mode "stderr") and the daemon's own log. It keeps the last
// lines for error messages, counts warnings and errors of the daemon's own
// log, and hands every line to onLine.
type daemonLog struct {
	onLine func(line []byte, at time.Time)

	mu       sync.Mutex
	tail     []string
	warnings []string // the daemon's own WARN and ERROR lines (not events or alerts), first ones
	nWarn    int
	done     chan struct{}
}

// maxWarnings bounds the daemon warnings the bench keeps to show.
const maxWarnings = 10

func (l *daemonLog) run(r io.Reader) {
	defer close(l.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		at := time.Now()
		if l.onLine != nil {
			l.onLine(line, at)
		}
		l.mu.Lock()
		s := string(line)
		l.tail = append(l.tail, s)
		if len(l.tail) > tailLines {
			l.tail = l.tail[1:]
		}
		if isDaemonWarning(line) {
			l.nWarn++
			if len(l.warnings) < maxWarnings {
				l.warnings = append(l.warnings, s)
			}
		}
		l.mu.Unlock()
	}
	io.Copy(io.Discard, r)
}

// isDaemonWarning says whether a stderr line is a warning or an error of
// the daemon's own log, rather than a journal entry for an event or an
// alert (which are logged at level ERROR too).
func isDaemonWarning(line []byte) bool {
	if !bytes.Contains(line, []byte(" level=WARN ")) && !bytes.Contains(line, []byte(" level=ERROR ")) {
		return false
	}
	return !bytes.Contains(line, []byte(" event_id=")) && !bytes.Contains(line, []byte(" alert_id="))
}

func (l *daemonLog) tailText() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tail) == 0 {
		return ""
	}
	return "; its stderr ended with:\n    " + strings.Join(l.tail, "\n    ")
}

// warningSummary returns the number of the daemon's own warnings and errors
// and the first ones.
func (l *daemonLog) warningSummary() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nWarn, append([]string(nil), l.warnings...)
}

// logFields parses the key=value pairs of one slog text line (values may be
// quoted). It returns only the keys in want.
func logFields(line []byte, want ...string) map[string]string {
	out := make(map[string]string, len(want))
	s := string(line)
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, `"`) {
			// A quoted value: strconv.Quote syntax.
			end := 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				break
			}
			v, err := strconv.Unquote(s[:end+1])
			if err != nil {
				v = s[1:end]
			}
			val, s = v, s[end+1:]
		} else {
			sp := strings.IndexByte(s, ' ')
			if sp < 0 {
				sp = len(s)
			}
			val, s = s[:sp], s[sp:]
		}
		for _, w := range want {
			if w == key {
				out[key] = val
			}
		}
	}
	return out
}

// startDaemon starts `bin daemon --config configPath --state-dir stateDir
// [--metrics-listen addr]` in its own process group, with NOTIFY_SOCKET
// pointing at a socket in dir and env added, and waits for READY=1. The daemon is killed
// when ctx is cancelled; the caller must call kill (or stop) on every path.
func startDaemon(ctx context.Context, bin, dir, configPath, stateDir string, metrics bool, onLine func([]byte, time.Time), env ...string) (*daemonProc, error) {
	d := &daemonProc{bin: bin, configPath: configPath, stateDir: stateDir, env: env}
	for attempt := 0; ; attempt++ {
		err := d.start(ctx, dir, metrics, onLine)
		if err == nil {
			return d, nil
		}
		// The free port the bench picked for metrics may have been taken
		// in between: try another one.
		if metrics && attempt < 3 && strings.Contains(err.Error(), "address already in use") {
			continue
		}
		return nil, err
	}
}

func (d *daemonProc) start(ctx context.Context, dir string, metrics bool, onLine func([]byte, time.Time)) error {
	args := []string{"daemon", "--config", d.configPath, "--state-dir", d.stateDir}
	d.metricsAddr = ""
	if metrics {
		addr, err := freeLoopbackPort()
		if err != nil {
			return err
		}
		d.metricsAddr = addr
		args = append(args, "--metrics-listen", addr)
	} else {
		args = append(args, "--metrics-listen", "")
	}
	sockPath := filepath.Join(dir, "notify-daemon.sock")
	os.Remove(sockPath)
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("creating NOTIFY_SOCKET %s: %w", sockPath, err)
	}
	defer os.Remove(sockPath)
	defer sock.Close()

	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(append(childEnv(), "NOTIFY_SOCKET="+sockPath), d.env...)
	cmd.Stdout = io.Discard
	cmd.Stderr = pw
	cmd.Dir = dir
	// Own process group: a terminal's SIGINT goes to the bench only, which
	// then cleans up; Pdeathsig: the daemon dies with the bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	d.log = &daemonLog{onLine: onLine, done: make(chan struct{})}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return fmt.Errorf("starting %s: %w", d.bin, err)
	}
	go d.log.run(pr)
	d.cmd, d.pid, d.started = cmd, cmd.Process.Pid, time.Now()
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = cmd.Wait()
		pr.Close()
		close(d.exited)
	}()
	d.stopAt = context.AfterFunc(ctx, d.killGroup)

	if err := waitReady(ctx, sock, d.exited, d.hasExited); err != nil {
		d.kill()
		<-d.log.done
		return fmt.Errorf("fshealth daemon: %w%s", err, d.log.tailText())
	}
	return nil
}

// freeLoopbackPort returns a 127.0.0.1 address with a port that was free a
// moment ago (the daemon's configuration does not accept port 0).
func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port for the daemon's metrics: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func (d *daemonProc) killGroup() { syscall.Kill(-d.pid, syscall.SIGKILL) }

func (d *daemonProc) hasExited() error {
	select {
	case <-d.exited:
		return fmt.Errorf("fshealth daemon (pid %d) exited (%v)%s", d.pid, d.waitErr, d.log.tailText())
	default:
		return nil
	}
}

// kill kills the daemon's process group and waits for it. It is safe to
// call more than once and after stop.
func (d *daemonProc) kill() {
	if d == nil || d.cmd == nil {
		return
	}
	d.stopAt()
	d.killGroup()
	<-d.exited
}

// stop sends SIGTERM and waits for the daemon to exit; it returns nil only
// if it exited with status 0 within stopTimeout.
func (d *daemonProc) stop() error {
	if err := d.hasExited(); err != nil {
		return err
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(stopTimeout):
		d.kill()
		return fmt.Errorf("fshealth daemon did not exit within %v of SIGTERM; killed%s", stopTimeout, d.log.tailText())
	}
	d.stopAt()
	<-d.log.done
	if d.waitErr != nil {
		return fmt.Errorf("fshealth daemon after SIGTERM: %w%s", d.waitErr, d.log.tailText())
	}
	return nil
}

// fshealthJSON runs `bin args...` (events --json, status --json) and
// returns its standard output.
func fshealthCommand(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fshealth %s: %w%s", strings.Join(args, " "), err, indent(stderr.Bytes()))
	}
	return out, nil
}

// historyEvent is what the bench checks of an event in the history.
type historyEvent struct {
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Errno      int    `json:"errno"`
	ErrorCount uint64 `json:"error_count"`
	Device     string `json:"device"`
	UUID       string `json:"uuid"`
}

// readHistory runs `fshealth events --json --state-dir DIR` and decodes
// every line.
func readHistory(ctx context.Context, bin, stateDir string) ([]historyEvent, error) {
	out, err := fshealthCommand(ctx, bin, "events", "--json", "--state-dir", stateDir)
	if err != nil {
		return nil, err
	}
	var evs []historyEvent
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev historyEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("fshealth events --json: line %d is not an event (%v): %q", len(evs)+1, err, sc.Bytes())
		}
		evs = append(evs, ev)
	}
	return evs, sc.Err()
}

// statusFS is what the bench checks of a file system in `fshealth status
// --json`.
type statusFS struct {
	UUID        string `json:"uuid"`
	Device      string `json:"device"`
	Health      string `json:"health"`
	Errors      uint64 `json:"errors"`
	TotalErrors uint64 `json:"total_errors"`
	Events      uint64 `json:"events"`
}

type statusDoc struct {
	Daemon struct {
		Running bool `json:"running"`
		PID     int  `json:"pid"`
	} `json:"daemon"`
	Filesystems []statusFS `json:"filesystems"`
	Deliveries  []struct {
		Channel string `json:"Channel"`
		Pending int    `json:"Pending"`
		Failed  int    `json:"Failed"`
	} `json:"deliveries"`
}

// readStatus runs `fshealth status --json --state-dir DIR`.
func readStatus(ctx context.Context, bin, stateDir string) (*statusDoc, error) {
	out, err := fshealthCommand(ctx, bin, "status", "--json", "--state-dir", stateDir)
	if err != nil {
		return nil, err
	}
	var st statusDoc
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("fshealth status --json: %w", err)
	}
	return &st, nil
}

// dbSize returns the size of the history database: the main file, the WAL
// and the shared-memory index.
func dbSize(stateDir string) (main, wal, shm int64) {
	size := func(name string) int64 {
		st, err := os.Stat(filepath.Join(stateDir, name))
		if err != nil {
			return 0
		}
		return st.Size()
	}
	return size("fshealth.db"), size("fshealth.db-wal"), size("fshealth.db-shm")
}

// procStat is a process's CPU time from /proc/<pid>/stat.
type procStat struct {
	utime, stime time.Duration
	threads      int
}

// readProcStat reads utime, stime (clock ticks, USER_HZ = 100) and the
// number of threads of pid.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 18 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	const userHZ = 100
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	th, err3 := strconv.Atoi(f[17])
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procStat{utime: time.Duration(ut) * time.Second / userHZ, stime: time.Duration(st) * time.Second / userHZ, threads: th}, nil
}

// threadSwitches is one thread's context switch counts.
type threadSwitches struct {
	tid                 int
	name                string
	voluntary, involunt uint64
}

// readSwitches reads voluntary_ctxt_switches and nonvoluntary_ctxt_switches
// of every thread of pid, by tid.
func readSwitches(pid int) (map[int]threadSwitches, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("/proc/%d/task: no threads (exited?)", pid)
	}
	out := make(map[int]threadSwitches, len(dirs))
	for _, d := range dirs {
		tid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "status"))
		if err != nil {
			continue // thread exited meanwhile
		}
		ts := threadSwitches{tid: tid}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch k {
			case "Name":
				ts.name = v
			case "voluntary_ctxt_switches":
				ts.voluntary, _ = strconv.ParseUint(v, 10, 64)
			case "nonvoluntary_ctxt_switches":
				ts.involunt, _ = strconv.ParseUint(v, 10, 64)
			}
		}
		out[tid] = ts
	}
	return out, nil
}

// totalSwitches sums the context switches of every thread.
func totalSwitches(m map[int]threadSwitches) uint64 {
	var n uint64
	for _, t := range m {
		n += t.voluntary + t.involunt
	}
	return n
}

// scrape fetches the daemon's /metrics.
func (d *daemonProc) scrape(ctx context.Context) (metricSet, error) {
	if d.metricsAddr == "" {
		return nil, errors.New("the daemon's metrics are off")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.metricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the daemon's metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scraping the daemon's metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping the daemon's metrics: %s", resp.Status)
	}
	return parseMetrics(body), nil
}

// metricSet maps a sample, as written in the exposition format without its
// value ("name{labels}"), to its value.
type metricSet map[string]float64

// parseMetrics reads the Prometheus text format: one sample per line,
// comments skipped. Labels are kept verbatim.
func parseMetrics(b []byte) metricSet {
	m := metricSet{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// sum adds every sample of the metric name (any labels).
func (m metricSet) sum(name string) float64 {
	var s float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

// histogram is a Prometheus histogram's cumulative buckets, sum and count.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

// histogram extracts the unlabelled histogram name.
func (m metricSet) histogram(name string) histogram {
	var h histogram
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for k, v := range m {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			le, err := strconv.ParseFloat(strings.TrimSuffix(rest, `"}`), 64)
			if err == nil {
				bs = append(bs, bucket{le, v})
			}
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	for _, b := range bs {
		h.bounds = append(h.bounds, b.le)
		h.counts = append(h.counts, b.n)
	}
	h.sum, h.count = m[name+"_sum"], m[name+"_count"]
	return h
}

// minus returns the observations made between o and h.
func (h histogram) minus(o histogram) histogram {
	d := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts)), sum: h.sum - o.sum, count: h.count - o.count}
	for i := range h.counts {
		d.counts[i] = h.counts[i]
		if i < len(o.counts) {
			d.counts[i] -= o.counts[i]
		}
	}
	return d
}

// quantile estimates the q-quantile (0..1) by linear interpolation within
// the bucket, as PromQL's histogram_quantile does.
func (h histogram) quantile(q float64) float64 {
	if h.count <= 0 || len(h.bounds) == 0 {
		return math.NaN()
	}
	rank := q * h.count
	lower, below := 0.0, 0.0
	for i, ub := range h.bounds {
		if h.counts[i] >= rank {
			if math.IsInf(ub, 1) {
				return lower
			}
			in := h.counts[i] - below
			if in <= 0 {
				return ub
			}
			return lower + (ub-lower)*(rank-below)/in
		}
		lower, below = ub, h.counts[i]
	}
	return lower
}

// describe formats the histogram's observations for the report: count,
// mean, estimated p50/p90/p99 and the share in each bucket.
func (h histogram) describe() string {
	if h.count <= 0 {
		return "no observations"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%.0f commits, mean %s ms, estimated p50 %s ms, p90 %s ms, p99 %s ms (bucket interpolation)\n",
		h.count, ms(h.sum/h.count), ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)))
	b.WriteString("                buckets:")
	below := 0.0
	lower := "0"
	for i, ub := range h.bounds {
		n := h.counts[i] - below
		below = h.counts[i]
		upper := "+Inf"
		if !math.IsInf(ub, 1) {
			upper = ms(ub)
		}
		if n > 0 {
			fmt.Fprintf(&b, " (%s, %s] ms: %.1f%%;", lower, upper, 100*n/h.count)
		}
		lower = upper
	}
	return strings.TrimSuffix(b.String(), ";")
}

// ms formats seconds as milliseconds.
func ms(sec float64) string {
	if math.IsNaN(sec) {
		return "?"
	}
	return strconv.FormatFloat(sec*1000, 'f', 3, 64)
}

// loadavg returns /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// syncProbe times fdatasync(2) after a 4 KiB append in dir, n times: what a
// SQLite commit in WAL mode with synchronous=FULL pays at least once. It
// returns the sorted durations.
func syncProbe(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "sync-probe-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	sortDurations(out)
	return out, nil
}

// fsTypeOf names the file system type of dir for the report.
func fsTypeOf(dir string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "ext2/3/4"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("magic %#x", st.Type)
}
