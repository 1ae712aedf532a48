// Package actions runs fshealth's recovery actions against a file system
// that reported errors: remount it read-only, mark it to be checked at the
// next boot, start an online check (scrub), or run an administrator's
// command. Every action has a timeout, can run in a dry-run mode that
// changes nothing, and ends in a Result that records what ran and how it
// went, for the daemon's history.
//
// External programs are always run directly, never through a shell, in a
// process group of their own with a minimal environment; their standard
// output and error are captured together, bounded to 64 KiB. When an action
// times out (or its context is canceled) the whole process group gets
// SIGTERM and, if it is still there after a grace period, SIGKILL. Whatever
// the program left behind in its process group when it exits is killed too.
//
// A running action's progress is passed to Runner.Progress where the kernel
// or the program tells it: a btrfs scrub's bytes scrubbed, read from the
// kernel, and the e2fsck progress lines a command given {progress_fd}
// writes (see Progress).
//
// Actions that a file system does not support (fsck at next boot on xfs,
// e2scrub on ext4 that is not on LVM, ...) end with OK false, Unsupported
// true and an outcome that says why: a clear, recorded answer rather than a
// failure to retry.
package actions

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// These are the action names Spec.Name takes.
const (
	// RemountRO remounts the file system read-only, superblock-wide.
	RemountRO = "remount-ro"
	// FsckNextBoot marks the file system so that the boot-time fsck checks
	// and repairs it.
	FsckNextBoot = "fsck-next-boot"
	// Scrub starts the file system's online check, where it has one.
	Scrub = "scrub"
	// Command runs an administrator's program with placeholders filled in.
	Command = "command"
)

// These default timeouts apply when neither the Spec nor the Runner sets
// one.
const (
	// DefaultRemountTimeout bounds remount-ro.
	DefaultRemountTimeout = time.Minute
	// DefaultFsckNextBootTimeout bounds fsck-next-boot.
	DefaultFsckNextBootTimeout = time.Minute
	// DefaultScrubTimeout bounds scrub: a scrub reads every piece of
	// metadata (btrfs: every block) and can take hours on large file systems.
	DefaultScrubTimeout = 6 * time.Hour
	// DefaultCommandTimeout bounds command.
	DefaultCommandTimeout = 5 * time.Minute
)

// BasePath is the PATH every external program runs with.
const BasePath = "/usr/sbin:/usr/bin:/sbin:/bin"

// Target is the file system an action is about, as the event that triggered
// it describes it.
type Target struct {
	// Device is the file system's device node, e.g. "/dev/sda1".
	Device string
	// FSType is the file system type, e.g. "ext4".
	FSType string
	// UUID is the file system UUID.
	UUID string
	// Mountpoints lists the file system's mount points; actions that need a
	// mount point use the first one that still belongs to the file system.
	Mountpoints []string
	// EventID is the id of the event that triggered the action.
	EventID string
	// Errno is the error's symbolic name, e.g. "EUCLEAN".
	Errno string
}

// Result is the recorded outcome of one action.
type Result struct {
	// Name is the action's name, e.g. "remount-ro".
	Name string
	// Argv is the external program that ran, or would have run in a dry
	// run, with its arguments; it is empty for actions that only make
	// system calls (remount-ro) or never got as far as a program.
	Argv []string
	// DryRun says the action ran in dry-run mode: nothing was changed.
	DryRun bool
	// OK says the action did what it is for (in a dry run: it would be
	// attempted).
	OK bool
	// Unsupported says the action is not available for this file system, so
	// nothing was attempted; OK is false and Outcome says why.
	Unsupported bool
	// Outcome is one line for people: "remounted /srv read-only",
	// "dry run: would run: /usr/sbin/xfs_scrub -n /srv", "failed: ...".
	Outcome string
	// Output is what the program wrote to its standard output and error,
	// interleaved, at most 64 KiB; a longer output keeps its beginning and
	// end with a note saying how much was left out.
	Output string
	// Started and Finished are when the action started and finished.
	Started, Finished time.Time
}

