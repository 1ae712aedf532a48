package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readyTimeout bounds the wait for READY=1 from a reader.
const readyTimeout = 10 * time.Second

// slowLatency is the threshold above which the bench counts an event as
// slow: internal/enrich's shortest sleep takes about 1.1ms on Linux.
const slowLatency = 500 * time.Microsecond

// stopTimeout bounds the wait for a reader to exit after SIGTERM.
const stopTimeout = 5 * time.Second

// reader is a program that watches a path for FAN_FS_ERROR and prints one
// NDJSON line per event: fshealth, or the minimal C baseline.
type reader struct {
	name string
	path string
	args []string // before the mount point
	env  []string // added to the environment
	// timeline, if set, receives the CLOCK_MONOTONIC times (ns) around
	// each measured error, to line them up with the reader's execution
	// trace (whose timestamps are CLOCK_MONOTONIC too).
	timeline string
}

// bench holds what every measurement shares.
type bench struct {
	opt        *options
	sc         *scratch
	readerCPU  int    // CPU to pin readers to, -1 for none
	countPath  string // /sys/fs/ext4/<dev>/errors_count
	mountpoint string
	dir        string
}

// result is one reader's measurement.
type result struct {
	name    string
	lat     []time.Duration // measured latencies, sorted
	elapsed time.Duration   // wall time of the measured loop

	cpuRun  time.Duration // on-CPU time of the reader during the measured loop; -1 if unknown
	hwmKiB  int64         // VmHWM before stopping
	rusage  *syscall.Rusage
	sumErr  uint64 // sum of error_count over all events, warm-up included
	grew    uint64 // growth of errors_count over the same errors
	exitErr error  // nil when the reader exited with status 0 after SIGTERM
	pid     int
	pidNote string
}

func (r *result) ok() bool { return r.sumErr == r.grew && r.exitErr == nil }

// pct returns the p-th percentile (nearest rank) of the sorted latencies.
func (r *result) pct(p float64) time.Duration { return percentile(r.lat, p) }

// rate is the number of measured events per second of measured wall time.
func (r *result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.lat)) / r.elapsed.Seconds()
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "== %s (pid %d)\n", r.name, r.pid)
	fmt.Fprintf(w, "  events        %d measured\n", len(r.lat))
	fmt.Fprintf(w, "  latency       p50 %s µs  p90 %s µs  p99 %s µs  max %s µs  (min %s, mean %s)\n",
		us(r.pct(50)), us(r.pct(90)), us(r.pct(99)), us(r.pct(100)), us(r.pct(0)), us(mean(r.lat)))
	slow := len(r.lat) - sort.Search(len(r.lat), func(i int) bool { return r.lat[i] > slowLatency })
	fmt.Fprintf(w, "  over %v    %d of %d (%.1f%%)\n", slowLatency, slow, len(r.lat), 100*float64(slow)/float64(max(len(r.lat), 1)))
	fmt.Fprintf(w, "  throughput    %.0f events/s (%d events in %v, one at a time)\n", r.rate(), len(r.lat), r.elapsed.Round(time.Microsecond))
	if r.cpuRun >= 0 {
		fmt.Fprintf(w, "  CPU (run)     %v = %s µs/event (on-CPU time of all its threads during the measured loop)\n",
			r.cpuRun.Round(time.Microsecond), us(r.cpuRun/time.Duration(len(r.lat))))
	}
	if r.rusage != nil {
		fmt.Fprintf(w, "  CPU (life)    user %v + sys %v (rusage at exit, start-up and warm-up included)\n",
			time.Duration(r.rusage.Utime.Nano()).Round(time.Microsecond), time.Duration(r.rusage.Stime.Nano()).Round(time.Microsecond))
	}
	fmt.Fprintf(w, "  peak RSS      %d KiB (VmHWM before stopping", r.hwmKiB)
	if r.rusage != nil {
		fmt.Fprintf(w, "; ru_maxrss %d KiB", r.rusage.Maxrss)
	}
	fmt.Fprintln(w, ")")
	check := "OK"
	if r.sumErr != r.grew {
		check = "MISMATCH"
	}
	fmt.Fprintf(w, "  error count   sum of error_count %d, errors_count grew by %d (warm-up included): %s\n", r.sumErr, r.grew, check)
	if r.exitErr != nil {
		fmt.Fprintf(w, "  exit          FAILED after SIGTERM: %v\n", r.exitErr)
	} else {
		fmt.Fprintln(w, "  exit          status 0 after SIGTERM: OK")
	}
}

// eventLine is what the bench checks in each NDJSON line.
type eventLine struct {
	Kind       string `json:"kind"`
	Errno      int    `json:"errno"`
	ErrorCount uint64 `json:"error_count"`
}

