package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/loopfs"
)

// mountTarget is the project's requirement: a file system mounted after
// start is watched within this long of the mount.
const mountTarget = 100 * time.Millisecond

// mountOptions are the ext4 options of every measured mount.
const mountOptions = "errors=continue"

// Follow modes of the mount-latency subcommand (-follow).
const (
	// followAuto runs fshealth as it is: it picks fanotify mount events
	// where the kernel has them (Linux 6.15+), else mountinfo.
	followAuto = "auto"
	// followMountinfo runs fshealth under a seccomp filter that refuses
	// FAN_REPORT_MNT, so that it falls back to POLLPRI on mountinfo.
	followMountinfo = "mountinfo"
	// followBoth measures auto, then mountinfo.
	followBoth = "both"
)

// noMountEventsEnv makes this binary a tiny exec wrapper: install a seccomp
// filter that makes fanotify_init(2) fail with EINVAL when asked for
// FAN_REPORT_MNT, as kernels before 6.15 do, then exec os.Args[1] with
// os.Args[1:]. `fshealth watch` has no option to choose how it follows
// mounts; run this way, its automatic choice finds no fanotify mount events
// and falls back to mountinfo change notifications, the way it would on an
// older kernel. The wrapped program keeps the pid the bench started.
const noMountEventsEnv = "FSHEALTH_BENCH_NO_MOUNT_EVENTS"

// mountLatency is the mount-latency subcommand, running inside the private
// mount namespace with dir as its scratch directory. It returns ok=false
// when a check failed after the measurements were printed.
func mountLatency(ctx context.Context, opt *options, dir string) (ok bool, err error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return false, fmt.Errorf("scratch directory %s from $%s is not a directory", dir, mountnsEnv)
	}
	fsh, how, err := findFshealth(ctx, opt.fshealth, dir)
	if err != nil {
		return false, err
	}
	fmt.Printf("fshealth: %s (%s), started as `fshealth watch --json` (every file system)\n", fsh, how)
	modes := []string{opt.follow}
	if opt.follow == followBoth {
		modes = []string{followAuto, followMountinfo}
	}
	fmt.Printf("scratch: %d ext4 images of %d MiB per follow mode, each on its own loop device, mounted with %s on %s/mnt<i>, one at a time\n",
		opt.fsCount, opt.size>>20, mountOptions, dir)
	fmt.Printf("measuring %d mounts per follow mode, after %d warm-up mounts; target: watched within %v of the mount\n\n",
		opt.n, opt.warmup, mountTarget)

	// The bench allocates a little per mount; keep its own GC out of the
	// measured windows.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	ok = true
	var results []*mountResult
	for _, mode := range modes {
		res, err := measureMounts(ctx, opt, dir, fsh, mode)
		if err != nil {
			return false, fmt.Errorf("-follow %s: %w", mode, err)
		}
		res.print(os.Stdout)
		fmt.Println()
		ok = ok && res.ok()
		results = append(results, res)
	}
	mountSummary(os.Stdout, results)
	return ok, nil
}

// mountImage is a scratch ext4 image attached to a loop device, which stays
// attached while the file system is not mounted.
type mountImage struct {
	im      *loopfs.Image
	dev     string // /dev/loopN
	name    string // loopN, the /sys/fs/ext4/<name> directory while mounted
	mp      string // mount point
	hold    int    // read-only descriptor of dev keeping it attached; -1 once closed
	mounted bool
}

// prepareImages creates n ext4 images of size bytes in dir, attaches each to
// a loop device and leaves it unmounted, ready for mount(2). loopfs attaches
// with LO_FLAGS_AUTOCLEAR and mounts; the bench then holds the device open
// and unmounts, so the device stays attached (the kernel still detaches it
// when the bench dies). It closes what it made when it fails.
func prepareImages(ctx context.Context, dir string, n int, size int64) (ims []*mountImage, err error) {
	defer func() {
		if err != nil {
			closeImages(ims)
			ims = nil
		}
	}()
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return ims, err
		}
		im, err := loopfs.Create(dir, "ext4", size)
		if err != nil {
			return ims, err
		}
		m := &mountImage{im: im, mp: filepath.Join(dir, fmt.Sprintf("mnt%d", i)), hold: -1}
		if err := im.Mount(m.mp, mountOptions); err != nil {
			im.Remove()
			return ims, err
		}
		ims = append(ims, m)
		m.dev, m.name, m.mp, m.mounted = im.Dev, im.Name, im.Mountpoint, true
		if m.hold, err = unix.Open(m.dev, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			m.hold = -1
			return ims, fmt.Errorf("opening %s to keep it attached: %w", m.dev, err)
		}
		if err := m.unmount(); err != nil {
			return ims, err
		}
	}
	return ims, nil
}