// Spec is one configured action.
type Spec struct {
	// Name is RemountRO, FsckNextBoot, Scrub or Command.
	Name string
	// Argv is the program and its arguments, for Command only. Placeholders
	// ({device}, {mountpoint}, {uuid}, {fstype}, {event_id}, {errno}) are
	// replaced inside individual arguments, never split or passed to a
	// shell; {mountpoint} is the Target's first mount point. "{{" and "}}"
	// stand for literal braces. Argv[0] takes no placeholders; a bare name
	// is looked up with the Runner's LookPath. The program's environment is
	// PATH=BasePath plus FSHEALTH_DEVICE, FSHEALTH_MOUNTPOINT, FSHEALTH_UUID,
	// FSHEALTH_FSTYPE, FSHEALTH_EVENT_ID and FSHEALTH_ERRNO with the same
	// values, and nothing else. {progress_fd} is "3": a command whose
	// arguments use it gets the write end of a pipe as descriptor 3 (and
	// FSHEALTH_PROGRESS_FD=3), from which e2fsck's progress lines (-C 3)
	// are read for Runner.Progress.
	Argv []string
	// Timeout bounds the action; zero means the Runner's DefaultTimeout.
	Timeout time.Duration
}

// Runner runs actions. The zero value is ready to use; a Runner is safe for
// concurrent use as long as its fields are not changed meanwhile.
type Runner struct {
	// DryRun makes every action only report what it would do: no program
	// runs and nothing is changed (read-only checks such as "is it mounted
	// read-only already" and "is it on LVM" are still made).
	DryRun bool
	// DefaultTimeout applies to Specs without a Timeout. When it is zero
	// too, each action has its own default: DefaultRemountTimeout,
	// DefaultFsckNextBootTimeout, DefaultScrubTimeout or
	// DefaultCommandTimeout.
	DefaultTimeout time.Duration
	// Logger receives one record per action; nil means no logging.
	Logger *slog.Logger
	// LookPath finds programs named without a slash; nil means LookPath.
	LookPath func(string) (string, error)
	// Progress, if set, hears how far a running action has got, where
	// the kernel or the program tells (see Progress), at most once a
	// second, from another goroutine, and never after Run returned.
	Progress func(Progress)
}

// sbinDirs are searched by LookPath after $PATH.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// LookPath finds the program name like exec.LookPath, then also in /usr/sbin
// and /sbin, which are often missing from a daemon's or a non-login PATH.
func LookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		if abs, aerr := filepath.Abs(p); aerr == nil {
			p = abs
		}
		return p, nil
	}
	if strings.Contains(name, "/") {
		return "", err
	}
	for _, d := range sbinDirs {
		c := filepath.Join(d, name)
		if st, serr := os.Stat(c); serr == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return c, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// lookPath returns r.LookPath or the package's LookPath.
func (r *Runner) lookPath(name string) (string, error) {
	if r.LookPath != nil {
		return r.LookPath(name)
	}
	return LookPath(name)
}

// timeout returns the timeout for s.
func (r *Runner) timeout(s Spec) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	if r.DefaultTimeout > 0 {
		return r.DefaultTimeout
	}
	switch s.Name {
	case RemountRO:
		return DefaultRemountTimeout
	case FsckNextBoot:
		return DefaultFsckNextBootTimeout
	case Scrub:
		return DefaultScrubTimeout
	}
	return DefaultCommandTimeout
}