// measure starts r on the scratch mount point, waits for it to be ready,
// raises warm-up and measured errors one at a time, and stops it. The reader
// is killed on every error path and when ctx is cancelled.
func (b *bench) measure(ctx context.Context, r *reader) (*result, error) {
	res := &result{name: r.name, cpuRun: -1}

	sockPath := filepath.Join(b.dir, "notify-"+r.name+".sock")
	os.Remove(sockPath)
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("creating NOTIFY_SOCKET %s: %w", sockPath, err)
	}
	defer os.Remove(sockPath)
	defer sock.Close()

	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	stderr := &tailWriter{prefix: "  [" + r.name + "] ", out: os.Stderr}
	path, args, pinEnv, err := pinnedCommand(b.readerCPU, r.path, append(append([]string{}, r.args...), b.mountpoint))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(cmd.Env, pinEnv...)
	cmd.Stdout = pw
	cmd.Stderr = stderr
	cmd.Env = append(append(cmd.Env, childEnv()...), "NOTIFY_SOCKET="+sockPath)
	cmd.Env = append(cmd.Env, r.env...)
	// Own process group: a terminal's SIGINT goes to the bench only, which
	// then cleans up; Pdeathsig: the reader dies with the bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Wait also waits for the stderr copy; do not hang on a descendant
	// that keeps the pipe open (a wrapper script, strace -f).
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", r.path, err)
	}
	res.pid = cmd.Process.Pid
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	// killAll kills the reader and anything it started (its process group).
	killAll := func() { syscall.Kill(-res.pid, syscall.SIGKILL) }
	stopKill := context.AfterFunc(ctx, killAll)
	defer stopKill()
	defer func() {
		killAll()
		<-exited
	}()
	hasExited := func() error {
		select {
		case <-exited:
			return fmt.Errorf("%s exited (%v)", r.name, waitErr)
		default:
			return nil
		}
	}

	if err := waitReady(ctx, sock, exited, hasExited); err != nil {
		return nil, fmt.Errorf("%w%s", err, stderr.tail())
	}

	before, err := readCount(b.countPath)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(pr, 1<<20)
	var mono0, mono1 int64
	fire := func(i int) (time.Duration, error) {
		if br.Buffered() > 0 {
			return 0, fmt.Errorf("before error #%d, %s had already printed more than one line per error: %q", i, r.name, peekLine(br))
		}
		if err := pr.SetReadDeadline(time.Now().Add(b.opt.timeout)); err != nil {
			return 0, err
		}
		if r.timeline != "" {
			mono0 = monotonicNow()
		}
		t0 := time.Now()
		if err := b.sc.trigger(); err != nil {
			return 0, fmt.Errorf("raising error #%d: write trigger_fs_error: %w", i, err)
		}
		line, err := br.ReadSlice('\n')
		t1 := time.Now()
		if r.timeline != "" {
			mono1 = monotonicNow()
		}
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, fmt.Errorf("no event line within %v of error #%d%s", b.opt.timeout, i, stderr.tail())
			}
			if e := hasExitedAfter(exited, 100*time.Millisecond, hasExited); e != nil {
				return 0, fmt.Errorf("reading the event of error #%d: %v; %w%s", i, err, e, stderr.tail())
			}
			return 0, fmt.Errorf("reading the event of error #%d: %w", i, err)
		}
		var ev eventLine
		if err := json.Unmarshal(line, &ev); err != nil {
			return 0, fmt.Errorf("event of error #%d is not JSON (%v): %q", i, err, line)
		}
		if ev.Kind != "error" || ev.Errno != int(unix.EUCLEAN) || ev.ErrorCount < 1 {
			return 0, fmt.Errorf("event of error #%d: want kind \"error\", errno %d (EUCLEAN), error_count >= 1; got %q", i, unix.EUCLEAN, bytes.TrimSpace(line))
		}
		res.sumErr += ev.ErrorCount
		return t1.Sub(t0), nil
	}

	for i := 0; i < b.opt.warmup; i++ {
		if _, err := fire(i + 1); err != nil {
			return nil, err
		}
	}
	cpu0, cpuErr := threadsCPU(res.pid)
	res.lat = make([]time.Duration, b.opt.n)
	var timeline [][2]int64
	if r.timeline != "" {
		timeline = make([][2]int64, b.opt.n)
	}
	start := time.Now()
	for i := range res.lat {
		d, err := fire(b.opt.warmup + i + 1)
		if err != nil {
			return nil, err
		}
		res.lat[i] = d
		if timeline != nil {
			timeline[i] = [2]int64{mono0, mono1}
		}
	}
	res.elapsed = time.Since(start)
	if cpu1, err := threadsCPU(res.pid); err == nil && cpuErr == nil {
		res.cpuRun = cpu1 - cpu0
	}
	if res.hwmKiB, err = statusKiB(res.pid, "VmHWM"); err != nil {
		return nil, err
	}
	sortDurations(res.lat)
	if timeline != nil {
		if err := writeTimeline(r.timeline, timeline); err != nil {
			return nil, err
		}
	}

	// ext4 publishes errors_count shortly after it queues the event; give
	// it time to catch up before comparing.
	want := before + res.sumErr
	var after uint64
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		if after, err = readCount(b.countPath); err != nil {
			return nil, err
		}
		if after >= want || time.Now().After(deadline) {
			break
		}
	}
	res.grew = after - before

	// Stop it: SIGTERM, and it must exit with status 0.
	if err := hasExited(); err != nil {
		return nil, fmt.Errorf("%w%s", err, stderr.tail())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		killAll()
		<-exited
		waitErr = fmt.Errorf("did not exit within %v of SIGTERM; killed", stopTimeout)
	}
	res.exitErr = waitErr
	if waitErr != nil {
		res.exitErr = fmt.Errorf("%w%s", waitErr, stderr.tail())
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.rusage = ru
	}
	if rest, _ := io.ReadAll(br); len(bytes.TrimSpace(rest)) > 0 {
		res.exitErr = errors.Join(res.exitErr, fmt.Errorf("unexpected output after the last error: %q", rest))
	}
	return res, nil
}

