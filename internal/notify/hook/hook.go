// Package hook delivers alerts to hook programs: every executable in a
// directory, run directly (never through a shell) with the alert as JSON on
// stdin and as FSHEALTH_* environment variables.
//
// Hook authors, note: the variables hold file system data verbatim — a file
// name may contain newlines, quotes, "$(...)" or anything but NUL — so a
// shell hook must always quote them ("$FSHEALTH_PATH", never $FSHEALTH_PATH,
// and never eval them). The JSON on stdin is the exact alert, including
// every mount point.
//
// Each hook runs in a cgroup v2 of its own (package cgroup) and its own
// process group, with a minimal environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin,
// LANG=C.UTF-8, plus Config.Env), "/" as its working directory and,
// optionally, an unprivileged user (Config.User). A hook that does not
// finish within the timeout is killed with everything it started; whatever
// it leaves running when it exits is killed too, even processes that left
// its process group (setsid), so a hook cannot pile up background
// processes. Without a usable cgroup v2 only the process group is killed.
// Its stdout and stderr (the first 64 KiB of each) are logged line by line
// once it ends.
//
// A hook is only run when it, the hooks directory and every directory
// above them belong to root (or the daemon's user) and nobody else can
// write them (see trust.CheckProgram).
package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
	"github.com/fshealth/fshealth/internal/trust"
)

// Defaults.
const (
	// DefaultTimeout bounds each hook's run.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxConcurrent caps the hook processes running at once.
	DefaultMaxConcurrent = 4
	// MaxOutput is how much of a hook's stdout, and of its stderr, is kept.
	MaxOutput = 64 << 10
	// BasePath is the PATH hooks run with.
	BasePath = "/usr/sbin:/usr/bin:/sbin:/bin"
)

// pipeGrace is how long output is still read after a hook's process group
// has been killed, in case a process that left the group holds the pipes.
const pipeGrace = 2 * time.Second

// Config configures the hook channel.
type Config struct {
	// Name is the channel's name from the configuration; "hooks" if empty.
	Name string
	// Dir holds the hooks. It is read again at every Send: every
	// executable regular file (or symbolic link to one) is run, in name
	// order, except dot files, backups and package manager leftovers
	// (names ending in "~", ".bak", ".orig", ".swp", ".rpmnew", ".rpmsave"
	// or containing ".dpkg-" or ".ucf-"). A missing directory means no
	// hooks.
	Dir string
	// Timeout bounds each hook's run; DefaultTimeout if zero.
	Timeout time.Duration
	// MaxConcurrent caps the hook processes running at once across all
	// Sends; DefaultMaxConcurrent if zero.
	MaxConcurrent int
	// Logger receives the hooks' output and outcomes; slog.Default() if nil.
	Logger *slog.Logger
	// Env holds extra "NAME=value" variables for every hook. They may
	// override PATH and LANG but not FSHEALTH_* variables.
	Env []string
	// User, if set, is the user (name or id) hooks run as instead of the
	// daemon's; Group, if set, replaces the user's primary group.
	User, Group string
	// Isolation is IsolationAuto (the default if empty), IsolationUnit or
	// IsolationCgroup: see unit.go.
	Isolation string
}

// Notifier is the hook channel. It implements alert.Notifier and is safe for
// concurrent use.
type Notifier struct {
	name    string
	dir     string
	timeout time.Duration
	sem     chan struct{}
	log     *slog.Logger
	env     []string
	cred    *syscall.Credential
	// user and group are Config.User and Config.Group, for units.
	user, group string
	// isolation is Config.Isolation.
	isolation string
	// noCgroup logs once that hooks run without a cgroup; noUnitOnce
	// that they run without a unit although systemd is PID 1.
	noCgroup   sync.Once
	noUnitOnce sync.Once
	// noClone3 logs once that clone3 is refused.
	noClone3 sync.Once
}

// Notifier is an alert.Notifier.
var _ alert.Notifier = (*Notifier)(nil)

