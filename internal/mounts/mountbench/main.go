// Command mountbench measures how fshealth's watcher follows a mount table
// at container-host scale: one ext4 file system bind-mounted N times (100,
// 1,000, 10,000 by default), then K more bind mounts added and removed in
// bulk while it runs, then an error raised on the file system. For each N
// and each way of following mounts (fanotify mount events + statmount(2);
// the mountinfo fallback, forced) it reports the watcher's ready time, its
// CPU per mount event (user+system, the whole process), its peak RSS and
// the error event's mount points, next to floors measured in the same run:
// statmount(2) of one mount id and one read of /proc/self/mountinfo.
//
// It needs root and runs in a private mount namespace (package mountns),
// so every mount it makes goes when it exits. `make bench-mounts` runs it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/mountns"
	"github.com/fshealth/fshealth/internal/sys"
	"github.com/fshealth/fshealth/internal/watch"
)

func main() {
	sizes := flag.String("sizes", "100,1000,10000", "mount counts to measure at, comma separated")
	burst := flag.Int("burst", 1000, "bind mounts added, then removed, while the watcher runs")
	child := flag.String("child", "", "internal: run the watcher (mode,major:minor)")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child); err != nil {
			fmt.Fprintln(os.Stderr, "mountbench child:", err)
			os.Exit(1)
		}
		return
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "mountbench: needs root (mounts a loop device, uses fanotify)")
		os.Exit(2)
	}
	if !mountns.Inside() {
		code, err := mountns.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mountbench:", err)
		}
		os.Exit(code)
	}
	var ns []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "mountbench: bad size %q in -sizes\n", s)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	if err := run(ns, *burst); err != nil {
		fmt.Fprintln(os.Stderr, "mountbench:", err)
		os.Exit(1)
	}
}

// bench is the parent's state: the image, its bind mounts.
type bench struct {
	dir    string
	im     *loopfs.Image
	binds  []string
	bursts []string
}

