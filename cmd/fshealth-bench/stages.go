package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/mounts"
)

// publishLimit bounds how long stages spins waiting for errors_count to grow.
const publishLimit = 20 * time.Millisecond

// stageSample is the timing of one error through the pipeline. Times are
// offsets from a common base, taken with the monotonic clock.
type stageSample struct {
	t0, written          time.Duration // bench: before and after the write(2) to trigger_fs_error
	readDone             time.Duration // reader: ReadEvents returned
	countDone            time.Duration // reader: first errors_count pread done
	grownAtFirst         bool          // errors_count had already grown at that first read
	late                 bool          // errors_count had not grown publishLimit after the event
	published            time.Duration // reader: errors_count seen grown (spinning on pread)
	stateRead            time.Duration // reader: ext4.Reader.Read done (7 preads once the first error is known)
	enriched             time.Duration // reader: Enricher.Enrich done
	encoded              time.Duration // reader: event.AppendJSON done
	lineWritten, benchRd time.Duration // reader: write(2) of the line done; bench: line read
	lineLen              int
	err                  error
}

// stages runs fshealth's own pipeline (fanotify.Group.ReadEvents,
// enrich.Enricher.Enrich, event.AppendJSON, write(2) to a pipe) in a goroutine
// of the bench, as internal/watch does, with a timestamp between steps, while
// the main goroutine raises errors one at a time and reads the lines back.
// Between reading the event and enriching it, it also spins on errors_count
// to measure when ext4 publishes the error (so Enrich itself never waits).
func stages(ctx context.Context, opt *options, dir string) (ok bool, err error) {
	sc, err := newScratch(dir, opt.size)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := sc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	mnt := sc.im.Mountpoint

	g, err := fanotify.NewErrorGroup()
	if err != nil {
		return false, err
	}
	defer g.Close()
	if err := g.MarkFilesystemErrors(mnt); err != nil {
		return false, err
	}
	info, err := probeMount(mnt)
	if err != nil {
		return false, err
	}
	reg := enrich.NewRegistry("/sys")
	defer reg.Close()
	if _, err := reg.Add(info); err != nil {
		return false, err
	}
	enr := &enrich.Enricher{Registry: reg}
	probe, err := ext4.Open(sc.im.SysfsDir())
	if err != nil {
		return false, err
	}
	defer probe.Close()
	// Is errors_count published by the time the write(2) that raised the
	// error returns? Raise errors without a reader and look right after.
	syncVisible, syncN := 0, 200
	for i := 0; i < syncN; i++ {
		c0, err := probe.Count()
		if err != nil {
			return false, err
		}
		if err := sc.trigger(); err != nil {
			return false, err
		}
		if c1, err := probe.Count(); err == nil && c1 > c0 {
			syncVisible++
		}
	}
	// The kernel merged those errors into one pending event: drain it.
	if raws, err := g.ReadEvents(make([]byte, fanotify.ReadBufferSize), nil); err != nil || len(raws) != 1 || int(raws[0].ErrorCount) != syncN {
		return false, fmt.Errorf("draining the merged event of %d errors: got %d events (%v), error_count %v", syncN, len(raws), err, errorCounts(raws))
	}
	last, err := probe.Count()
	if err != nil {
		return false, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer pr.Close()
	stop := context.AfterFunc(ctx, func() { g.Close(); pr.Close() })
	defer stop()

	base := time.Now()
	since := func() time.Duration { return time.Since(base) }
	var t0 atomic.Int64
	total := opt.warmup + opt.n
	samples := make(chan stageSample, total)

	// The reader: what internal/watch.Run does, instrumented.
	go func() {
		defer pw.Close()
		buf := make([]byte, fanotify.ReadBufferSize)
		raws := make([]fanotify.Event, 0, 64)
		var line []byte
		var ev event.Event
		for {
			var err error
			raws, err = g.ReadEvents(buf, raws[:0])
			readDone := since()
			if err != nil {
				samples <- stageSample{err: err}
				return
			}
			for i := range raws {
				s := stageSample{t0: time.Duration(t0.Load()), readDone: readDone}
				// Each error adds error_count to errors_count once ext4's
				// superblock update work has run.
				want := last + uint64(raws[i].ErrorCount)
				c, err := probe.Count()
				s.countDone = since()
				s.grownAtFirst = err == nil && c >= want
				for err == nil && c < want && since()-readDone < publishLimit {
					c, err = probe.Count()
				}
				s.published = since()
				s.late = err == nil && c < want
				last = want
				if err == nil {
					_, err = probe.Read()
				}
				s.stateRead = since()
				enr.Enrich(&raws[i], &ev)
				s.enriched = since()
				if err == nil {
					line, err = event.AppendJSON(line[:0], &ev)
				}
				s.encoded = since()
				if err == nil {
					_, err = pw.Write(line)
				}
				s.lineWritten = since()
				s.lineLen = len(line)
				s.err = err
				samples <- s
				if err != nil {
					return
				}
			}
		}
	}()

	br := bufio.NewReaderSize(pr, 1<<20)
	got := make([]stageSample, 0, opt.n)
	for i := 0; i < total; i++ {
		start := since()
		t0.Store(int64(start))
		if err := sc.trigger(); err != nil {
			return false, fmt.Errorf("raising error #%d: %w", i+1, err)
		}
		written := since()
		pr.SetReadDeadline(time.Now().Add(opt.timeout))
		_, rerr := br.ReadSlice('\n')
		benchRd := since()
		var s stageSample
		select {
		case s = <-samples:
		case <-time.After(opt.timeout):
			return false, fmt.Errorf("error #%d: no sample from the reader within %v (line read: %v)", i+1, opt.timeout, rerr)
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if s.err != nil {
			return false, fmt.Errorf("error #%d: %w", i+1, s.err)
		}
		if rerr != nil {
			return false, fmt.Errorf("error #%d: reading the line back: %w", i+1, rerr)
		}
		s.t0, s.written, s.benchRd = start, written, benchRd
		if i >= opt.warmup {
			got = append(got, s)
		}
	}

	// How long a short time.Sleep really sleeps here: internal/enrich
	// sleeps 50µs, 100µs, ... while errors_count has not grown.
	sleeps := make([]time.Duration, 200)
	for i := range sleeps {
		t := time.Now()
		time.Sleep(50 * time.Microsecond)
		sleeps[i] = time.Since(t)
	}
	printStages(got, sleeps)
	fmt.Printf("errors_count already grown when the write(2) to trigger_fs_error returned: %d of %d errors\n", syncVisible, syncN)
	return true, nil
}

func errorCounts(raws []fanotify.Event) []uint32 {
	var cs []uint32
	for _, r := range raws {
		cs = append(cs, r.ErrorCount)
	}
	return cs
}

// probeMount returns what fshealth's registry knows about the file system
// mounted on mnt, probed the way internal/watch does.
func probeMount(mnt string) (*mounts.Info, error) {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return nil, err
	}
	ms, err := mounts.ReadMountinfo("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for _, fs := range mounts.Group(ms) {
		if fs.Major == unix.Major(st.Dev) && fs.Minor == unix.Minor(st.Dev) {
			return mounts.Probe(fs, "/sys")
		}
	}
	return nil, fmt.Errorf("%s: not in /proc/self/mountinfo", mnt)
}

func printStages(ss []stageSample, sleeps []time.Duration) {
	n := len(ss)
	grown, late := 0, 0
	for _, s := range ss {
		if s.grownAtFirst {
			grown++
		}
		if s.late {
			late++
		}
	}
	rows := []struct {
		name string
		d    func(s *stageSample) time.Duration
	}{
		{"write(2) to trigger_fs_error (bench)", func(s *stageSample) time.Duration { return s.written - s.t0 }},
		{"write start -> ReadEvents returned", func(s *stageSample) time.Duration { return s.readDone - s.t0 }},
		{"first errors_count pread", func(s *stageSample) time.Duration { return s.countDone - s.readDone }},
		{"ReadEvents -> errors_count grew (spinning)", func(s *stageSample) time.Duration { return s.published - s.readDone }},
		{"ext4.Reader.Read (7 preads)", func(s *stageSample) time.Duration { return s.stateRead - s.published }},
		{"Enricher.Enrich (no wait needed)", func(s *stageSample) time.Duration { return s.enriched - s.stateRead }},
		{"event.AppendJSON", func(s *stageSample) time.Duration { return s.encoded - s.enriched }},
		{"write(2) of the line to a pipe", func(s *stageSample) time.Duration { return s.lineWritten - s.encoded }},
		{"line written -> bench has read it", func(s *stageSample) time.Duration { return s.benchRd - s.lineWritten }},
		{"total (write start -> line read)", func(s *stageSample) time.Duration { return s.benchRd - s.t0 }},
	}
	fmt.Printf("\n%d errors, one at a time, through fshealth's pipeline inside the bench (µs):\n", n)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage\tp50\tp90\tp99\tmax\tmean\t")
	for _, r := range rows {
		ds := make([]time.Duration, n)
		for i := range ss {
			ds[i] = r.d(&ss[i])
		}
		sortDurations(ds)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, us(percentile(ds, 50)), us(percentile(ds, 90)),
			us(percentile(ds, 99)), us(percentile(ds, 100)), us(mean(ds)))
	}
	tw.Flush()
	fmt.Printf("\nerrors_count had already grown at the first read for %d of %d events (%.0f%%);\n", grown, n, 100*float64(grown)/float64(max(n, 1)))
	fmt.Printf("it had not grown %v after the event for %d of them (spinning stopped there).\n", publishLimit, late)
	fmt.Println("When it has not grown, internal/enrich sleeps (50µs, then 100µs, ...) until it grows, for at most 5ms.")
	if n > 0 {
		fmt.Printf("JSON line: %d bytes\n", ss[0].lineLen)
	}
	sortDurations(sleeps)
	fmt.Printf("time.Sleep(50µs) in this process actually takes: p50 %s µs, p90 %s µs, max %s µs (%d sleeps)\n",
		us(percentile(sleeps, 50)), us(percentile(sleeps, 90)), us(percentile(sleeps, 100)), len(sleeps))
}
