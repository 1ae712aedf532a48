package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/internal/trust"
)

// MaxOutput is the most output a Result keeps, in bytes.
const MaxOutput = 64 << 10

// Grace periods used when running programs; variables so that tests can
// shorten them.
var (
	// killGrace is how long a timed-out process group has between SIGTERM
	// and SIGKILL, e.g. for e2scrub to remove its LVM snapshot.
	killGrace = 5 * time.Second
	// pipeGrace is how long output is still read after the process group
	// is gone: a process that left the group may hold the pipe open.
	pipeGrace = time.Second
)

// toolEnv is the environment of the programs the built-in actions run: the
// C locale keeps their messages stable for parsing.
var toolEnv = []string{"PATH=" + BasePath, "LC_ALL=C"}

// proc is how one program run ended.
type proc struct {
	startErr error
	timedOut bool
	canceled bool
	exitCode int // -1 when killed by a signal or not started
	signal   syscall.Signal
	elapsed  time.Duration
	limit    time.Duration // the timeout, for messages; 0 if not known
	stuck    bool          // still there after SIGKILL and killGrace
	output   string
}

// ok reports whether the program ran and exited with status 0.
func (p *proc) ok() bool {
	return p.startErr == nil && !p.timedOut && !p.canceled && p.exitCode == 0
}

// describe says in a few words how the program ended, with the last line of
// its output when it failed.
func (p *proc) describe() string {
	var s string
	switch {
	case p.startErr != nil:
		return "could not start: " + p.startErr.Error()
	case p.timedOut || p.canceled:
		d := p.limit
		if p.canceled || d == 0 {
			d = p.elapsed.Round(time.Millisecond)
		}
		what := "timed out"
		if p.canceled {
			what = "canceled"
		}
		s = fmt.Sprintf("%s after %v; its process group was killed", what, d)
		if p.stuck {
			s += ", but it did not exit (stuck in the kernel?)"
		}
	case p.exitCode < 0:
		s = "killed by signal " + unix.SignalName(p.signal)
	default:
		s = fmt.Sprintf("exit status %d", p.exitCode)
	}
	if l := lastLine(p.output); l != "" {
		s += ": " + l
	}
	return s
}

