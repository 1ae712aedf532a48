package actions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/mounts"
)

// stNoSymfollow is ST_NOSYMFOLLOW from <linux/statfs.h>, which x/sys/unix
// lacks.
const stNoSymfollow = 0x2000

// remountRO remounts the file system read-only with mount(2) MS_REMOUNT |
// MS_RDONLY on its first mount point. That makes the superblock read-only,
// so every mount of it becomes read-only. The mount point's own flags
// (nosuid, nodev, noexec, nosymfollow) and the superblock's sync, dirsync
// and lazytime are passed again, because a legacy remount resets whatever
// it is not given, exactly like `mount -o remount,ro` does. A file system
// with files open for writing refuses (EBUSY): the remount is tried again
// for about a second (busyRetries), then the refusal is reported, naming
// the writers, not forced.
func (j *job) remountRO() {
	mp, m, err := findMount(j.t)
	if err != nil {
		j.fail("%v", err)
		return
	}
	qmp := quoteIfNeeded(mp)
	if superReadOnly(m) {
		if j.r.DryRun {
			j.succeed("dry run: %s is already read-only; would do nothing", qmp)
			return
		}
		j.succeed("%s is already read-only", qmp)
		return
	}
	if j.r.DryRun {
		j.succeed("dry run: would remount %s read-only", qmp)
		return
	}
	flags := uintptr(unix.MS_REMOUNT|unix.MS_RDONLY) | keptFlags(mp, m)
	start := time.Now()
	tries := 0
	for {
		tries++
		done := make(chan error, 1)
		go func() { done <- unix.Mount("", mp, "", flags, "") }()
		select {
		case err = <-done:
		case <-j.ctx.Done():
			j.fail("remounting %s read-only did not finish within %v (the kernel is still trying; it may be stuck writing to a failing device)", qmp, j.timeout)
			return
		}
		if !errors.Is(err, unix.EBUSY) || tries > len(busyRetries) || !sleepCtx(j.ctx, busyRetries[tries-1]) {
			break
		}
	}
	switch {
	case err == nil && tries > 1:
		j.succeed("remounted %s read-only (busy at first: %d tries over %v)", qmp, tries, time.Since(start).Round(time.Millisecond))
	case err == nil:
		j.succeed("remounted %s read-only", qmp)
	case errors.Is(err, unix.EBUSY):
		j.fail("cannot remount %s read-only: busy (EBUSY), %d tries over %v: %s; remount-ro does not force it",
			qmp, tries, time.Since(start).Round(time.Millisecond), describeWriters(j.ctx, mp))
	default:
		j.fail("remount %s read-only: %v", qmp, err)
	}
}

// busyRetries are the pauses before each new try of a remount that failed
// with EBUSY, about a second in all: a file about to be closed (a copy or
// a log rotation finishing, a database closing) lets it through; one that
// stays open for writing is named in the failure.
var busyRetries = []time.Duration{50 * time.Millisecond, 150 * time.Millisecond, 300 * time.Millisecond, 500 * time.Millisecond}

// sleepCtx waits d, and reports false if ctx was done first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// keptFlags returns the mount(2) flags that keep mp's per-mount flags and
// m's superblock flags through a remount.
func keptFlags(mp string, m *mounts.Mount) uintptr {
	var flags uintptr
	var st unix.Statfs_t
	if unix.Statfs(mp, &st) == nil {
		for _, f := range []struct{ st, ms uintptr }{
			{unix.ST_NOSUID, unix.MS_NOSUID},
			{unix.ST_NODEV, unix.MS_NODEV},
			{unix.ST_NOEXEC, unix.MS_NOEXEC},
			{stNoSymfollow, unix.MS_NOSYMFOLLOW},
		} {
			if uintptr(st.Flags)&f.st != 0 {
				flags |= f.ms
			}
		}
	}
	for _, f := range []struct {
		opt string
		ms  uintptr
	}{
		{"sync", unix.MS_SYNCHRONOUS},
		{"dirsync", unix.MS_DIRSYNC},
		{"lazytime", unix.MS_LAZYTIME},
	} {
		if hasOption(m.SuperOptions, f.opt) {
			flags |= f.ms
		}
	}
	return flags
}

// maxWritersShown bounds how many open files describeWriters names.
const maxWritersShown = 5

// describeWriters says which processes have files open for writing on the
// file system mounted at mp, for an EBUSY message; it gives up when ctx is
// done.
func describeWriters(ctx context.Context, mp string) string {
	const generic = "files are open for writing on it, or deleted files are still open"
	var st unix.Stat_t
	if err := unix.Stat(mp, &st); err != nil {
		return generic
	}
	ws, more := openWriters(ctx, st.Dev, maxWritersShown)
	if len(ws) == 0 {
		return generic
	}
	s := strings.Join(ws, ", ")
	if more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// openWriters lists, as "pid 123 (comm) has /path open for writing", the
// files open for writing on the file system with device number dev, at most
// limit of them; more counts the others found. It reads /proc/PID/fd and
// /proc/PID/fdinfo and stops early when ctx is done.
func openWriters(ctx context.Context, dev uint64, limit int) (found []string, more int) {
	pids, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, 0
	}
	for _, p := range pids {
		if ctx.Err() != nil {
			break
		}
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fdDir := filepath.Join(procRoot, p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			var st unix.Stat_t
			if unix.Stat(filepath.Join(fdDir, fd.Name()), &st) != nil || st.Dev != dev {
				continue
			}
			if !fdWritable(filepath.Join(procRoot, p.Name(), "fdinfo", fd.Name())) {
				continue
			}
			if len(found) >= limit {
				more++
				continue
			}
			path, _ := os.Readlink(filepath.Join(fdDir, fd.Name()))
			comm, _ := os.ReadFile(filepath.Join(procRoot, p.Name(), "comm"))
			found = append(found, fmt.Sprintf("pid %d (%s) has %s open for writing",
				pid, strings.TrimSpace(string(comm)), quoteIfNeeded(path)))
		}
	}
	return found, more
}

// fdWritable reports whether the fdinfo file says the descriptor was opened
// for writing (O_WRONLY or O_RDWR in its "flags:" line, which is octal).
func fdWritable(fdinfo string) bool {
	f, err := os.Open(fdinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "flags:")
		if !ok {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
		if err != nil {
			return false
		}
		acc := flags & unix.O_ACCMODE
		return acc == unix.O_WRONLY || acc == unix.O_RDWR
	}
	return false
}