// New checks cfg and returns the channel. The directory need not exist yet.
func New(cfg Config) (*Notifier, error) {
	if cfg.Name == "" {
		cfg.Name = "hooks"
	}
	fail := func(format string, args ...any) (*Notifier, error) {
		return nil, fmt.Errorf("hooks %q: %s", cfg.Name, fmt.Sprintf(format, args...))
	}
	if cfg.Dir == "" {
		return fail("no directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return fail("directory: %v", err)
	}
	cfg.Dir = dir
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Timeout < 0 {
		return fail("timeout must not be negative")
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxConcurrent < 0 {
		return fail("max_concurrent must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	env := []string{"PATH=" + BasePath, "LANG=C.UTF-8"}
	for _, kv := range cfg.Env {
		k, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok || !validEnvName(k):
			return fail("environment entry %s is not NAME=value", event.Safe(kv))
		case strings.HasPrefix(k, "FSHEALTH_"):
			return fail("environment variable %s is reserved", k)
		case strings.IndexByte(kv, 0) >= 0:
			return fail("environment variable %s contains a NUL byte", k)
		}
		env = setEnv(env, kv)
	}
	cred, err := Credential(cfg.User, cfg.Group)
	if err != nil {
		return fail("%v", err)
	}
	switch cfg.Isolation {
	case "":
		cfg.Isolation = IsolationAuto
	case IsolationAuto, IsolationUnit, IsolationCgroup:
	default:
		return fail("isolation must be %q, %q or %q: %q", IsolationAuto, IsolationUnit, IsolationCgroup, cfg.Isolation)
	}
	return &Notifier{
		user:      cfg.User,
		group:     cfg.Group,
		isolation: cfg.Isolation,
		cred:      cred,
		name:      cfg.Name,
		dir:       cfg.Dir,
		timeout:   cfg.Timeout,
		sem:       make(chan struct{}, cfg.MaxConcurrent),
		log:       cfg.Logger.With("channel", cfg.Name),
		env:       env,
	}, nil
}

// Name returns the channel's name.
func (n *Notifier) Name() string { return n.name }

// Hook is one hook program found in the directory.
type Hook struct {
	// Name is the file's name.
	Name string
	// Path is the file's path.
	Path string
	// Problem, if not empty, says why the hook is refused (for example,
	// it is writable by anyone); such a hook counts as failed.
	Problem string
}

// Hooks lists the hooks the next Send would run, in order. A missing
// directory has none; a directory that others than root (or the daemon's
// user) can change is an error (see trust.CheckProgram).
func (n *Notifier) Hooks() ([]Hook, error) {
	entries, err := os.ReadDir(n.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hooks %q: %v", n.name, err)
	}
	if err := trust.Check(n.dir, nil); err != nil {
		return nil, fmt.Errorf("hooks %q: refusing to run hooks: %s", n.name, event.Clean(err.Error()))
	}
	var hooks []Hook
	for _, e := range entries { // sorted by name
		name := e.Name()
		if Skipped(name) {
			continue
		}
		path := filepath.Join(n.dir, name)
		fi, err := os.Stat(path) // follows symbolic links
		if err != nil {
			n.log.Warn("skipping hook", "hook", event.Safe(name), "error", err)
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if fi.Mode().Perm()&0o111 == 0 {
			n.log.Debug("skipping non-executable file in the hooks directory", "hook", event.Safe(name))
			continue
		}
		h := Hook{Name: name, Path: path}
		if err := trust.CheckProgram(path); err != nil {
			h.Problem = "refusing to run it: " + event.Clean(err.Error())
		}
		hooks = append(hooks, h)
	}
	return hooks, nil
}

// Skipped reports whether a file called name in the hooks directory is
// ignored whatever its mode: dot files, editor backups and package manager
// leftovers.
func Skipped(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
		return true
	}
	for _, s := range []string{".bak", ".orig", ".swp", ".tmp", ".rpmnew", ".rpmsave", ".rpmorig"} {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return strings.Contains(name, ".dpkg-") || strings.Contains(name, ".ucf-")
}

// AttemptTimeout returns how long running every hook of the directory,
// one after the other, may take: the per-hook timeout for each, plus one
// for the wait for a free slot, plus alert.AttemptMargin.
func (n *Notifier) AttemptTimeout() time.Duration {
	hooks, _ := n.Hooks()
	return time.Duration(len(hooks)+1)*n.timeout + alert.AttemptMargin
}

// Send runs every hook for a, one after the other in name order, each
// waiting for a free slot when MaxConcurrent hooks are already running. It
// returns nil when every hook exited with status 0, or when there are no
// hooks; otherwise an error naming each hook that failed (non-zero exit,
// killed, timed out, could not start) and why. Every hook is run even when
// an earlier one failed; a later retry runs them all again, so hooks should
// de-duplicate on FSHEALTH_ALERT_ID where running twice matters.
func (n *Notifier) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return fmt.Errorf("hooks %q: no alert", n.name)
	}
	hooks, err := n.Hooks()
	if err != nil {
		return err
	}
	if len(hooks) == 0 {
		n.log.Debug("no hooks to run", "dir", n.dir, "alert_id", a.ID)
		return nil
	}
	stdin, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("hooks %q: encoding the alert: %v", n.name, err)
	}
	stdin = append(stdin, '\n')
	env := append(append([]string(nil), n.env...), Environment(a)...)

	var failed []string
	for _, h := range hooks {
		if h.Problem != "" {
			n.log.Warn("hook failed", "hook", event.Safe(h.Name), "alert_id", a.ID, "error", h.Problem)
			failed = append(failed, event.Safe(h.Name)+": "+h.Problem)
			continue
		}
		if err := n.run(ctx, h, stdin, env, a.ID); err != nil {
			failed = append(failed, event.Safe(h.Name)+": "+err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("hooks %q: %d of %d hooks failed: %s", n.name, len(failed), len(hooks), strings.Join(failed, "; "))
	}
	return nil
}

// run runs one hook and logs its output and outcome. The error says why the
// hook failed, without its name.
func (n *Notifier) run(ctx context.Context, h Hook, stdin []byte, env []string, alertID string) error {
	log := n.log.With("hook", event.Safe(h.Name), "alert_id", alertID)
	notRun := func() error {
		err := fmt.Errorf("not run: %v", context.Cause(ctx))
		log.Warn("hook failed", "error", err)
		return err
	}
	if ctx.Err() != nil {
		return notRun()
	}
	select {
	case n.sem <- struct{}{}:
	case <-ctx.Done():
		return notRun()
	}
	defer func() { <-n.sem }()

	start := time.Now()
	res := n.execute(ctx, h.Path, stdin, env)
	took := time.Since(start)
	res.stdout.log(log, "stdout", slog.LevelInfo)
	res.stderr.log(log, "stderr", slog.LevelWarn)
	if res.err != nil {
		log.Warn("hook failed", "error", res.err, "duration", took.Round(time.Millisecond))
		return res.err
	}
	log.Info("hook ran", "duration", took.Round(time.Millisecond))
	return nil
}

// result is the outcome of one hook run.
type result struct {
	stdout, stderr *capture
	err            error
}

// execute runs the program at path in its own process group and returns
// its output and, if it failed, why.
func (n *Notifier) execute(ctx context.Context, path string, stdin []byte, env []string) (res result) {
	res.stdout, res.stderr = &capture{}, &capture{}
	in, err := memfile(stdin)
	if err != nil {
		res.err = fmt.Errorf("cannot start: %v", err)
		return res
	}
	defer in.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		res.err = fmt.Errorf("cannot start: %v", err)
		return res
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		res.err = fmt.Errorf("cannot start: %v", err)
		return res
	}
	defer errR.Close()

	if n.useUnit() {
		err := n.executeUnit(ctx, path, in, outR, outW, errR, errW, env, &res)
		var nu *errNoUnit
		if !errors.As(err, &nu) {
			return res
		}
		if n.isolation == IsolationUnit {
			outW.Close()
			errW.Close()
			res.err = fmt.Errorf("cannot start: %v", err)
			return res
		}
		n.noUnit(err)
	}

	attr := &syscall.SysProcAttr{Setpgid: true, Credential: n.cred}
	cg := n.groupFor()
	if created := cg; created != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, cg.FD()
		defer func() {
			if err := created.Remove(cgroupRemoveTimeout); err != nil {
				n.log.Warn("hook's cgroup not removed", "error", err)
			}
		}()
	}
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{Path: path, Args: []string{path}, Env: env, Dir: "/", Stdin: in, Stdout: outW, Stderr: errW, SysProcAttr: attr}
	}
	cmd := newCmd()
	err = cmd.Start()
	if err != nil && cg != nil && errors.Is(err, syscall.ENOSYS) {
		// Starting a process in a cgroup takes clone3(2), which a
		// systemd unit with RestrictNamespaces= refuses (ENOSYS): the
		// hook gets its process group only.
		n.noClone3.Do(func() {
			n.log.Warn("hooks run without a cgroup of their own: clone3 is refused (a systemd unit's RestrictNamespaces=); only their process group is killed, so descendants that leave it (setsid, daemons) are not contained; isolation = \"unit\" contains them")
		})
		cg, attr.UseCgroupFD = nil, false
		cmd = newCmd()
		err = cmd.Start()
	}
	outW.Close()
	errW.Close()
	if err != nil {
		res.err = fmt.Errorf("cannot start: %v", startError(err, path))
		return res
	}
	pgid := cmd.Process.Pid // Setpgid: the group is the hook's pid

	readers := make(chan struct{}, 2)
	go func() { res.stdout.readFrom(outR); readers <- struct{}{} }()
	go func() { res.stderr.readFrom(errR); readers <- struct{}{} }()

	hctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	exited := make(chan struct{})
	killed := make(chan bool, 1)
	cannotKill := false
	go func() {
		select {
		case <-hctx.Done():
			// The hook has not been reaped (waitid below does not reap),
			// so its pid still names its process group.
			err := unix.Kill(-pgid, unix.SIGKILL)
			if cg != nil {
				_ = cg.Kill()
			} else if err == unix.EPERM {
				cannotKill = true // read after <-killed
				n.log.Error("cannot kill a hook that timed out: killing a hook that runs as another user without a cgroup needs CAP_KILL")
			}
			killed <- true
		case <-exited:
			killed <- false
		}
	}()
	waitExited(pgid)
	close(exited)
	timedOut := <-killed
	// Kill whatever the hook left running in its group, while the hook
	// itself, a zombie until Wait, keeps the group id from being reused;
	// and whatever it left in its cgroup, wherever its process group.
	_ = unix.Kill(-pgid, unix.SIGKILL)
	if cg != nil {
		_ = cg.Kill()
	}
	werr := cmd.Wait()

	// The group is dead, so the pipes reach EOF at once unless a process
	// that left the group holds them.
	deadline := time.Now().Add(pipeGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	<-readers
	<-readers

	killedWhat := "its process group was killed"
	switch {
	case cg != nil:
		killedWhat = "it was killed with everything it started"
	case cannotKill:
		killedWhat = "it could not be killed (CAP_KILL is missing) and ran to its end"
	}
	switch {
	case timedOut && ctx.Err() != nil:
		res.err = fmt.Errorf("interrupted (%v); %s", context.Cause(ctx), killedWhat)
	case timedOut:
		res.err = fmt.Errorf("timed out after %s; %s", n.timeout, killedWhat)
	case werr != nil:
		res.err = exitError(werr)
	}
	if res.err != nil {
		if last := res.stderr.lastLine(); last != "" {
			res.err = fmt.Errorf("%w (stderr: %s)", res.err, last)
		}
	}
	return res
}

// waitExited blocks until the process pid has exited, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// memfile returns a sealed in-memory file holding b, positioned at its
// start, for a hook's stdin: the hook can read it at its own pace, or not
// at all, without anything blocking.
func memfile(b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("fshealth-alert", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %v", err)
	}
	f := os.NewFile(uintptr(fd), "fshealth-alert")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, err
	}
	// Read-only from here on, so one hook cannot change what it saw.
	_, _ = unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)
	return f, nil
}