// lastLine returns the last non-empty line of s, trimmed and shortened to
// at most 200 bytes.
func lastLine(s string) string {
	s = strings.TrimRight(s, " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// run runs argv with the environment env in a process group of its own,
// bounded by the job's context, records argv and the output in the Result,
// and returns how it ended.
func (j *job) run(argv, env []string) *proc {
	j.res.Argv = argv
	p := runProgram(j.ctx, argv, env, j.r.Logger)
	p.limit = j.timeout
	j.res.Output = p.output
	return p
}

// runProgram runs argv directly (no shell) with the environment env, the
// root directory as working directory, standard input from /dev/null and
// standard output and error into one bounded buffer. The program must pass
// trust.CheckProgram. It is the leader of a new process group and, when
// cgroup v2 can be used, in a cgroup of its own (see package cgroup). When
// ctx is done first, the group gets SIGTERM, then SIGKILL after killGrace,
// and so does everything in the cgroup. When the program exits, whatever is
// left in its group and its cgroup gets SIGKILL. log (may be nil) hears
// once that cgroups cannot be used.
func runProgram(ctx context.Context, argv, env []string, log *slog.Logger) *proc {
	return runProgramFiles(ctx, argv, env, log, nil)
}

// runProgramFiles is runProgram giving the program extra open files as
// its descriptors 3, 4, ... (exec.Cmd.ExtraFiles); the caller closes its
// own copies.
func runProgramFiles(ctx context.Context, argv, env []string, log *slog.Logger, extra []*os.File) *proc {
	p := &proc{exitCode: -1}
	start := time.Now()
	defer func() { p.elapsed = time.Since(start) }()
	if err := ctx.Err(); err != nil {
		p.startErr = fmt.Errorf("not started: %w", err)
		return p
	}
	if err := trust.CheckProgram(argv[0]); err != nil {
		p.startErr = fmt.Errorf("refused: %v", err)
		return p
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		p.startErr = err
		return p
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	cg := newGroup(log)
	if cg != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, cg.FD()
	}
	newCmd := func() *exec.Cmd {
		return &exec.Cmd{Path: argv[0], Args: argv, Env: env, Dir: "/", Stdout: pw, Stderr: pw, ExtraFiles: extra, SysProcAttr: attr}
	}
	cmd := newCmd()
	err = cmd.Start()
	if err != nil && cg != nil && errors.Is(err, syscall.ENOSYS) {
		// Starting a process in a cgroup takes clone3(2), which a
		// systemd unit with RestrictNamespaces= refuses (ENOSYS): the
		// program gets its process group only.
		noClone3Once.Do(func() {
			if log != nil {
				log.Warn("recovery action programs run without a cgroup of their own: clone3 is refused (a systemd unit's RestrictNamespaces=); only their process group is killed, so descendants that leave it (setsid, daemons) are not contained")
			}
		})
		removeGroup(cg, log)
		cg, attr.UseCgroupFD = nil, false
		cmd = newCmd()
		err = cmd.Start()
	}
	pw.Close()
	if err != nil {
		pr.Close()
		removeGroup(cg, log)
		p.startErr = err
		return p
	}
	out := newBoundedBuffer(MaxOutput)
	readDone := make(chan struct{})
	go func() {
		io.Copy(out, pr)
		close(readDone)
	}()

	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		waitExited(pid)
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			p.timedOut = true
		} else {
			p.canceled = true
		}
		killGroup(pid, unix.SIGTERM)
		select {
		case <-exited:
		case <-time.After(killGrace):
			killGroup(pid, unix.SIGKILL)
			killCgroup(cg)
			select {
			case <-exited:
			case <-time.After(killGrace):
				// Unkillable for now: blocked in the kernel (D state).
				// Reap it whenever it goes, and report what we have.
				p.stuck = true
				go func() {
					<-exited
					killGroup(pid, unix.SIGKILL)
					cmd.Wait()
					removeGroup(cg, log)
					pr.Close()
				}()
				p.output = out.String()
				return p
			}
		}
	}
	// The leader has exited but is not reaped yet, so its pid, which is
	// the group's id, cannot be reused: killing the group is safe. The
	// cgroup holds whatever left the group.
	killGroup(pid, unix.SIGKILL)
	killCgroup(cg)
	werr := cmd.Wait()
	removeGroup(cg, log)
	select {
	case <-readDone:
	case <-time.After(pipeGrace):
		pr.Close()
		<-readDone
	}
	pr.Close()
	p.output = out.String()

	if cmd.ProcessState == nil {
		p.startErr = fmt.Errorf("waiting for it: %w", werr)
		return p
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			p.exitCode = ws.ExitStatus()
		case ws.Signaled():
			p.signal = ws.Signal()
		}
	} else if werr != nil {
		p.startErr = werr
	}
	return p
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// killGroup sends sig to process group pgid, ignoring errors (the group
// may be gone already).
func killGroup(pgid int, sig unix.Signal) {
	unix.Kill(-pgid, sig)
}

// boundedBuffer keeps the first and the last bytes written to it, at most
// limit bytes in all including a note on what was left out. It is safe for
// concurrent use.
type boundedBuffer struct {
	mu    sync.Mutex
	limit int
	head  []byte
	tail  []byte // ring buffer once full
	pos   int    // next write position in tail when full
	total int64
}

// truncationNoteRoom is the room kept for the truncation note.
const truncationNoteRoom = 80

// newBoundedBuffer returns a boundedBuffer keeping at most limit bytes.
func newBoundedBuffer(limit int) *boundedBuffer {
	return &boundedBuffer{limit: limit}
}

// Write implements io.Writer; it never fails.
func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	headMax := (b.limit - truncationNoteRoom) / 2
	tailMax := b.limit - truncationNoteRoom - headMax
	if room := headMax - len(b.head); room > 0 {
		k := min(room, len(p))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		if len(b.tail) < tailMax {
			k := min(tailMax-len(b.tail), len(p))
			b.tail = append(b.tail, p[:k]...)
			p = p[k:]
			continue
		}
		if len(p) >= tailMax {
			p = p[len(p)-tailMax:]
		}
		k := copy(b.tail[b.pos:], p)
		p = p[k:]
		b.pos = (b.pos + k) % tailMax
	}
	return n, nil
}

// String returns the kept output as valid UTF-8, with a note in the middle
// when bytes were left out.
func (b *boundedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := int64(len(b.head) + len(b.tail))
	var s strings.Builder
	s.Write(b.head)
	if omitted := b.total - kept; omitted > 0 {
		fmt.Fprintf(&s, "\n[... output truncated: %d of %d bytes left out ...]\n", omitted, b.total)
	}
	s.Write(b.tail[b.pos:])
	s.Write(b.tail[:b.pos])
	out := strings.ToValidUTF8(s.String(), "\uFFFD")
	if len(out) > b.limit {
		// Replacement characters for invalid bytes made it longer.
		cut := b.limit
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut]
	}
	return out
}
