// Command fshealth-bench measures fshealth end to end on real file system
// errors.
//
//	fshealth-bench latency [-n 1000] [--fshealth PATH] [--baseline]
//
// It needs root: it mounts a scratch ext4 image on a loop device, raises real
// errors through /sys/fs/ext4/<dev>/trigger_fs_error, and times each one from
// just before the write(2) that raises it to the moment the bench has read
// the line `fshealth watch --json` printed for it. See bench/README.md.
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

latency measures the end-to-end latency of fshealth: it raises N real ext4
errors on a scratch file system, one at a time, and times each from just
before the write(2) to trigger_fs_error to the moment the bench has read the
NDJSON line fshealth printed for it. With --baseline it measures a minimal C
reader (bench/minreader.c) the same way and compares.

stages runs fshealth's pipeline (fanotify read, enrich, JSON, write) inside
the bench with a timestamp between steps, to show where the time goes.

Both need root. Everything runs in a private mount namespace and is cleaned
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
	if hostEnv := os.Getenv(selfHostEnv); hostEnv != "" {
		// Started by the bench as an instrumented fshealth (profiling).
		os.Exit(runSelfHosted(hostEnv, os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 || (args[0] != "latency" && args[0] != "stages") {
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
	if opt.n < 1 || opt.warmup < 0 {
		fmt.Fprintln(os.Stderr, "fshealth-bench: -n must be at least 1 and -warmup not negative")
		return 2
	}
	if dir := os.Getenv(mountnsEnv); dir != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		var ok bool
		var err error
		if args[0] == "stages" {
			ok, err = stages(ctx, &opt, dir)
		} else {
			ok, err = latency(ctx, &opt, dir)
		}
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
	fs.IntVar(&opt.n, "n", 1000, "number of measured errors")
	fs.IntVar(&opt.warmup, "warmup", 20, "number of errors raised and discarded before measuring")
	fs.StringVar(&opt.fshealth, "fshealth", "", "latency: fshealth binary (default: fshealth next to this binary, else ./bin/fshealth, else go build ./cmd/fshealth)")
	fs.BoolVar(&opt.baseline, "baseline", false, "latency: also measure bench/minreader.c, a minimal C reader, and compare")
	fs.DurationVar(&opt.timeout, "timeout", 5*time.Second, "how long to wait for the event of one error")
	fs.Int64Var(&opt.size, "size", 64<<20, "scratch ext4 image size in bytes")
	fs.StringVar(&opt.pin, "pin", "none", "latency: CPU placement: none, same (bench and reader on one CPU) or cross (on two CPUs)")
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
