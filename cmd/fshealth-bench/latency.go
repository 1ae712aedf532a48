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
	for i, rd := range readers {
		if rd.p, err = start(opt.dir, argv[i]...); err != nil {
			return err
		}
		defer rd.p.stop()
	}
	// With -compare, every other round takes the two fshealth binaries the
	// other way round: the one whose error follows another reader's runs
	// after that process's work, with the caches and the CPUs as it left
	// them, so in a fixed order the binary in the third place measured up
	// to 0.4 × the floor slower than the same binary in the second. So each
	// binary follows the floor and the other binary equally often (and the
	// floor follows each), as with two readers in turn.
	order := slices.Clone(readers)
	for i := range opt.warmup + opt.n {
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
		rd.r.cpu, rd.r.switches, rd.r.rssKiB = cpu-rd.cpu0, runs-rd.runs0, rd.p.rss()
		if err := rd.p.stop(); err != nil {
			return fmt.Errorf("%s: %w", rd.r.name, err)
		}
	}
	apart := ""
	if opt.gap > 0 {
		apart = fmt.Sprintf(", each after a pause of %v", opt.gap)
	}
	fmt.Printf("\nerror raised → line read, %d errors per reader, one at a time, in turn%s, after %d warm-up errors\n", opt.n, apart, opt.warmup)
	rs := make([]result, len(readers))
	for i, rd := range readers {
		rs[i] = rd.r
	}
	table(time.Microsecond, rs...)
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