// mount mounts the image's file system with mount(2).
func (m *mountImage) mount() error {
	if err := unix.Mount(m.dev, m.mp, "ext4", 0, mountOptions); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.dev, m.mp, err)
	}
	m.mounted = true
	return nil
}

// unmount unmounts the image's file system, retrying for a moment while it
// is busy (someone may still have a file open on it).
func (m *mountImage) unmount() error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(m.mp, 0); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s (%s): %w", m.mp, m.dev, err)
	}
	m.mounted = false
	return nil
}

// close lets the loop device go and removes the image: loopfs unmounts it if
// it is mounted, and waits until AUTOCLEAR has detached the device.
func (m *mountImage) close() error {
	if m.hold >= 0 {
		unix.Close(m.hold)
		m.hold = -1
	}
	return m.im.Remove()
}

func closeImages(ims []*mountImage) error {
	var errs []error
	for _, m := range ims {
		errs = append(errs, m.close())
	}
	return errors.Join(errs...)
}

// triggerError raises one ext4 error on the mounted image.
func (m *mountImage) triggerError() error {
	p := filepath.Join("/sys/fs/ext4", m.name, "trigger_fs_error")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", p, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, triggerMsg); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// mountResult is the measurement of one follow mode.
type mountResult struct {
	mode     string // -follow: auto or mountinfo
	reported string // how fshealth said it follows mounts: fanotify or mountinfo
	with     string // its words for it
	pid      int
	images   int

	// Per measured mount, sorted: mount(2) called → watching line read;
	// mount(2) itself; mount(2) returned → line read (may be negative:
	// fshealth may log before the bench's thread is back from mount(2));
	// umount(2) called → "no longer mounted" line read.
	lat, sys, after, drop []time.Duration
	first                 time.Duration // the first mount after start, warm-up or not
	// The slowest measured mount: its number (from 1, warm-up included)
	// and its split.
	slowestN                    int
	slowest, slowSys, slowAfter time.Duration

	verified   int // errors raised after the watching line that arrived as events
	unexpected []string
	nWarn      int
	warnings   []string
	exitErr    error
}

func (r *mountResult) ok() bool {
	return r.exitErr == nil && r.verified == len(r.lat) && len(r.unexpected) == 0
}

func (r *mountResult) print(w io.Writer) {
	fmt.Fprintf(w, "== fshealth, -follow %s (pid %d)\n", r.mode, r.pid)
	fmt.Fprintf(w, "  follows with    %s: %q\n", r.reported, r.with)
	fmt.Fprintf(w, "  mounts          %d measured (cycling through %d images), one at a time\n", len(r.lat), r.images)
	fmt.Fprintf(w, "  mount→watching  %s  (min %s, mean %s)\n", msPcts(r.lat), msd(percentile(r.lat, 0)), msd(mean(r.lat)))
	fmt.Fprintf(w, "    mount(2)      %s\n", msPcts(r.sys))
	fmt.Fprintf(w, "    after it      %s  (mount(2) returned → line read)\n", msPcts(r.after))
	fmt.Fprintf(w, "  unmount→dropped %s  (umount(2) called → \"no longer mounted\" line read)\n", msPcts(r.drop))
	fmt.Fprintf(w, "  first mount     %s ms (the first mount after fshealth started: its code paths cold)\n", msd(r.first))
	fmt.Fprintf(w, "  slowest         mount #%d: %s ms = mount(2) %s ms + %s ms after it\n", r.slowestN, msd(r.slowest), msd(r.slowSys), msd(r.slowAfter))
	over, overAfter := 0, 0
	for i := range r.lat {
		if r.lat[i] > mountTarget {
			over++
		}
		if r.after[i] > mountTarget {
			overAfter++
		}
	}
	verdict := "within"
	if over > 0 {
		verdict = "NOT within"
	}
	fmt.Fprintf(w, "  target          %d of %d mounts over %v (%d of them over it after mount(2) returned): %s the target\n", over, len(r.lat), mountTarget, overAfter, verdict)
	check := "OK"
	if r.verified != len(r.lat) {
		check = "FAILED"
	}
	fmt.Fprintf(w, "  checks          an error raised right after each \"watching\" line arrived as an event for that device: %d of %d: %s\n", r.verified, len(r.lat), check)
	if len(r.unexpected) > 0 {
		fmt.Fprintf(w, "  unexpected      %d lines on stdout, first: %s\n", len(r.unexpected), r.unexpected[0])
	}
	if r.nWarn > 0 {
		fmt.Fprintf(w, "  warnings        %d logged by fshealth, first: %s\n", r.nWarn, r.warnings[0])
	}
	if r.exitErr != nil {
		fmt.Fprintf(w, "  exit            FAILED after SIGTERM: %v\n", r.exitErr)
	} else {
		fmt.Fprintln(w, "  exit            status 0 after SIGTERM: OK")
	}
}

// mountSummary prints one row per follow mode.
func mountSummary(w io.Writer, rs []*mountResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "follow\tfshealth follows with\tn\tp50 ms\tp90 ms\tp99 ms\tmax ms\tfirst ms\tmount(2) p50 ms\tunmount→dropped p50 ms\tchecks\t")
	for _, r := range rs {
		checks := "OK"
		if !r.ok() {
			checks = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.mode, r.reported, len(r.lat),
			msd(percentile(r.lat, 50)), msd(percentile(r.lat, 90)), msd(percentile(r.lat, 99)), msd(percentile(r.lat, 100)),
			msd(r.first), msd(percentile(r.sys, 50)), msd(percentile(r.drop, 50)), checks)
	}
	tw.Flush()
}

