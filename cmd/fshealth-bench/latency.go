package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// latency times each of n errors from just before the write(2) that raises
// it to the moment the bench has read the reader's NDJSON line for it. The
// C reader (the floor) and `fshealth watch --json` (and -compare's
// binary) run side by side, each on a scratch ext4 of its own, and the
// errors go to each in turn, one at a time, so that all see the same
// machine.
func latency(opt *options) error {
	if opt.n == 0 {
		opt.n = 2000
	}
	c, err := minreader(opt.dir)
	if err != nil {
		return err
	}
	bins := []string{opt.fshealth}
	if opt.compare != "" {
		bins = append(bins, opt.compare)
	}
	ims, cleanup, err := scratch(opt.dir, 1+len(bins))
	if err != nil {
		return err
	}
	defer cleanup()
	readers := []*reader{{im: ims[0], r: result{name: "C reader (floor)"}}}
	argv := [][]string{{c, ims[0].Mountpoint}}
	for i, bin := range bins {
		name := "fshealth watch --json"
		if i > 0 {
			name = "compare: " + filepath.Base(bin)
		}
		readers = append(readers, &reader{im: ims[1+i], r: result{name: name}})
		argv = append(argv, []string{bin, "watch", "--json", ims[1+i].Mountpoint})
	}
	// Each round starts the readers afresh: where the kernel puts a
	// reader's threads, and so whether it is woken on the CPU that raised
	// the error or on the other, settles for a process's life and moves a
	// run's p50 by a third; samples pooled over rounds average that out,
	// and each round's ratio is printed too.
	rounds := max(opt.rounds, 1)
	ratios := make([][]float64, len(readers))
	for round := range rounds {
		n := opt.n / rounds
		if round == rounds-1 {
			n = opt.n - n*(rounds-1)
		}
		first := make([]int, len(readers))
		for i, rd := range readers {
			first[i] = len(rd.r.samples)
		}
		if err := latencyRound(opt, readers, argv, n); err != nil {
			return err
		}
		floor := pct(readers[0].r.samples[first[0]:], 50)
		for i, rd := range readers {
			ratios[i] = append(ratios[i], float64(pct(rd.r.samples[first[i]:], 50))/float64(max(floor, 1)))
		}
	}
	apart := ""
	if opt.gap > 0 {
		apart = fmt.Sprintf(", each after a pause of %v", opt.gap)
	}
	fmt.Printf("\nerror raised → line read, %d errors per reader, one at a time, in turn%s, after %d warm-up errors in each of %d round(s)\n", opt.n, apart, opt.warmup, rounds)
	rs := make([]result, len(readers))
	for i, rd := range readers {
		rs[i] = rd.r
	}
	table(time.Microsecond, rs...)
	if rounds > 1 {
		fmt.Printf("\np50 / floor in each of %d rounds (fresh processes each, %d errors per reader and round):\n", rounds, opt.n/rounds)
		for i, rd := range readers[1:] {
			fmt.Printf("  %s:", rd.r.name)
			for _, r := range ratios[i+1] {
				fmt.Printf(" %.2f", r)
			}
			fmt.Println()
		}
	}
	return nil
}

// latencyRound starts the readers (argv), raises warm-up errors and then n
// for each, appends the times to their samples and adds their CPU and
// switches, and stops them.
func latencyRound(opt *options, readers []*reader, argv [][]string, n int) error {
	for i, rd := range readers {
		p, err := start(opt.dir, argv[i]...)
		if err != nil {
			return err
		}
		rd.p = p
		defer p.stop()
	}
	// With -compare, every other error round takes the two fshealth
	// binaries the other way round: the one whose error follows another
	// reader's runs after that process's work, with the caches and the
	// CPUs as it left them, so in a fixed order the binary in the third
	// place measured up to 0.4 × the floor slower than the same binary in
	// the second. So each binary follows the floor and the other binary
	// equally often (and the floor follows each), as with two readers in
	// turn.
	order := slices.Clone(readers)
	for i := range opt.warmup + n {
		if i > 0 {
			slices.Reverse(order[1:])
		}
		if i == opt.warmup {
			for _, rd := range readers {
				rd.cpu0, rd.runs0 = rd.p.cpu()
			}
		}
		for _, rd := range order {
			time.Sleep(opt.gap)
			d, err := rd.sample()
			if err != nil {
				return err
			}
			if i >= opt.warmup {
				rd.r.samples = append(rd.r.samples, d)
			}
		}
	}
	for _, rd := range readers {
		cpu, runs := rd.p.cpu()
		rd.r.cpu += cpu - rd.cpu0
		rd.r.switches += runs - rd.runs0
		rd.r.rssKiB = max(rd.r.rssKiB, rd.p.rss())
		if err := rd.p.stop(); err != nil {
			return fmt.Errorf("%s: %w", rd.r.name, err)
		}
	}
	return nil
}

// reader is one reader under measurement and its file system.
type reader struct {
	im    *loopfs.Image
	p     *proc
	cpu0  time.Duration
	runs0 int64
	r     result
}

// sample raises one error and times it to the reader's line for it.
func (rd *reader) sample() (time.Duration, error) {
	t0 := time.Now()
	if err := rd.im.TriggerError("fshealth-bench latency"); err != nil {
		return 0, err
	}
	for {
		l, err := rd.p.line()
		if err != nil {
			return 0, err
		}
		// fshealth follows an error with ext4's record of it (kind
		// "ext4"): not what is timed.
		if bytes.Contains(l, []byte(`"kind":"error"`)) {
			return time.Since(t0), nil
		}
	}
}
