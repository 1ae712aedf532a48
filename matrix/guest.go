package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// guestConfig is how guests are booted.
type guestConfig struct {
	Timeout   time.Duration // per guest, from start to power-off
	MemoryMiB int
	LogDir    string // where each guest's console log is kept
}

// guestRun is what one guest produced.
type guestRun struct {
	Kernel   *kernel
	Lines    []string // console log, without carriage returns
	LogPath  string
	Wall     time.Duration
	TimedOut bool
	Err      error // qemu could not run, or exited with an error
}

// runGuest boots k under qemu (software emulation) with the initrd pieces
// concatenated, and collects its console log until it powers off, crashes or
// times out. qemu is killed on timeout or cancellation.
func runGuest(ctx context.Context, cfg guestConfig, work string, k *kernel, pieces []string) *guestRun {
	r := &guestRun{Kernel: k, LogPath: filepath.Join(cfg.LogDir, "guest-"+k.Spec.Name+".log")}
	initrd := filepath.Join(work, "initrd-"+k.Spec.Name+".cpio")
	if err := concatFiles(initrd, append([]string{k.Modules}, pieces...)); err != nil {
		r.Err = err
		return r
	}
	defer os.Remove(initrd)
	logFile, err := os.Create(r.LogPath)
	if err != nil {
		r.Err = err
		return r
	}
	defer logFile.Close()

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(cfg, k.Vmlinuz, initrd)...)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.Err = err
		return r
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.Err = fmt.Errorf("starting qemu: %w", err)
		return r
	}
	r.Lines = readConsole(io.TeeReader(stdout, logFile), k)
	err = cmd.Wait()
	r.Wall = time.Since(start)
	r.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
	if err != nil && !r.TimedOut {
		r.Err = fmt.Errorf("qemu: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return r
}

// qemuArgs boots vmlinuz and initrd with software emulation (the machine's
// KVM cannot run stock kernels), one CPU and the serial console on stdout.
func qemuArgs(cfg guestConfig, vmlinuz, initrd string) []string {
	return []string{
		"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", fmt.Sprint(cfg.MemoryMiB),
		"-nodefaults", "-no-user-config", "-nographic", "-monitor", "none",
		"-serial", "stdio", "-no-reboot",
		"-kernel", vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 panic=-1 quiet loglevel=1 random.trust_cpu=on",
	}
}

// readConsole reads the console log line by line, printing progress at the
// markers the guest's /init prints.
func readConsole(r io.Reader, k *kernel) []string {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		lines = append(lines, line)
		if rest, ok := cutMarker(line); ok && strings.HasPrefix(rest, "END ") {
			logf("kernel %s: %s", k.Spec.Name, strings.TrimPrefix(rest, "END "))
		}
	}
	return lines
}

// concatFiles writes the concatenation of srcs to dst.
func concatFiles(dst string, srcs []string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	for _, src := range srcs {
		in, err := os.Open(src)
		if err != nil {
			out.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}