// hasExitedAfter gives a reader whose output just ended a moment to be
// reaped, then reports whether it exited.
func hasExitedAfter(exited <-chan struct{}, d time.Duration, check func() error) error {
	select {
	case <-exited:
	case <-time.After(d):
	}
	return check()
}

func peekLine(br *bufio.Reader) []byte {
	b, _ := br.Peek(br.Buffered())
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return b
}

// waitReady waits for READY=1 on the notification socket, for at most
// readyTimeout, failing early when the reader exits or ctx is cancelled.
func waitReady(ctx context.Context, sock *net.UnixConn, exited <-chan struct{}, exitErr func() error) error {
	ready := make(chan error, 1)
	sock.SetReadDeadline(time.Now().Add(readyTimeout))
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := sock.ReadFromUnix(buf)
			if err != nil {
				ready <- err
				return
			}
			for _, f := range strings.Split(string(buf[:n]), "\n") {
				if f == "READY=1" {
					ready <- nil
					return
				}
			}
		}
	}()
	defer sock.SetReadDeadline(time.Now()) // stop the goroutine on early return
	select {
	case err := <-ready:
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("no READY=1 on NOTIFY_SOCKET %s within %v", sock.LocalAddr(), readyTimeout)
		}
		if err != nil {
			return fmt.Errorf("waiting for READY=1 on %s: %w", sock.LocalAddr(), err)
		}
		return nil
	case <-exited:
		return fmt.Errorf("exited before it was ready: %w", exitErr())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// childEnv is this process's environment without the bench's own markers and
// without NOTIFY_SOCKET.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case mountnsEnv, "NOTIFY_SOCKET", profileEnv, selfHostEnv, pinExecEnv, noMountEventsEnv:
			continue
		}
		env = append(env, kv)
	}
	return env
}

// tailWriter copies a child's stderr to out, each line prefixed, and keeps
// the last lines for error messages.
type tailWriter struct {
	prefix string
	out    io.Writer

	mu    sync.Mutex
	part  []byte
	lines []string
}

const tailLines = 20

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		line := string(t.part[:i])
		t.part = t.part[i+1:]
		fmt.Fprintf(t.out, "%s%s\n", t.prefix, line)
		t.lines = append(t.lines, line)
		if len(t.lines) > tailLines {
			t.lines = t.lines[1:]
		}
	}
	return len(p), nil
}

// tail returns the last lines written, formatted for an error message.
func (t *tailWriter) tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.part))
	}
	if len(lines) == 0 {
		return ""
	}
	return "; its stderr ended with:\n    " + strings.Join(lines, "\n    ")
}

func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// writeTimeline writes one line per measured error: the CLOCK_MONOTONIC
// nanoseconds just before the write(2) that raised it and just after the
// bench read its line.
func writeTimeline(path string, tl [][2]int64) error {
	var b bytes.Buffer
	b.WriteString("# CLOCK_MONOTONIC ns: before write(2) to trigger_fs_error, after reading the line\n")
	for _, t := range tl {
		fmt.Fprintf(&b, "%d\t%d\n", t[0], t[1])
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
