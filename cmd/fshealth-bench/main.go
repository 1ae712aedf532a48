// Command fshealth-bench measures fshealth end to end on real file system
// errors, each figure against a floor measured in the same run:
//
//	fshealth-bench latency [-n 2000]      error raised → `fshealth watch --json` line; floor: bench/minreader.c
//	fshealth-bench first-alert [-n 30]    error on a fs that had none → webhook body received, history committed first;
//	                                      floor: minreader -s -p (read, 4 KiB write+fdatasync in the state dir, one POST)
//	fshealth-bench mount [-n 50]          mount(2) → `fshealth watch` logs that it watches the new file system
//
// It needs root: it mounts scratch ext4 images on loop devices, in a private
// mount namespace, and raises real errors through
// /sys/fs/ext4/<dev>/trigger_fs_error. docs/benchmarks.md has the figures.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/fshealth/fshealth/internal/mountns"
)

// options are the flags every subcommand shares.
type options struct {
	n        int
	warmup   int
	fshealth string
	// compare is another fshealth binary timed in the same run
	// (latency), e.g. the commit before a change.
	compare string
	// gap is a pause before each error (latency): isolated errors.
	gap time.Duration
	// rounds is how many times the readers are started afresh (latency).
	rounds int
	dir    string
}

var subcommands = map[string]func(*options) error{
	"latency":     latency,
	"first-alert": firstAlert,
	"mount":       mountLatency,
}

func main() {
	if len(os.Args) < 2 || subcommands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: fshealth-bench latency|first-alert|mount [-n N] [-warmup N] [-fshealth PATH] [-compare PATH] [-gap D] [-rounds R]")
		os.Exit(2)
	}
	run := subcommands[os.Args[1]]
	opt := &options{}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	fs.IntVar(&opt.n, "n", 0, "samples (default: 2000 latency, 30 first-alert, 50 mount)")
	fs.IntVar(&opt.warmup, "warmup", 20, "errors raised and discarded before measuring (latency)")
	fs.StringVar(&opt.fshealth, "fshealth", "bin/fshealth", "the fshealth binary")
	fs.StringVar(&opt.compare, "compare", "", "another fshealth binary to time in the same run, as a third reader (latency)")
	fs.IntVar(&opt.rounds, "rounds", 1, "start the readers afresh this many times, the errors split between them, the samples pooled (latency)")
	fs.DurationVar(&opt.gap, "gap", 0, "pause before each error (latency): at 20ms or more the readers' CPUs go idle between errors, as when errors are isolated")
	fs.Parse(os.Args[2:])
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "fshealth-bench: needs root (loop devices, mounts, trigger_fs_error)")
		os.Exit(1)
	}
	if !mountns.Inside() {
		code, err := mountns.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "fshealth-bench:", err)
		}
		os.Exit(code)
	}
	var err error
	if opt.fshealth, err = filepath.Abs(opt.fshealth); err != nil {
		fmt.Fprintln(os.Stderr, "fshealth-bench:", err)
		os.Exit(1)
	}
	if opt.dir, err = os.MkdirTemp("", "fshealth-bench-"); err != nil {
		fmt.Fprintln(os.Stderr, "fshealth-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("%s, %d CPUs, load %s, fshealth %s\n", runtime.GOARCH, runtime.NumCPU(), loadavg(), opt.fshealth)
	err = run(opt)
	os.RemoveAll(opt.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fshealth-bench:", err)
		os.Exit(1)
	}
}