// startError shortens exec's errors, which repeat the path, and explains
// ENOENT for a file that exists.
func startError(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, unix.ENOENT) {
		if _, serr := os.Stat(path); serr == nil {
			return fmt.Errorf("%v (is the interpreter on its #! line missing?)", err)
		}
	}
	return err
}

// exitError describes how a hook ended.
func exitError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("killed by signal %s", unix.SignalName(ws.Signal()))
		}
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return err
}

// capture keeps the first MaxOutput bytes of a stream and counts the rest.
type capture struct {
	buf     []byte
	dropped int64
}

// readFrom reads f to its end (or read deadline), keeping what fits.
func (c *capture) readFrom(f *os.File) {
	b := make([]byte, 16<<10)
	for {
		n, err := f.Read(b)
		if keep := min(n, MaxOutput-len(c.buf)); keep > 0 {
			c.buf = append(c.buf, b[:keep]...)
			c.dropped += int64(n - keep)
		} else {
			c.dropped += int64(n)
		}
		if err != nil {
			return
		}
	}
}

// lines returns the captured output as sanitized lines.
func (c *capture) lines() []string {
	s := strings.TrimRight(string(c.buf), "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = event.Clean(strings.ToValidUTF8(strings.TrimSuffix(l, "\r"), "\uFFFD"))
	}
	return lines
}

