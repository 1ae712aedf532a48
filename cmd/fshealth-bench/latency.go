package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// modulePath is the module whose cmd/fshealth and bench/minreader.c the bench
// uses when it has to build them.
const modulePath = "github.com/fshealth/fshealth"

// triggerMsg is written to trigger_fs_error; ext4 logs it (rate limited).
var triggerMsg = []byte("fshealth-bench")

// latency is the latency subcommand, running inside the private mount
// namespace with dir as its scratch directory. It returns ok=false when a
// check failed after the measurements were printed.
func latency(ctx context.Context, opt *options, dir string) (ok bool, err error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return false, fmt.Errorf("scratch directory %s from $%s is not a directory", dir, mountnsEnv)
	}
	pins, err := planPins(opt.pin)
	if err != nil {
		return false, err
	}
	readers := []*reader{}

	if prof := os.Getenv(profileEnv); prof != "" {
		r, err := selfHostedReader(prof)
		if err != nil {
			return false, err
		}
		fmt.Printf("fshealth: this bench binary running internal/cli as fshealth, profiled into %s ($%s)\n", prof, profileEnv)
		readers = append(readers, r)
	} else {
		fsh, how, err := findFshealth(ctx, opt.fshealth, dir)
		if err != nil {
			return false, err
		}
		fmt.Printf("fshealth: %s (%s)\n", fsh, how)
		readers = append(readers, &reader{name: "fshealth", path: fsh, args: []string{"watch", "--json", "--quiet"}})
	}
	if opt.baseline {
		mr, src, err := buildMinreader(ctx, dir)
		if err != nil {
			return false, err
		}
		fmt.Printf("baseline: %s (cc -O2 %s)\n", mr, src)
		readers = append(readers, &reader{name: "baseline", path: mr})
	}

	sc, err := newScratch(dir, opt.size)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := sc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()
	if pins.bench >= 0 {
		if err := pinProcess(pins.bench); err != nil {
			return false, err
		}
	}
	fmt.Printf("CPUs: %v\n", pins)
	fmt.Printf("measuring %d errors per reader, one at a time, after %d warm-up errors\n\n", opt.n, opt.warmup)

	b := &bench{opt: opt, sc: sc, readerCPU: pins.reader, countPath: filepath.Join(sc.im.SysfsDir(), "errors_count"), mountpoint: sc.im.Mountpoint, dir: dir}
	// The bench allocates a little per error; keep its own GC out of the
	// measured window.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	ok = true
	var results []*result
	for _, r := range readers {
		res, err := b.measure(ctx, r)
		if err != nil {
			return false, fmt.Errorf("%s: %w", r.name, err)
		}
		res.print(os.Stdout)
		fmt.Println()
		ok = ok && res.ok()
		results = append(results, res)
	}
	summary(os.Stdout, results)
	return ok, nil
}

// scratch is the scratch ext4 file system errors are raised on.
type scratch struct {
	im        *loopfs.Image
	triggerFD int // trigger_fs_error, open for writing
}

// newScratch creates an ext4 image of size bytes in dir, mounts it on
// dir/mnt with errors=continue and opens its trigger_fs_error.
func newScratch(dir string, size int64) (*scratch, error) {
	s, err := newScratchAt(dir, filepath.Join(dir, "mnt"), size)
	if err != nil {
		return nil, err
	}
	fmt.Printf("scratch: %s on %s (%s, errors=continue), errors raised through %s\n",
		filepath.Base(s.im.File), s.im.Mountpoint, s.im.Dev, s.triggerPath())
	return s, nil
}

// newScratchAt creates an ext4 image of size bytes in dir, mounts it on
// mountpoint with errors=continue and opens its trigger_fs_error.
func newScratchAt(dir, mountpoint string, size int64) (*scratch, error) {
	im, err := loopfs.Create(dir, "ext4", size)
	if err != nil {
		return nil, err
	}
	if err := im.Mount(mountpoint, "errors=continue"); err != nil {
		im.Remove()
		return nil, err
	}
	trigger := filepath.Join(im.SysfsDir(), "trigger_fs_error")
	tfd, err := unix.Open(trigger, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		im.Remove()
		return nil, fmt.Errorf("opening %s: %w", trigger, err)
	}
	return &scratch{im: im, triggerFD: tfd}, nil
}

func (s *scratch) triggerPath() string { return filepath.Join(s.im.SysfsDir(), "trigger_fs_error") }

