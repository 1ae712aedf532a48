// Command fshealth-bench measures fshealth end to end on real file system
// errors.
//
//	fshealth-bench latency [-n 1000] [--fshealth PATH] [--baseline]
//	fshealth-bench stages [-n 1000]
//	fshealth-bench daemon-latency [-n 500] [--fshealth PATH]
//	fshealth-bench storm [-fs 32] [-errors 5000] [--fshealth PATH]
//	fshealth-bench idle [-for 60s] [--fshealth PATH]
//	fshealth-bench mount-latency [-n 50] [-follow both|auto|mountinfo] [--fshealth PATH]
//
// It needs root: it mounts scratch ext4 images on loop devices and raises
// real errors through /sys/fs/ext4/<dev>/trigger_fs_error. latency times
// each error from just before the write(2) that raises it to the moment the
// bench has read the line `fshealth watch --json` printed for it;
// daemon-latency to the moment the bench's webhook receiver has the alert
// `fshealth daemon` sent for it; storm floods many file systems and checks
// that the daemon accounts for every error; idle watches an idle daemon's
// memory and wake-ups; mount-latency times each mount of a scratch file
// system to the moment `fshealth watch` has logged that it watches it. See
// bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

const usage = `usage: fshealth-bench latency [flags]
       fshealth-bench stages [flags]
       fshealth-bench daemon-latency [flags]
       fshealth-bench storm [flags]
       fshealth-bench idle [flags]
       fshealth-bench mount-latency [flags]

latency measures the end-to-end latency of fshealth: it raises N real ext4
errors on a scratch file system, one at a time, and times each from just
before the write(2) to trigger_fs_error to the moment the bench has read the
NDJSON line fshealth printed for it. With --baseline it measures a minimal C
reader (bench/minreader.c) the same way and compares.

stages runs fshealth's pipeline (fanotify read, enrich, JSON, write) inside
the bench with a timestamp between steps, to show where the time goes.

daemon-latency starts the real 'fshealth daemon' (history in a scratch state
directory, one webhook to a receiver inside the bench, anti-flood off so that
every error is alerted) and times each of N errors from just before the
write(2) to trigger_fs_error to the moment the receiver has the webhook
request carrying that error's event. It also reports the daemon's history
commit time (fshealth_history_commit_duration_seconds).

storm mounts -fs scratch file systems, has the daemon watch them all, raises
-errors errors on each as fast as it can (one goroutine per file system),
waits until the daemon has recorded and alerted everything, and checks that
every error is accounted for: in the history, per file system, and in the
alerts (one first alert per incident, then digests whose counts add up).

idle starts the daemon on one scratch file system and, for -for, measures
its memory and its wake-ups (context switches of all its threads).

mount-latency starts the real 'fshealth watch --json' (every file system),
then mounts N scratch ext4 file systems one at a time with mount(2). It times
each from just before mount(2) to the moment the bench has read fshealth's
"watching file system" log line for that device, then raises an error on it
and checks that the event arrives (not timed), and unmounts it. -follow auto
runs fshealth as it is (fanotify mount events on Linux 6.15+); -follow
mountinfo runs it under a seccomp filter that refuses FAN_REPORT_MNT as older
kernels do, so that it falls back to POLLPRI on /proc/self/mountinfo.

All need root. Everything runs in a private mount namespace and is cleaned
up on exit, interrupted or not.

Flags:
`

// options are the latency subcommand's flags.
type options struct {
	n        int
	warmup   int
	fshealth string
	baseline bool
	timeout  time.Duration
	size     int64
	pin      string

	// daemon subcommands
	channels    string        // daemon-latency, storm: "all" or "webhook"
	gap         time.Duration // daemon-latency: pause between errors
	fsCount     int           // storm
	errors      int           // storm
	window      time.Duration // storm: [flood] window
	reminderMax time.Duration // storm: [flood] reminder_max
	deadline    time.Duration // storm: how long to wait for the daemon to catch up
	idleFor     time.Duration // idle
	settle      time.Duration // idle: wait after READY=1 before measuring
	strace      time.Duration // idle: strace the daemon this long after measuring
	watchdog    time.Duration // idle: WATCHDOG_USEC for the daemon (0: none)
	follow      string        // mount-latency: auto, mountinfo or both
}