// msd formats a duration in milliseconds with three decimals.
func msd(d time.Duration) string { return ms(d.Seconds()) }

func msPcts(ds []time.Duration) string {
	return fmt.Sprintf("p50 %s ms  p90 %s ms  p99 %s ms  max %s ms",
		msd(percentile(ds, 50)), msd(percentile(ds, 90)), msd(percentile(ds, 99)), msd(percentile(ds, 100)))
}

// stampedLine is one line a child wrote, and when the bench read it.
type stampedLine struct {
	line []byte
	at   time.Time
}

// readStamped reads r until it ends and sends every complete line on ch,
// stamped with the time the read(2) that completed it returned. It also
// copies what it reads to copyTo, if not nil. It closes ch when r ends, and
// returns early when stop is closed.
func readStamped(r io.Reader, ch chan<- stampedLine, stop <-chan struct{}, copyTo io.Writer) {
	defer close(ch)
	buf := make([]byte, 64<<10)
	var part []byte
	for {
		n, err := r.Read(buf)
		at := time.Now()
		if n > 0 && copyTo != nil {
			copyTo.Write(buf[:n])
		}
		data := buf[:n]
		for {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				part = append(part, data...)
				break
			}
			line := append(part, data[:i]...)
			part = nil
			data = data[i+1:]
			select {
			case ch <- stampedLine{line, at}:
			case <-stop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// logLine holds the fields of one line of fshealth's log (slog text) that
// mount-latency looks at.
type logLine struct {
	level, msg, device, mountpoints, with, source, mountpoint, reason string
}

func parseLogLine(b []byte) logLine {
	f := logFields(b, "level", "msg", "device", "mountpoints", "with", "source", "mountpoint", "reason")
	return logLine{level: f["level"], msg: f["msg"], device: f["device"], mountpoints: f["mountpoints"],
		with: f["with"], source: f["source"], mountpoint: f["mountpoint"], reason: f["reason"]}
}

// watching says whether the line is fshealth's "watching file system" for
// device dev mounted on mp.
func (l logLine) watching(dev, mp string) bool {
	return l.msg == "watching file system" && l.device == dev && hasMountpoint(l.mountpoints, mp)
}

// dropped says whether the line says device dev is no longer watched
// because it is no longer mounted.
func (l logLine) dropped(dev string) bool {
	return strings.HasPrefix(l.msg, "file system no longer mounted") && l.device == dev
}

// cannotWatch says whether the line says the file system of dev (mounted on
// mp) cannot be watched.
func (l logLine) cannotWatch(dev, mp string) bool {
	return strings.HasPrefix(l.msg, "cannot watch file system") && (l.source == dev || l.mountpoint == mp || l.device == dev)
}

// followMode returns how fshealth follows mounts from its "following mounts"
// line: "fanotify", "mountinfo", or "" if the line is not that one.
func (l logLine) followMode() string {
	if l.msg != "following mounts" {
		return ""
	}
	switch {
	case strings.Contains(l.with, "FAN_MNT_ATTACH"):
		return "fanotify"
	case strings.Contains(l.with, "mountinfo"):
		return "mountinfo"
	}
	return "unknown"
}

// isWarning says whether the line is logged at level WARN or ERROR.
func (l logLine) isWarning() bool { return l.level == "WARN" || l.level == "ERROR" }

// hasMountpoint says whether the slog rendering of a []string, "[/a /b]",
// holds mp. (Mount points with spaces are not told apart; the bench's have
// none.)
func hasMountpoint(rendered, mp string) bool {
	for _, p := range strings.Fields(strings.TrimSuffix(strings.TrimPrefix(rendered, "["), "]")) {
		if p == mp {
			return true
		}
	}
	return false
}

// mountEvent is what the bench checks in the NDJSON line of a verification
// error.
type mountEvent struct {
	Kind        string   `json:"kind"`
	Errno       int      `json:"errno"`
	Device      string   `json:"device"`
	Mountpoints []string `json:"mountpoints"`
}

// watchProc is a running `fshealth watch --json`.
type watchProc struct {
	cmd     *exec.Cmd
	pid     int
	exited  chan struct{}
	waitErr error
	logs    chan stampedLine // its stderr
	out     chan stampedLine // its stdout
	stderr  *tailWriter      // the last lines of its stderr
	res     *mountResult     // where warnings go
}

// startWatch starts `fshealth watch --json` (under the seccomp wrapper for
// -follow mountinfo) in its own process group, with a parent-death signal,
// and returns once it logged that it is ready. The caller must call kill.
func startWatch(ctx context.Context, fsh, mode string, res *mountResult, stop <-chan struct{}) (*watchProc, error) {
	path, args := fsh, []string{"watch", "--json"}
	env := childEnv()
	if mode == followMountinfo {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		path, args = exe, append([]string{fsh}, args...)
		env = append(env, noMountEventsEnv+"=1")
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	p := &watchProc{
		exited: make(chan struct{}),
		logs:   make(chan stampedLine, 256),
		out:    make(chan stampedLine, 256),
		stderr: &tailWriter{out: io.Discard},
		res:    res,
	}
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	// Own process group: a terminal's SIGINT goes to the bench only, which
	// then cleans up; Pdeathsig: fshealth dies with the bench.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = p.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("starting %s: %w", path, err)
	}
	p.pid = p.cmd.Process.Pid
	res.pid = p.pid
	// Each reader closes its pipe once it ended (EOF after fshealth exits)
	// or the bench stopped listening.
	go func() { readStamped(outR, p.out, stop, nil); outR.Close() }()
	go func() { readStamped(errR, p.logs, stop, p.stderr); errR.Close() }()
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	stopKill := context.AfterFunc(ctx, p.kill)
	_, err = p.waitLog(ctx, readyTimeout, "\"ready\" log line", func(l logLine) (bool, error) {
		if m := l.followMode(); m != "" {
			res.reported, res.with = m, l.with
		}
		return l.msg == "ready", nil
	})
	if err != nil {
		stopKill()
		p.kill()
		return nil, err
	}
	go func() {
		<-p.exited
		stopKill()
	}()
	return p, nil
}

// kill kills fshealth (and anything it started: its process group) and
// waits for it.
func (p *watchProc) kill() {
	syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and returns nil if fshealth exits with status 0.
func (p *watchProc) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited before SIGTERM (%v)%s", p.waitErr, p.stderr.tail())
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(stopTimeout):
		p.kill()
		return fmt.Errorf("did not exit within %v of SIGTERM; killed", stopTimeout)
	}
	if p.waitErr != nil {
		return fmt.Errorf("%w%s", p.waitErr, p.stderr.tail())
	}
	return nil
}

// note records a warning fshealth logged and shows it.
func (p *watchProc) note(l logLine, line []byte) {
	if !l.isWarning() {
		return
	}
	p.res.nWarn++
	if len(p.res.warnings) < 5 {
		p.res.warnings = append(p.res.warnings, string(line))
	}
	fmt.Fprintf(os.Stderr, "  [fshealth] %s\n", line)
}

// waitLog reads fshealth's log until match says done, and returns when the
// bench read that line. It fails after timeout, when fshealth exits, when
// match fails or ctx is cancelled.
func (p *watchProc) waitLog(ctx context.Context, timeout time.Duration, what string, match func(logLine) (bool, error)) (time.Time, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case s, ok := <-p.logs:
			if !ok {
				return time.Time{}, fmt.Errorf("waiting for the %s: fshealth's stderr ended: %w", what, p.exitError())
			}
			l := parseLogLine(s.line)
			p.note(l, s.line)
			done, err := match(l)
			if err != nil {
				return time.Time{}, fmt.Errorf("%w%s", err, p.stderr.tail())
			}
			if done {
				return s.at, nil
			}
		case <-timer.C:
			return time.Time{}, fmt.Errorf("no %s within %v%s", what, timeout, p.stderr.tail())
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitEvent reads fshealth's NDJSON output until the event of an error on
// device dev mounted on mp. Other lines are unexpected and recorded.
func (p *watchProc) waitEvent(ctx context.Context, timeout time.Duration, dev, mp string) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case s, ok := <-p.out:
			if !ok {
				return fmt.Errorf("waiting for the event on %s: fshealth's stdout ended: %w", dev, p.exitError())
			}
			var ev mountEvent
			if err := json.Unmarshal(s.line, &ev); err != nil {
				return fmt.Errorf("not JSON (%v): %q", err, s.line)
			}
			if ev.Kind == "error" && ev.Errno == int(unix.EUCLEAN) && ev.Device == dev {
				for _, m := range ev.Mountpoints {
					if m == mp {
						return nil
					}
				}
				return fmt.Errorf("the event on %s does not name its mount point %s: %s", dev, mp, s.line)
			}
			p.res.unexpected = append(p.res.unexpected, string(s.line))
		case <-timer.C:
			return fmt.Errorf("no event within %v of an error raised on %s after fshealth logged it watches it%s", timeout, dev, p.stderr.tail())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// drain handles what fshealth wrote since the last wait: warnings are
// recorded, output lines are unexpected.
func (p *watchProc) drain() {
	for {
		select {
		case s, ok := <-p.logs:
			if !ok {
				return
			}
			p.note(parseLogLine(s.line), s.line)
		case s, ok := <-p.out:
			if !ok {
				return
			}
			p.res.unexpected = append(p.res.unexpected, string(s.line))
		default:
			return
		}
	}
}

// exitError describes how fshealth exited, waiting a moment for it.
func (p *watchProc) exitError() error {
	select {
	case <-p.exited:
		return fmt.Errorf("fshealth exited (%v)%s", p.waitErr, p.stderr.tail())
	case <-time.After(100 * time.Millisecond):
		return fmt.Errorf("fshealth is still running%s", p.stderr.tail())
	}
}

// measureMounts measures one follow mode: it prepares the images, starts
// fshealth, mounts, verifies and unmounts each image in turn, and stops
// fshealth. Everything is removed on every path.
func measureMounts(ctx context.Context, opt *options, dir, fsh, mode string) (res *mountResult, err error) {
	res = &mountResult{mode: mode, images: opt.fsCount}
	ims, err := prepareImages(ctx, dir, opt.fsCount, opt.size)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := closeImages(ims); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up: %w", cerr))
		}
	}()

	stop := make(chan struct{})
	defer close(stop)
	p, err := startWatch(ctx, fsh, mode, res, stop)
	if err != nil {
		return nil, err
	}
	defer p.kill()
	switch {
	case res.reported == "":
		return nil, fmt.Errorf("fshealth did not log that it follows mounts%s", p.stderr.tail())
	case mode == followMountinfo && res.reported != followMountinfo:
		return nil, fmt.Errorf("under a seccomp filter refusing FAN_REPORT_MNT, fshealth still follows mounts with %q", res.with)
	}

	total := opt.warmup + opt.n
	res.lat = make([]time.Duration, 0, opt.n)
	for i := 0; i < total; i++ {
		m := ims[i%len(ims)]
		p.drain()
		t0 := time.Now()
		err := m.mount()
		t1 := time.Now()
		if err != nil {
			return nil, fmt.Errorf("mount #%d: %w", i+1, err)
		}
		at, err := p.waitLog(ctx, opt.timeout, fmt.Sprintf("\"watching file system\" line for %s (mount #%d)", m.dev, i+1), func(l logLine) (bool, error) {
			if l.cannotWatch(m.dev, m.mp) {
				return false, fmt.Errorf("fshealth cannot watch %s (mount #%d): %s", m.dev, i+1, l.reason)
			}
			return l.watching(m.dev, m.mp), nil
		})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			res.first = at.Sub(t0)
		}
		if i >= opt.warmup {
			res.lat = append(res.lat, at.Sub(t0))
			res.sys = append(res.sys, t1.Sub(t0))
			res.after = append(res.after, at.Sub(t1))
			if at.Sub(t0) > res.slowest {
				res.slowestN, res.slowest, res.slowSys, res.slowAfter = i+1, at.Sub(t0), t1.Sub(t0), at.Sub(t1)
			}
		}

		// Not timed: the mark fshealth has placed works.
		if err := m.triggerError(); err != nil {
			return nil, fmt.Errorf("mount #%d: %w", i+1, err)
		}
		if err := p.waitEvent(ctx, opt.timeout, m.dev, m.mp); err != nil {
			return nil, fmt.Errorf("mount #%d: %w", i+1, err)
		}
		if i >= opt.warmup {
			res.verified++
		}

		// Unmount, and wait until fshealth has noticed, so the next
		// mount finds it idle.
		u0 := time.Now()
		if err := m.unmount(); err != nil {
			return nil, fmt.Errorf("mount #%d: %w", i+1, err)
		}
		at, err = p.waitLog(ctx, opt.timeout, fmt.Sprintf("\"no longer mounted\" line for %s (mount #%d)", m.dev, i+1), func(l logLine) (bool, error) {
			return l.dropped(m.dev), nil
		})
		if err != nil {
			return nil, err
		}
		if i >= opt.warmup {
			res.drop = append(res.drop, at.Sub(u0))
		}
	}
	for _, ds := range [][]time.Duration{res.lat, res.sys, res.after, res.drop} {
		sortDurations(ds)
	}
	p.drain()
	res.exitErr = p.stop()
	// What it wrote before exiting.
	for s := range p.out {
		res.unexpected = append(res.unexpected, string(s.line))
	}
	return res, nil
}