func run(ns []int, burst int) error {
	dir, err := os.MkdirTemp("", "mountbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	im, err := loopfs.Create(dir, "ext4", 64<<20)
	if err != nil {
		return err
	}
	b := &bench{dir: dir, im: im}
	defer b.cleanup()
	if err := im.Mount(filepath.Join(dir, "fs"), "errors=continue"); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(im.Mountpoint, &st); err != nil {
		return err
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	for i := range burst {
		p := filepath.Join(dir, "burst", strconv.Itoa(i))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		b.bursts = append(b.bursts, p)
	}
	sm, err := statmountFloor(im.Mountpoint)
	if err != nil {
		return err
	}
	fmt.Printf("mountbench: %s, ext4 on %s (%s) bind-mounted N times, %d more added then removed in bulk while following\n",
		time.Now().UTC().Format(time.RFC3339), im.Dev, dev, burst)
	fmt.Printf("floor: statmount(2) of one mount id: p50 %s p99 %s (%d calls)\n\n", us(sm.p50), us(sm.p99), sm.n)
	fmt.Println("| mounts | follow | mountinfo read: p50 / p99 (floor) | ready: wall (CPU) | ready CPU ÷ read | CPU per mount event, added / removed | ÷ floor | peak RSS | error event |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, n := range ns {
		if err := b.grow(n); err != nil {
			return err
		}
		total := countMounts()
		read := readFloor()
		for _, mode := range []string{watch.FollowFanotify, watch.FollowMountinfo} {
			r, err := b.measure(mode, dev, burst)
			if err != nil {
				return fmt.Errorf("%d mounts, %s: %w", n, mode, err)
			}
			floor, floorName := sm.p50, "statmount"
			if mode == watch.FollowMountinfo {
				floor, floorName = read.p50, "read"
			}
			fmt.Printf("| %d (%d in all) | %s | %s / %s | %s (%s) | %.1f× | %s / %s | %.3g× / %.3g× %s | %.1f MB | %d event(s), %d mount points |\n",
				n, total, mode, us(read.p50), us(read.p99), ms(r.ready), ms(r.readyCPU), float64(r.readyCPU)/float64(read.p50),
				us(r.addCPU/time.Duration(burst)), us(r.delCPU/time.Duration(burst)),
				float64(r.addCPU)/float64(burst)/float64(floor), float64(r.delCPU)/float64(burst)/float64(floor), floorName,
				float64(r.rssKB)/1024, r.errEvents, r.errPoints)
		}
	}
	return nil
}

// grow bind-mounts the file system until it has n bind mounts.
func (b *bench) grow(n int) error {
	for len(b.binds) < n {
		p := filepath.Join(b.dir, "bind", strconv.Itoa(len(b.binds)))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(b.im.Mountpoint, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", p, err)
		}
		b.binds = append(b.binds, p)
	}
	return nil
}

func (b *bench) cleanup() {
	for _, p := range b.bursts {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	for _, p := range b.binds {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	b.im.Remove()
}

// result is what one child measured.
type result struct {
	ready, readyCPU      time.Duration
	addCPU, delCPU       time.Duration
	rssKB                int64
	errEvents, errPoints int
}

// measure runs the watcher in a child process (its RSS is its own), adds
// and removes the burst of bind mounts while it runs, and raises an error.
func (b *bench) measure(mode, dev string, burst int) (result, error) {
	var r result
	exe, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.Command(exe, "-child", mode+","+dev)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer cmd.Wait()
	defer in.Close()
	lines := bufio.NewScanner(out)
	expect := func(word string) ([]int64, error) {
		if !lines.Scan() {
			return nil, fmt.Errorf("child ended before %q: %v", word, lines.Err())
		}
		f := strings.Fields(lines.Text())
		if len(f) == 0 || f[0] != word {
			return nil, fmt.Errorf("child said %q, want %q", lines.Text(), word)
		}
		var v []int64
		for _, s := range f[1:] {
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("child said %q", lines.Text())
			}
			v = append(v, x)
		}
		return v, nil
	}
	v, err := expect("ready")
	if err != nil {
		return r, err
	}
	r.ready, r.readyCPU = time.Duration(v[0]), time.Duration(v[1])
	base := len(b.binds) + 1
	fmt.Fprintf(in, "expect %d\n", base+burst)
	if _, err := expect("waiting"); err != nil {
		return r, err
	}
	for _, p := range b.bursts {
		if err := unix.Mount(b.im.Mountpoint, p, "", unix.MS_BIND, ""); err != nil {
			return r, fmt.Errorf("bind mount %s: %w", p, err)
		}
	}
	if v, err = expect("reached"); err != nil {
		return r, err
	}
	r.addCPU = time.Duration(v[0])
	fmt.Fprintf(in, "expect %d\n", base)
	if _, err := expect("waiting"); err != nil {
		return r, err
	}
	for _, p := range b.bursts {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			return r, fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	if v, err = expect("reached"); err != nil {
		return r, err
	}
	r.delCPU = time.Duration(v[0])
	fmt.Fprintf(in, "error\n")
	if _, err := expect("waiting"); err != nil {
		return r, err
	}
	if err := b.im.TriggerError("mountbench"); err != nil {
		return r, err
	}
	if v, err = expect("error"); err != nil {
		return r, err
	}
	r.errEvents, r.errPoints = int(v[0]), int(v[1])
	if r.errPoints != base {
		return r, fmt.Errorf("the error event has %d mount points, the file system %d", r.errPoints, base)
	}
	fmt.Fprintf(in, "done\n")
	if v, err = expect("rss"); err != nil {
		return r, err
	}
	r.rssKB = v[0]
	return r, nil
}

// runChild runs the watcher and answers the parent: "ready <ns>", then for
// each "expect <n>": "waiting", and "reached <cpu ns>" once the file system
// has n mount points; for "error": "waiting", then "error <events> <mount
// points>"; for "done": "rss <KB>".
func runChild(arg string) error {
	mode, dev, _ := strings.Cut(arg, ",")
	if p := os.Getenv("MOUNTBENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p + "." + mode)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var points atomic.Int64
	changed := make(chan struct{}, 1)
	evs := make(chan event.Event, 16)
	level := slog.LevelWarn
	if os.Getenv("MOUNTBENCH_LOG") != "" {
		level = slog.LevelDebug
	}
	start, cpu0 := time.Now(), cpuTime()
	w, err := watch.New(watch.Config{
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		FollowMounts: mode,
		OnChange: func(c watch.Change) {
			for _, fs := range c.Updated {
				if fs.Dev() == dev {
					points.Store(int64(len(fs.Mountpoints)))
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			}
		},
		Sink: func(es []event.Event) error {
			for _, e := range es {
				if e.Kind == event.KindError {
					evs <- e
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	ready, readyCPU := time.Since(start), cpuTime()-cpu0
	if w.Following() != mode {
		return fmt.Errorf("following with %q, want %q", w.Following(), mode)
	}
	for _, fs := range w.Watched() {
		if fs.Dev() == dev {
			points.Store(int64(len(fs.Mountpoints)))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	fmt.Printf("ready %d %d\n", ready, readyCPU)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "expect":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			cpu0 := cpuTime()
			fmt.Println("waiting")
			deadline := time.After(5 * time.Minute)
			for points.Load() != n {
				select {
				case <-changed:
				case <-deadline:
					return fmt.Errorf("the file system has %d mount points after 5 minutes, want %d", points.Load(), n)
				}
			}
			fmt.Printf("reached %d\n", cpuTime()-cpu0)
		case len(f) == 1 && f[0] == "error":
			fmt.Println("waiting")
			e := <-evs
			n := 1
			// Any second event for the same error would come right
			// behind the first.
			t := time.After(500 * time.Millisecond)
		more:
			for {
				select {
				case <-evs:
					n++
				case <-t:
					break more
				}
			}
			fmt.Printf("error %d %d\n", n, len(e.Mountpoints))
		case len(f) == 1 && f[0] == "done":
			cancel()
			if err := <-done; err != nil {
				return err
			}
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			fmt.Printf("rss %d\n", ru.Maxrss)
			return nil
		}
	}
	cancel()
	<-done
	return in.Err()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// floor is a set of timings.
type floor struct {
	p50, p99 time.Duration
	n        int
}

func percentiles(d []time.Duration) floor {
	slices.Sort(d)
	return floor{p50: d[len(d)/2], p99: d[len(d)*99/100], n: len(d)}
}

// statmountFloor times statmount(2) of the mount at path, by its unique id.
func statmountFloor(path string) (floor, error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_MNT_ID_UNIQUE, &stx); err != nil {
		return floor{}, err
	}
	var s sys.Statmounter
	if _, err := s.Statmount(stx.Mnt_id); err != nil {
		return floor{}, err
	}
	d := make([]time.Duration, 20000)
	for i := range d {
		t := time.Now()
		s.Statmount(stx.Mnt_id)
		d[i] = time.Since(t)
	}
	return percentiles(d), nil
}

// readFloor times reading /proc/self/mountinfo to its end (no parsing).
func readFloor() floor {
	buf := make([]byte, 256<<10)
	d := make([]time.Duration, 31)
	for i := range d {
		t := time.Now()
		f, err := os.Open("/proc/self/mountinfo")
		if err == nil {
			for {
				if _, err := f.Read(buf); err != nil {
					break
				}
			}
			f.Close()
		}
		d[i] = time.Since(t)
	}
	return percentiles(d)
}

func countMounts() int {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 256<<10)
	for {
		k, err := f.Read(buf)
		n += strings.Count(string(buf[:k]), "\n")
		if errors.Is(err, io.EOF) || k == 0 {
			return n
		}
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/1e6) }