// subcommands maps each subcommand to its function, which runs inside the
// private mount namespace with dir as its scratch directory.
var subcommands = map[string]func(ctx context.Context, opt *options, dir string) (bool, error){
	"latency":        latency,
	"stages":         stages,
	"daemon-latency": daemonLatency,
	"storm":          storm,
	"idle":           idle,
	"mount-latency":  mountLatency,
}

// mountnsEnv marks the re-executed process running in the private mount
// namespace; its value is the scratch directory the outer process created
// (and removes when the inner process is gone, however it ended).
const mountnsEnv = "FSHEALTH_BENCH_MOUNTNS"

func main() {
	if cpu := os.Getenv(pinExecEnv); cpu != "" {
		// Started by the bench as a CPU-pinning exec wrapper.
		os.Exit(runPinExec(cpu, os.Args[1:]))
	}
	if os.Getenv(noMountEventsEnv) != "" {
		// Started by the bench as a wrapper hiding fanotify mount events.
		os.Exit(runNoMountEventsExec(os.Args[1:]))
	}
	if hostEnv := os.Getenv(selfHostEnv); hostEnv != "" {
		// Started by the bench as an instrumented fshealth (profiling).
		os.Exit(runSelfHosted(hostEnv, os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || subcommands[args[0]] == nil {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(os.Stdout, usage)
			newFlags(&options{}, os.Stdout).PrintDefaults()
			return 0
		}
		fmt.Fprint(os.Stderr, usage)
		newFlags(&options{}, os.Stderr).PrintDefaults()
		return 2
	}
	var opt options
	fs := newFlags(&opt, os.Stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "fshealth-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch args[0] {
	case "daemon-latency":
		if !set["n"] {
			opt.n = 500
		}
	case "storm":
		if !set["size"] {
			opt.size = 16 << 20
		}
	case "mount-latency":
		if !set["n"] {
			opt.n = 50
		}
		if !set["warmup"] {
			opt.warmup = 0
		}
		if !set["fs"] {
			opt.fsCount = min(opt.n+opt.warmup, 50)
		}
		if !set["size"] {
			opt.size = 16 << 20
		}
	}
	if opt.n < 1 || opt.warmup < 0 {
		fmt.Fprintln(os.Stderr, "fshealth-bench: -n must be at least 1 and -warmup not negative")
		return 2
	}
	if opt.fsCount < 1 || opt.errors < 1 || opt.idleFor <= 0 || opt.settle < 0 || opt.window < 0 || opt.reminderMax < 0 || opt.deadline <= 0 || opt.strace < 0 || opt.gap < 0 || opt.watchdog < 0 {
		fmt.Fprintln(os.Stderr, "fshealth-bench: -fs and -errors must be at least 1, -for and -deadline positive, -settle, -window, -reminder-max, -strace, -gap and -watchdog not negative")
		return 2
	}
	if opt.follow != followBoth && opt.follow != followAuto && opt.follow != followMountinfo {
		fmt.Fprintf(os.Stderr, "fshealth-bench: -follow %q: want both, auto or mountinfo\n", opt.follow)
		return 2
	}
	if opt.channels != "all" && opt.channels != "webhook" {
		fmt.Fprintf(os.Stderr, "fshealth-bench: -channels %q: want all or webhook\n", opt.channels)
		return 2
	}
	if dir := os.Getenv(mountnsEnv); dir != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		var ok bool
		var err error
		ok, err = subcommands[args[0]](ctx, &opt, dir)
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(os.Stderr, "fshealth-bench: interrupted (%v); cleaned up\n", err)
				return 130
			}
			fmt.Fprintf(os.Stderr, "fshealth-bench: %v\n", err)
			return 1
		}
		if !ok {
			return 1
		}
		return 0
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "fshealth-bench: needs root: it mounts a loop device and uses fanotify FAN_FS_ERROR")
		return 1
	}
	code, err := reexec(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench: %v\n", err)
	}
	return code
}