// refuseMountEvents installs, on the calling thread, a seccomp filter that
// makes fanotify_init(2) fail with EINVAL when its flags hold FAN_REPORT_MNT,
// which is what kernels before 6.15 answer. Every other system call is
// allowed. The filter stays across execve(2) of that thread.
func refuseMountEvents() error {
	var arch uint32
	switch runtime.GOARCH {
	case "amd64":
		arch = unix.AUDIT_ARCH_X86_64
	case "arm64":
		arch = unix.AUDIT_ARCH_AARCH64
	default:
		return fmt.Errorf("the seccomp filter for -follow mountinfo is written for amd64 and arm64, not %s", runtime.GOARCH)
	}
	// Offsets in struct seccomp_data: int nr; __u32 arch; __u64
	// instruction_pointer; __u64 args[6]. Both architectures are little
	// endian: the low half of args[0] (fanotify_init's flags) is at 16.
	const (
		offNR    = 0
		offArch  = 4
		offFlags = 16
		ld       = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq      = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset     = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret      = unix.BPF_RET | unix.BPF_K
	)
	prog := []unix.SockFilter{
		/* 0 */ {Code: ld, K: offArch},
		/* 1 */ {Code: jeq, K: arch, Jf: 5}, // another ABI: allow
		/* 2 */ {Code: ld, K: offNR},
		/* 3 */ {Code: jeq, K: uint32(unix.SYS_FANOTIFY_INIT), Jf: 3},
		/* 4 */ {Code: ld, K: offFlags},
		/* 5 */ {Code: jset, K: unix.FAN_REPORT_MNT, Jf: 1},
		/* 6 */ {Code: ret, K: unix.SECCOMP_RET_ERRNO | uint32(unix.EINVAL)},
		/* 7 */ {Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_SECCOMP): %w", err)
	}
	runtime.KeepAlive(prog)
	return nil
}

// runNoMountEventsExec is main for the seccomp exec wrapper: it never
// returns on success.
func runNoMountEventsExec(args []string) int {
	if len(args) < 1 {
		fmt.Fprintf(os.Stderr, "fshealth-bench: $%s set but no program to run\n", noMountEventsEnv)
		return 2
	}
	runtime.LockOSThread() // the filter is the thread's: exec from it
	if err := refuseMountEvents(); err != nil {
		fmt.Fprintf(os.Stderr, "fshealth-bench: %v\n", err)
		return 1
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, noMountEventsEnv+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec(args[0], args, env)
	fmt.Fprintf(os.Stderr, "fshealth-bench: exec %s: %v\n", filepath.Base(args[0]), err)
	return 1
}