// lastLine returns the last non-empty line, sanitized and shortened, for
// error messages.
func (c *capture) lastLine() string {
	lines := c.lines()
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 200 {
				l = strings.ToValidUTF8(l[:200], "") + "…"
			}
			return strconv.Quote(l)
		}
	}
	return ""
}

// log logs each captured line, then notes any truncation.
func (c *capture) log(log *slog.Logger, stream string, level slog.Level) {
	for _, l := range c.lines() {
		log.Log(context.Background(), level, "hook output", "stream", stream, "line", l)
	}
	if c.dropped > 0 {
		log.Warn("hook output truncated", "stream", stream, "kept_bytes", len(c.buf), "dropped_bytes", c.dropped)
	}
}

// Environment returns the FSHEALTH_* variables describing a, as
// "NAME=value" strings. Every variable is always set, empty when unknown;
// values are verbatim except that NUL bytes, which cannot be passed, become
// U+FFFD.
//
//	FSHEALTH_ALERT_ID     the alert's id (de-duplicate on it)
//	FSHEALTH_ALERT_TYPE   error, digest, reminder, resolved or test
//	FSHEALTH_SEVERITY     critical, warning or info
//	FSHEALTH_RULE         the policy rule that matched
//	FSHEALTH_HOST         the host name
//	FSHEALTH_SUMMARY      one line
//	FSHEALTH_TIME         when the alert was raised (RFC 3339)
//	FSHEALTH_SINCE        when the incident (or a digest's run) began
//	FSHEALTH_EVENT_ID     the id of the event that raised the alert
//	FSHEALTH_ERRNO        its error number, e.g. 117
//	FSHEALTH_ERROR        the error's name, e.g. EUCLEAN
//	FSHEALTH_ERROR_COUNT  the number of errors the alert covers
//	FSHEALTH_DEVICE       the device, e.g. /dev/sda1
//	FSHEALTH_FSTYPE       the file system type, e.g. ext4
//	FSHEALTH_UUID         the file system UUID
//	FSHEALTH_LABEL        the file system label
//	FSHEALTH_MOUNTPOINT   the first mount point
//	FSHEALTH_MOUNTPOINTS  every mount point, one per line (use the JSON on
//	                      stdin when a mount point may contain a newline)
//	FSHEALTH_INODE        the inode the error is about
//	FSHEALTH_PATH         the inode's path
//	FSHEALTH_SOURCE       where the event came from: fanotify, kmsg,
//	                      btrfs-counters or recorded
//	FSHEALTH_KERNEL_MESSAGE the kernel's log message about the error
//	FSHEALTH_STORAGE      the storage under the file system in one line,
//	                      e.g. `LV vgA/data (dm-1) → sda2 → sda "ATA FOO"
//	                      serial S123` (the JSON on stdin has every field)
//	FSHEALTH_DISKS        the device nodes of the disks at the bottom of
//	                      it, one per line, e.g. /dev/sda
//	FSHEALTH_TEST         1 for `fshealth test-alert`, else empty
func Environment(a *alert.Alert) []string {
	fsys := a.Filesystem
	ev := a.Event
	if ev == nil {
		ev = &event.Event{}
	}
	device, fstype, uuid, label, mps := fsys.Device, fsys.FSType, fsys.UUID, fsys.Label, fsys.Mountpoints
	if device == "" {
		device = ev.Device
	}
	if fstype == "" {
		fstype = ev.FSType
	}
	if uuid == "" {
		uuid = ev.UUID
	}
	if label == "" {
		label = ev.Label
	}
	if len(mps) == 0 {
		mps = ev.Mountpoints
	}
	errName := a.ErrorKind
	if errName == "" {
		errName = ev.Error
	}
	var errno, inode, mp, test string
	if a.Event != nil && a.Event.Kind != event.KindOverflow {
		errno = strconv.Itoa(ev.Errno)
	}
	if ev.Inode != nil {
		inode = strconv.FormatUint(*ev.Inode, 10)
	}
	if len(mps) > 0 {
		mp = mps[0]
	}
	if a.Test {
		test = "1"
	}
	vars := [][2]string{
		{"FSHEALTH_ALERT_ID", a.ID},
		{"FSHEALTH_ALERT_TYPE", a.Type},
		{"FSHEALTH_SEVERITY", a.Severity},
		{"FSHEALTH_RULE", a.Rule},
		{"FSHEALTH_HOST", a.Host},
		{"FSHEALTH_SUMMARY", a.Summary},
		{"FSHEALTH_TIME", formatTime(a.Time)},
		{"FSHEALTH_SINCE", formatTime(a.Since)},
		{"FSHEALTH_EVENT_ID", ev.ID},
		{"FSHEALTH_ERRNO", errno},
		{"FSHEALTH_ERROR", errName},
		{"FSHEALTH_ERROR_COUNT", strconv.FormatUint(a.Count, 10)},
		{"FSHEALTH_DEVICE", device},
		{"FSHEALTH_FSTYPE", fstype},
		{"FSHEALTH_UUID", uuid},
		{"FSHEALTH_LABEL", label},
		{"FSHEALTH_MOUNTPOINT", mp},
		{"FSHEALTH_MOUNTPOINTS", strings.Join(mps, "\n")},
		{"FSHEALTH_INODE", inode},
		{"FSHEALTH_PATH", ev.Path},
		{"FSHEALTH_SOURCE", ev.Source},
		{"FSHEALTH_KERNEL_MESSAGE", ev.KernelMessage},
		{"FSHEALTH_STORAGE", event.StorageText(ev.Storage)},
		{"FSHEALTH_DISKS", diskNodes(ev.Storage)},
		{"FSHEALTH_TEST", test},
	}
	env := make([]string, len(vars))
	for i, v := range vars {
		env[i] = v[0] + "=" + strings.ReplaceAll(v[1], "\x00", "\uFFFD")
	}
	return env
}

// diskNodes lists the device nodes of the disks of a storage stack, one
// per line.
func diskNodes(stack []storage.Layer) string {
	var nodes []string
	for _, d := range storage.Disks(stack) {
		nodes = append(nodes, d.Node)
	}
	return strings.Join(nodes, "\n")
}

// formatTime formats t as RFC 3339, or returns "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// setEnv sets kv in env, replacing an entry with the same name.
func setEnv(env []string, kv string) []string {
	k, _, _ := strings.Cut(kv, "=")
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}
