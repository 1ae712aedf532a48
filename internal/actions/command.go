package actions

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/trust"
)

// placeholders lists the placeholders a command's arguments may contain and
// the environment variable that carries the same value.
var placeholders = []struct{ Name, Env string }{
	{"device", "FSHEALTH_DEVICE"},
	{"mountpoint", "FSHEALTH_MOUNTPOINT"},
	{"uuid", "FSHEALTH_UUID"},
	{"fstype", "FSHEALTH_FSTYPE"},
	{"event_id", "FSHEALTH_EVENT_ID"},
	{"errno", "FSHEALTH_ERRNO"},
	{progressFDName, "FSHEALTH_PROGRESS_FD"},
}

// progressFDName is the placeholder for the descriptor a command writes
// its progress to, e2fsck's way (-C fd); progressFD is its number in the
// command: the first after standard error.
const (
	progressFDName = "progress_fd"
	progressFD     = "3"
)

// placeholderValues returns the value of every placeholder for t; the mount
// point is the first one, or empty when t has none.
func placeholderValues(t Target) map[string]string {
	mp := ""
	if len(t.Mountpoints) > 0 {
		mp = t.Mountpoints[0]
	}
	return map[string]string{
		"device":       t.Device,
		"mountpoint":   mp,
		"uuid":         t.UUID,
		"fstype":       t.FSType,
		"event_id":     t.EventID,
		"errno":        t.Errno,
		progressFDName: progressFD,
	}
}

// Validate checks s the way the configuration loader needs: the name is
// known; a command has an argv whose program is an absolute path or is found
// by LookPath, takes no placeholders in argv[0], and uses only known
// placeholders; other actions take no argv; the timeout is not negative.
func Validate(s Spec) error {
	if s.Timeout < 0 {
		return fmt.Errorf("%s: negative timeout %v", s.Name, s.Timeout)
	}
	switch s.Name {
	case RemountRO, FsckNextBoot, Scrub:
		if len(s.Argv) > 0 {
			return fmt.Errorf("%s: argv is only for %q actions", s.Name, Command)
		}
		return nil
	case Command:
	case "":
		return fmt.Errorf("action name missing (want %s, %s, %s or %s)", RemountRO, FsckNextBoot, Scrub, Command)
	default:
		return fmt.Errorf("unknown action %q (want %s, %s, %s or %s)", s.Name, RemountRO, FsckNextBoot, Scrub, Command)
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return fmt.Errorf("%s: argv is empty: it needs at least the program to run", Command)
	}
	for i, a := range s.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%s: argv[%d] contains a NUL byte", Command, i)
		}
		names, err := parsePlaceholders(a)
		if err != nil {
			return fmt.Errorf("%s: argv[%d] %q: %w", Command, i, a, err)
		}
		if i == 0 && len(names) > 0 {
			return fmt.Errorf("%s: argv[0] %q: the program cannot contain placeholders", Command, a)
		}
	}
	prog := s.Argv[0]
	if filepath.IsAbs(prog) {
		return nil
	}
	if strings.Contains(prog, "/") {
		return fmt.Errorf("%s: program %q is a relative path: give an absolute path or a bare name found in $PATH, /usr/sbin or /sbin", Command, prog)
	}
	if _, err := LookPath(prog); err != nil {
		return fmt.Errorf("%s: program %q: %w", Command, prog, err)
	}
	return nil
}

// errBadPlaceholder is wrapped by parsePlaceholders' errors.
var errBadPlaceholder = errors.New("unknown placeholder")

// parsePlaceholders returns the placeholders s uses, or an error naming an
// unknown one. A placeholder is "{" name "}" where name is letters, digits
// and underscores; "{{" and "}}" are literal braces; any other brace is
// literal too.
func parsePlaceholders(s string) ([]string, error) {
	var names []string
	_, err := expand(s, func(name string) (string, bool) {
		names = append(names, name)
		return "", slices.ContainsFunc(placeholders, func(p struct{ Name, Env string }) bool { return p.Name == name })
	})
	return names, err
}

// expand replaces the placeholders in s with the values lookup gives for
// them, in one left-to-right pass: substituted values are never scanned
// again, so a value that looks like a placeholder (or anything else) stays
// exactly as it is. lookup reports whether the name is known.
func expand(s string, lookup func(name string) (string, bool)) (string, error) {
	if !strings.ContainsAny(s, "{}") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			b.WriteByte('}')
			i += 2
		case c == '{':
			n := identLen(s[i+1:])
			if n > 0 && i+1+n < len(s) && s[i+1+n] == '}' {
				name := s[i+1 : i+1+n]
				v, ok := lookup(name)
				if !ok {
					return "", fmt.Errorf("%w {%s} (known: %s; write {{ and }} for literal braces)", errBadPlaceholder, name, placeholderList())
				}
				b.WriteString(v)
				i += n + 2
				continue
			}
			b.WriteByte(c)
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// identLen returns the length of the run of letters, digits and
// underscores at the start of s.
func identLen(s string) int {
	n := 0
	for n < len(s) {
		c := s[n]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			n++
			continue
		}
		break
	}
	return n
}

