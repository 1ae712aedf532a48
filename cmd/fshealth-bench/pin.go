package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// pinExecEnv makes this binary a tiny exec wrapper: pin the thread to the CPU
// named by the value, then exec os.Args[1] with os.Args[1:]. The wrapped
// program keeps the pid the bench started, and its first thread (so every
// thread it creates) inherits the affinity.
const pinExecEnv = "FSHEALTH_BENCH_PIN_EXEC"

// pinPlan says which CPUs the bench and the reader run on; -1 means not
// pinned.
type pinPlan struct {
	bench, reader int
}

// planPins turns the --pin flag into CPUs from the ones this process may use.
// "same" puts both on one CPU, "cross" on two different ones.
func planPins(mode string) (pinPlan, error) {
	if mode == "" || mode == "none" {
		return pinPlan{-1, -1}, nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return pinPlan{}, fmt.Errorf("--pin: sched_getaffinity: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	switch mode {
	case "same":
		return pinPlan{cpus[0], cpus[0]}, nil
	case "cross":
		if len(cpus) < 2 {
			return pinPlan{}, fmt.Errorf("--pin cross needs two CPUs, this process may use only CPU %d", cpus[0])
		}
		return pinPlan{cpus[0], cpus[1]}, nil
	}
	return pinPlan{}, fmt.Errorf("--pin %q: want none, same or cross", mode)
}

func (p pinPlan) String() string {
	if p.bench < 0 {
		return "not pinned (the scheduler places bench and reader)"
	}
	if p.bench == p.reader {
		return fmt.Sprintf("bench and reader both on CPU %d", p.bench)
	}
	return fmt.Sprintf("bench on CPU %d, reader on CPU %d", p.bench, p.reader)
}

// pinProcess pins every thread of this process to cpu. Threads created later
// inherit the affinity of the thread creating them; two passes catch threads
// created while the first one ran.
func pinProcess(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	for pass := 0; pass < 2; pass++ {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pinning thread %d to CPU %d: %w", tid, cpu, err)
			}
		}
	}
	return nil
}

// pinnedCommand returns the path and arguments that run path with args on
// cpu, through this binary as an exec wrapper, and the environment entry
// that asks for it. With cpu < 0 it returns them unchanged.
func pinnedCommand(cpu int, path string, args []string) (string, []string, []string, error) {
	if cpu < 0 {
		return path, args, nil, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, nil, err
	}
	return exe, append([]string{path}, args...), []string{pinExecEnv + "=" + strconv.Itoa(cpu)}, nil
}

// runPinExec is main for the exec wrapper: it never returns on success.
func runPinExec(cpuStr string, args []string) int {
	cpu, err := strconv.Atoi(cpuStr)
	if err != nil || len(args) < 1 {
		fmt.Fprintf(os.Stderr, "fshealth-bench: bad $%s=%q or no program to run\n", pinExecEnv, cpuStr)
		return 2
	}
	runtime.LockOSThread() // exec from the pinned thread
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench: pinning to CPU %d: %v\n", cpu, err)
		return 1
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, pinExecEnv+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(args[0], args, env)
	fmt.Fprintf(os.Stderr, "fshealth-bench: exec %s: %v\n", filepath.Base(args[0]), err)
	return 1
}