// trigger raises one ext4 error (EUCLEAN) on the scratch file system.
func (s *scratch) trigger() error {
	_, err := unix.Pwrite(s.triggerFD, triggerMsg, 0)
	return err
}

// Close closes the trigger file, unmounts the file system and removes the
// image.
func (s *scratch) Close() error {
	unix.Close(s.triggerFD)
	return s.im.Remove()
}

// findFshealth returns the fshealth binary to measure and how it was chosen:
// the --fshealth flag, else fshealth next to this binary, else ./bin/fshealth,
// else one built with go build into dir.
func findFshealth(ctx context.Context, flagPath, dir string) (path, how string, err error) {
	if flagPath != "" {
		p, err := exec.LookPath(flagPath)
		if err != nil {
			return "", "", fmt.Errorf("--fshealth %s: %w", flagPath, err)
		}
		p, _ = filepath.Abs(p)
		return p, "--fshealth", nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "fshealth")
		if isExecutable(p) {
			return p, "next to " + exe, nil
		}
	}
	if isExecutable("bin/fshealth") {
		p, _ := filepath.Abs("bin/fshealth")
		return p, "./bin/fshealth", nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("no fshealth binary (not next to this binary, no ./bin/fshealth) and cannot build one: %w; pass --fshealth PATH", err)
	}
	out := filepath.Join(dir, "fshealth")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/fshealth")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("no fshealth binary (not next to this binary, no ./bin/fshealth), and go build -o %s ./cmd/fshealth in %s failed: %w%s", out, root, err, indent(b))
	}
	return out, "built with go build ./cmd/fshealth in " + root, nil
}

// buildMinreader compiles bench/minreader.c with cc -O2 into dir.
func buildMinreader(ctx context.Context, dir string) (path, src string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", fmt.Errorf("--baseline needs bench/minreader.c: %w", err)
	}
	src = filepath.Join(root, "bench", "minreader.c")
	if _, err := os.Stat(src); err != nil {
		return "", "", fmt.Errorf("--baseline: %w", err)
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", "", fmt.Errorf("--baseline compiles %s but there is no C compiler (cc) in $PATH: install one (Debian: apt-get install gcc)", src)
	}
	out := filepath.Join(dir, "minreader")
	if b, err := exec.CommandContext(ctx, cc, "-O2", "-Wall", "-o", out, src).CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("--baseline: %s -O2 -o %s %s: %w%s", cc, out, src, err, indent(b))
	} else if len(strings.TrimSpace(string(b))) > 0 {
		fmt.Fprintf(os.Stderr, "cc warnings:%s\n", indent(b))
	}
	return out, src, nil
}

// moduleRoot finds the fshealth module root: the current directory or one
// of its parents whose go.mod declares modulePath.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				f := strings.Fields(line)
				if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == modulePath {
					return d, nil
				}
			}
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("%s is not inside the %s module (run from its source tree)", wd, modulePath)
		}
	}
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// indent formats command output for an error message.
func indent(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	return ":\n    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// readCount reads an integer sysfs attribute such as errors_count.
func readCount(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// summary prints one row per reader and, with a baseline, the p50 ratio.
func summary(w io.Writer, rs []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "reader\tn\tp50 µs\tp90 µs\tp99 µs\tmax µs\tevents/s\tCPU µs/event\tpeak RSS KiB\tchecks\t")
	for _, r := range rs {
		checks := "OK"
		if !r.ok() {
			checks = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%.0f\t%s\t%d\t%s\t\n", r.name, len(r.lat),
			us(r.pct(50)), us(r.pct(90)), us(r.pct(99)), us(r.pct(100)), r.rate(), cpuPerEvent(r), r.hwmKiB, checks)
	}
	tw.Flush()
	if len(rs) == 2 {
		base := rs[1].pct(50)
		if base > 0 {
			ratio := float64(rs[0].pct(50)) / float64(base)
			verdict := "within"
			if ratio > 1.5 {
				verdict = "NOT within"
			}
			fmt.Fprintf(w, "\np50 ratio %s / %s = %.2f (%s the 1.5x target)\n", rs[0].name, rs[1].name, ratio, verdict)
		}
	}
}

func cpuPerEvent(r *result) string {
	if r.cpuRun < 0 {
		return "?"
	}
	return us(r.cpuRun / time.Duration(len(r.lat)))
}

// us formats a duration in microseconds with one decimal.
func us(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64)
}
