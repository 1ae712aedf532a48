package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// scratch creates and mounts n scratch ext4 file systems under dir.
func scratch(dir string, n int) ([]*loopfs.Image, func(), error) {
	var ims []*loopfs.Image
	cleanup := func() {
		for _, im := range ims {
			im.Remove()
		}
	}
	for i := range n {
		im, err := loopfs.Create(dir, "ext4", 16<<20)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		ims = append(ims, im)
		if err := im.Mount(filepath.Join(dir, fmt.Sprint("mnt", i)), "errors=continue"); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return ims, cleanup, nil
}

// minreader builds bench/minreader.c, the C reference reader, into dir.
func minreader(dir string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "../../bench/minreader.c")
	out := filepath.Join(dir, "minreader")
	if b, err := exec.Command("cc", "-O2", "-o", out, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("cc %s: %v: %s", src, err, b)
	}
	return out, nil
}

// proc is a process under measurement: fshealth or the C reader.
type proc struct {
	cmd    *exec.Cmd
	lines  *bufio.Reader
	stderr *testutil.SyncBuffer
	// draining is set once its stdout is only read to be discarded.
	draining bool
}

// discard reads and drops the rest of the process's output.
func (p *proc) discard() {
	if !p.draining {
		p.draining = true
		go io.Copy(io.Discard, p.lines)
	}
}

func (p *proc) stderrString() string { return p.stderr.String() }

// start runs argv and waits until it said READY=1 on $NOTIFY_SOCKET.
func start(dir string, argv ...string) (*proc, error) {
	sock := filepath.Join(dir, "notify.sock")
	os.Remove(sock)
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), stderr: &testutil.SyncBuffer{}}
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.lines = bufio.NewReaderSize(out, 1<<20)
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	ln.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	for {
		n, err := ln.Read(buf)
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("%s not ready: %v; stderr: %s", argv[0], err, p.stderr)
		}
		if bytes.Contains(buf[:n], []byte("READY=1")) {
			return p, nil
		}
	}
}

// line reads the next line the process printed.
func (p *proc) line() ([]byte, error) {
	l, err := p.lines.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("%s: %w; stderr: %s", p.cmd.Path, err, p.stderr)
	}
	return l, nil
}

// cpu returns the process's on-CPU time so far and how many times its
// threads were switched onto a CPU, all threads (schedstat's first and
// third fields: nanoseconds, timeslices). The switches count the system's
// work for the process that its CPU time does not show: every wake-up of
// a thread, the reader's and the Go runtime's alike.
func (p *proc) cpu() (time.Duration, int64) {
	var sum time.Duration
	var runs int64
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.cmd.Process.Pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		f := strings.Fields(string(b))
		if len(f) == 3 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			sum += time.Duration(n)
			r, _ := strconv.ParseInt(f[2], 10, 64)
			runs += r
		}
	}
	return sum, runs
}

// rss returns the process's peak resident set size (VmHWM), in KiB.
func (p *proc) rss() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// stop ends the process with SIGTERM and says how it ended.
func (p *proc) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.discard()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		return errors.New(p.cmd.Path + " did not stop within 10s of SIGTERM")
	}
}

// result is one reader's figures.
type result struct {
	name     string
	samples  []time.Duration
	cpu      time.Duration // during the measured samples
	switches int64         // times a thread was switched in, ditto
	rssKiB   int
}

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return s[min(len(s)-1, int(p/100*float64(len(s))))]
}

// table prints results, each against the first (the floor), in unit.
func table(unit time.Duration, rs ...result) {
	u := map[time.Duration]string{time.Microsecond: "µs", time.Millisecond: "ms"}[unit]
	f := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/float64(unit), 'f', 1, 64) }
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\tn\tp50 %s\tp95 %s\tp99 %s\tCPU µs/sample\tswitches/sample\tpeak RSS KiB\tp50 / floor\t\n", u, u, u)
	for _, r := range rs {
		n := float64(max(len(r.samples), 1))
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%.1f\t%.1f\t%d\t%.2f\t\n", r.name, len(r.samples), f(pct(r.samples, 50)), f(pct(r.samples, 95)),
			f(pct(r.samples, 99)), float64(r.cpu.Microseconds())/n, float64(r.switches)/n, r.rssKiB,
			float64(pct(r.samples, 50))/float64(max(pct(rs[0].samples, 50), 1)))
	}
	tw.Flush()
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
