package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// mountLatency times each of n mounts of a scratch ext4 from just before
// it attaches a loop device and calls mount(2) to the moment `fshealth
// watch` has logged that it watches it; the floor is the attach and
// mount(2) themselves.
func mountLatency(opt *options) error {
	if opt.n == 0 {
		opt.n = 50
	}
	ims, cleanup, err := scratch(opt.dir, 1)
	if err != nil {
		return err
	}
	defer cleanup()
	im := ims[0]
	mnt := im.Mountpoint
	if err := im.Unmount(); err != nil {
		return err
	}
	p, err := start(opt.dir, opt.fshealth, "watch", "--json", "--kernel-log=false")
	if err != nil {
		return err
	}
	defer p.stop()
	floor, fsh := result{name: "loop attach + mount(2) (floor)"}, result{name: "fshealth watching it"}
	cpu0, runs0 := p.cpu()
	for i := range opt.n {
		t0 := time.Now()
		if err := im.Mount(mnt, "errors=continue"); err != nil {
			return err
		}
		floor.samples = append(floor.samples, time.Since(t0))
		if err := p.waitLog("watching file system", "mountpoints=["+mnt+"]", i+1); err != nil {
			return err
		}
		fsh.samples = append(fsh.samples, time.Since(t0))
		if err := im.Unmount(); err != nil {
			return err
		}
	}
	cpu, runs := p.cpu()
	fsh.cpu, fsh.switches, fsh.rssKiB = cpu-cpu0, runs-runs0, p.rss()
	fmt.Printf("\nmount(2) → fshealth logged that it watches the file system, %d mounts\n", opt.n)
	table(time.Millisecond, floor, fsh)
	return nil
}

// waitLog waits until the process's log (stderr) holds n lines with both
// msg and what.
func (p *proc) waitLog(msg, what string, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := 0
		for l := range strings.SplitSeq(p.stderrString(), "\n") {
			if strings.Contains(l, msg) && strings.Contains(l, what) {
				c++
			}
		}
		if c >= n {
			return nil
		}
		time.Sleep(50 * time.Microsecond)
	}
	log := p.stderrString()
	return fmt.Errorf("no %d %q log lines for %s within 10s; fshealth's log ends: %s", n, msg, filepath.Base(what), log[max(0, len(log)-2000):])
}