// Run runs the action s against the file system t, bounded by the action's
// timeout and by ctx, and returns its recorded outcome. It never panics on
// bad input: an invalid Spec gives a Result with OK false saying why.
func (r *Runner) Run(ctx context.Context, s Spec, t Target) Result {
	timeout := r.timeout(s)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	j := &job{r: r, ctx: ctx, spec: s, t: t, timeout: timeout, progress: &reporter{fn: r.Progress}}
	j.res = Result{Name: s.Name, DryRun: r.DryRun, Started: time.Now()}
	if err := Validate(s); err != nil {
		j.fail("invalid action: %v", err)
	} else if err := ctx.Err(); err != nil {
		j.fail("not started: %v", err)
	} else {
		switch s.Name {
		case RemountRO:
			j.remountRO()
		case FsckNextBoot:
			j.fsckNextBoot()
		case Scrub:
			j.scrub()
		case Command:
			j.command()
		}
	}
	j.progress.stop()
	j.res.Finished = time.Now()
	j.res.Outcome = oneLine(j.res.Outcome)
	r.log(&j.res, t)
	return j.res
}

// log records res with r.Logger.
func (r *Runner) log(res *Result, t Target) {
	if r.Logger == nil {
		return
	}
	level := slog.LevelInfo
	if !res.OK && !res.Unsupported {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("action", res.Name),
		slog.Bool("ok", res.OK),
		slog.Bool("dry_run", res.DryRun),
		slog.String("outcome", res.Outcome),
		slog.Duration("duration", res.Finished.Sub(res.Started)),
		slog.String("device", t.Device),
		slog.String("event_id", t.EventID),
	}
	if len(res.Argv) > 0 {
		attrs = append(attrs, slog.Any("argv", res.Argv))
	}
	if res.Unsupported {
		attrs = append(attrs, slog.Bool("unsupported", true))
	}
	r.Logger.LogAttrs(context.Background(), level, "recovery action", attrs...)
}

// job is one running action.
type job struct {
	r       *Runner
	ctx     context.Context
	spec    Spec
	t       Target
	timeout time.Duration
	res     Result
	// progress passes the action's progress on.
	progress *reporter
	// progressErr is logged once: why progress could not be read.
	progressErr sync.Once
}

// progressFailed logs, once per action, why its progress cannot be read;
// the action goes on.
func (j *job) progressFailed(err error) {
	j.progressErr.Do(func() {
		if j.r.Logger != nil {
			j.r.Logger.Warn("cannot read the progress of a recovery action", "action", j.spec.Name,
				"device", j.t.Device, "err", oneLine(err.Error()))
		}
	})
}

// succeed records a successful outcome.
func (j *job) succeed(format string, args ...any) {
	j.res.OK = true
	j.res.Outcome = fmt.Sprintf(format, args...)
}

// fail records a failed outcome, prefixed with "failed: ".
func (j *job) fail(format string, args ...any) {
	j.res.OK = false
	j.res.Outcome = "failed: " + fmt.Sprintf(format, args...)
}

// unsupported records that the action is not available for the file system.
func (j *job) unsupported(format string, args ...any) {
	j.res.OK = false
	j.res.Unsupported = true
	j.res.Outcome = fmt.Sprintf(format, args...)
}

// wouldRun records, in a dry run, that argv would run.
func (j *job) wouldRun(argv []string) {
	j.res.Argv = argv
	j.succeed("dry run: would run: %s", FormatArgv(argv))
}

// FormatArgv formats argv for people, on one line: arguments that are empty
// or contain spaces, quotes, shell metacharacters or control characters are
// shown Go-quoted ("a b", "x\ny"), the others as they are.
func FormatArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = quoteIfNeeded(a)
	}
	return strings.Join(parts, " ")
}

// quoteIfNeeded returns s, Go-quoted if it is empty or contains anything
// but letters, digits and a few punctuation characters safe to show bare.
func quoteIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if c < utf8.RuneSelf && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-+=:,@%", c)) {
			continue
		}
		if c >= utf8.RuneSelf && unicode.IsPrint(c) && !unicode.IsSpace(c) {
			continue
		}
		return strconv.Quote(s)
	}
	return s
}

// oneLine makes s a single line: control characters are escaped.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) && utf8.ValidString(s) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