// placeholderList returns the known placeholders as "{device}, {mountpoint}, ...".
func placeholderList() string {
	parts := make([]string, len(placeholders))
	for i, p := range placeholders {
		parts[i] = "{" + p.Name + "}"
	}
	return strings.Join(parts, ", ")
}

// commandEnv returns the environment of a command run for t: BasePath and
// one FSHEALTH_* variable per placeholder; FSHEALTH_PROGRESS_FD only when
// the command is given the progress descriptor (withProgress).
func commandEnv(t Target, withProgress bool) []string {
	vals := placeholderValues(t)
	env := []string{"PATH=" + BasePath}
	for _, p := range placeholders {
		if p.Name == progressFDName && !withProgress {
			continue
		}
		env = append(env, p.Env+"="+vals[p.Name])
	}
	return env
}

// command runs the administrator's program.
func (j *job) command() {
	vals := placeholderValues(j.t)
	argv := make([]string, len(j.spec.Argv))
	withProgress := false
	for i, a := range j.spec.Argv {
		v, err := expand(a, func(name string) (string, bool) {
			v, ok := vals[name]
			withProgress = withProgress || name == progressFDName
			return v, ok
		})
		if err != nil {
			j.fail("argv[%d]: %v", i, err)
			return
		}
		argv[i] = v
	}
	prog, err := j.r.lookPath(argv[0])
	if err != nil {
		j.res.Argv = argv
		j.fail("program %s: %v", quoteIfNeeded(argv[0]), err)
		return
	}
	argv[0] = prog
	if err := trust.CheckProgram(prog); err != nil {
		j.res.Argv = argv
		j.fail("refusing to run %s: %s", quoteIfNeeded(prog), oneLine(err.Error()))
		return
	}
	if j.r.DryRun {
		j.wouldRun(argv)
		return
	}
	for _, v := range vals {
		if strings.IndexByte(v, 0) >= 0 {
			j.res.Argv = argv
			j.fail("a placeholder value contains a NUL byte, which cannot be passed to a program")
			return
		}
	}
	var p *proc
	if withProgress {
		p = j.runWithProgress(argv, commandEnv(j.t, true))
	} else {
		p = j.run(argv, commandEnv(j.t, false))
	}
	if p.ok() {
		j.succeed("ran %s: exit status 0", FormatArgv(argv))
		return
	}
	j.fail("%s: %s", FormatArgv(argv), p.describe())
}

// Placeholders returns the known placeholders ("{device}"...) that the
// argument arg uses, in order, or nil.
func Placeholders(arg string) []string {
	var used []string
	_, _ = expand(arg, func(name string) (string, bool) {
		if slices.ContainsFunc(placeholders, func(p struct{ Name, Env string }) bool { return p.Name == name }) {
			used = append(used, "{"+name+"}")
			return "", true
		}
		return "", false
	})
	return used
}

// runWithProgress runs argv like run, with the write end of a pipe as its
// descriptor 3 ({progress_fd}), and reports the e2fsck progress lines
// ("PASS CURRENT MAX DEVICE", what e2fsck -C writes) it reads from the
// pipe; other lines are ignored. Reading ends when every holder of the
// write end has closed it, or pipeGrace after the program ended.
func (j *job) runWithProgress(argv, env []string) *proc {
	pr, pw, err := os.Pipe()
	if err != nil {
		j.res.Argv = argv
		return &proc{exitCode: -1, startErr: fmt.Errorf("the progress pipe: %w", err)}
	}
	defer pr.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		err := readLines(pr, func(line []byte) {
			if p, ok := parseE2fsckProgress(line, time.Now()); ok {
				j.progress.report(p)
			}
		})
		if err != nil && !errors.Is(err, os.ErrClosed) {
			j.progressFailed(fmt.Errorf("reading {%s}: %w", progressFDName, err))
		}
	}()
	j.res.Argv = argv
	p := runProgramFiles(j.ctx, argv, env, j.r.Logger, []*os.File{pw})
	pw.Close()
	p.limit = j.timeout
	j.res.Output = p.output
	select {
	case <-read:
	case <-time.After(pipeGrace):
		pr.Close()
		<-read
	}
	return p
}