func newFlags(opt *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("fshealth-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(out, usage)
		fs.PrintDefaults()
	}
	fs.IntVar(&opt.n, "n", 1000, "number of measured errors (daemon-latency: default 500; mount-latency: number of measured mounts, default 50)")
	fs.IntVar(&opt.warmup, "warmup", 20, "number of errors raised and discarded before measuring (mount-latency: mounts, default 0: the first mount after start counts)")
	fs.StringVar(&opt.fshealth, "fshealth", "", "latency, mount-latency and the daemon subcommands: fshealth binary (default: fshealth next to this binary, else ./bin/fshealth, else go build ./cmd/fshealth)")
	fs.BoolVar(&opt.baseline, "baseline", false, "latency: also measure bench/minreader.c, a minimal C reader, and compare")
	fs.DurationVar(&opt.timeout, "timeout", 5*time.Second, "how long to wait for the event of one error (mount-latency: also for each log line)")
	fs.Int64Var(&opt.size, "size", 64<<20, "scratch ext4 image size in bytes (storm, mount-latency: default 16 MiB each)")
	fs.StringVar(&opt.pin, "pin", "none", "latency: CPU placement: none, same (bench and reader on one CPU) or cross (on two CPUs)")
	fs.StringVar(&opt.channels, "channels", "all", "daemon-latency, storm: alert channels: all (the default rule: journal and the webhook) or webhook (a rule sending to the webhook only)")
	fs.DurationVar(&opt.gap, "gap", 0, "daemon-latency: pause between one error's alert and the next error (0: none, back to back)")
	fs.IntVar(&opt.fsCount, "fs", 32, "storm: number of scratch file systems (mount-latency: images the mounts cycle through, default one per mount, at most 50)")
	fs.StringVar(&opt.follow, "follow", followBoth, "mount-latency: how fshealth follows mounts: auto (as it is: fanotify mount events on Linux 6.15+), mountinfo (under a seccomp filter refusing FAN_REPORT_MNT, so it falls back to POLLPRI on /proc/self/mountinfo) or both")
	fs.IntVar(&opt.errors, "errors", 5000, "storm: errors raised on each file system")
	fs.DurationVar(&opt.window, "window", 2*time.Second, "storm: the daemon's [flood] window (digests come when it closes)")
	fs.DurationVar(&opt.reminderMax, "reminder-max", 8*time.Second, "storm: the daemon's [flood] reminder_max (caps the doubling digest window)")
	fs.DurationVar(&opt.deadline, "deadline", 5*time.Minute, "storm: how long to wait for the daemon to record and alert everything")
	fs.DurationVar(&opt.idleFor, "for", 60*time.Second, "idle: how long to measure")
	fs.DurationVar(&opt.settle, "settle", 5*time.Second, "idle: how long to wait after READY=1 before measuring")
	fs.DurationVar(&opt.watchdog, "watchdog", 0, "idle: run the daemon as under systemd's WatchdogSec=D (sets WATCHDOG_USEC; dist/fshealth.service has 30s; 0: no watchdog)")
	fs.DurationVar(&opt.strace, "strace", 0, "idle: after measuring, trace the daemon's system calls with strace -f -tt for this long and print them (0: do not)")
	return fs
}

// reexec runs this program again, with the same arguments, in a private
// mount namespace (Go makes / recursively private in the child before exec),
// so every mount it makes dies with it even if it crashes. It forwards SIGINT
// and SIGTERM, removes the scratch directory once the child is gone, and
// returns the child's exit status.
func reexec(args []string) (int, error) {
	dir, err := os.MkdirTemp("", "fshealth-bench-")
	if err != nil {
		return 1, fmt.Errorf("creating scratch directory: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintf(os.Stderr, "fshealth-bench: removing %s: %v\n", dir, err)
		}
	}()
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Env = append(os.Environ(), mountnsEnv+"="+dir)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("re-executing in a private mount namespace: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), fmt.Errorf("the benchmark process (in its private mount namespace) died of signal %d (%v); its mounts went with it, scratch directory %s removed", ws.Signal(), ws.Signal(), dir)
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}
