package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"

	"github.com/fshealth/fshealth/internal/cli"
)

// profileEnv, when set to a directory, makes the bench measure a profiled
// fshealth instead of the fshealth binary: this bench binary, started with
// selfHostEnv, runs fshealth's own command line (internal/cli, the code
// cmd/fshealth runs) and writes a CPU profile and an execution trace there.
// Only the bench knows these variables; fshealth itself is unchanged.
const profileEnv = "FSHEALTH_BENCH_PROFILE"

// selfHostEnv is set by the bench on the profiled fshealth it starts; its
// value is the profile directory.
const selfHostEnv = "FSHEALTH_BENCH_SELFHOST"

// profileHz is the CPU profiling rate. The default 100 Hz gives only a few
// samples for a process that sleeps most of the time.
const profileHz = 4000

// selfHostedReader returns the reader that runs this binary as a profiled
// fshealth writing its profiles into dir.
func selfHostedReader(dir string) (*reader, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("$%s: %w", profileEnv, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &reader{
		name: "fshealth",
		path: exe,
		args: []string{"watch", "--json", "--quiet"},
		env:  []string{selfHostEnv + "=" + abs},
		// The bench's side of the timeline, to line up with trace.out.
		timeline: filepath.Join(abs, "bench-timeline.tsv"),
	}, nil
}

// runSelfHosted runs fshealth's command line with args, writing dir/cpu.pprof
// and dir/trace.out, and returns its exit status.
func runSelfHosted(dir string, args []string) int {
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench (profiling fshealth): %v\n", err)
		return 1
	}
	defer cpu.Close()
	tr, err := os.Create(filepath.Join(dir, "trace.out"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench (profiling fshealth): %v\n", err)
		return 1
	}
	defer tr.Close()
	// Setting the rate first makes StartCPUProfile keep it (it logs that
	// it could not set its own 100 Hz).
	runtime.SetCPUProfileRate(profileHz)
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench (profiling fshealth): %v\n", err)
		return 1
	}
	if err := trace.Start(tr); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "fshealth-bench (profiling fshealth): %v\n", err)
		return 1
	}
	code := cli.Main(args)
	trace.Stop()
	pprof.StopCPUProfile()
	return code
}
