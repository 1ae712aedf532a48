// Package cgroup runs programs (hooks, the programs of recovery actions) in
// a cgroup v2 of their own, so that everything they start — children that
// leave the process group with setsid(), daemons that double-fork — can be
// found and killed with them.
//
// A program is placed in its cgroup as it is created (clone3 with
// CLONE_INTO_CGROUP, through os/exec's SysProcAttr.UseCgroupFD), so not even
// its first child can escape. When it is done, Group.Remove kills whatever
// is left in the cgroup (cgroup.kill, Linux 5.14+; before that by freezing
// the cgroup and sending SIGKILL to every process in it), waits for it to
// empty and removes it.
//
// The cgroups are created below the cgroup fshealth itself runs in. Under
// systemd that needs Delegate=yes in the unit: without it the cgroup
// belongs to systemd and Default refuses to touch it (so does a command
// run from a login session on a systemd machine). Init, called once by
// the daemon, also moves the daemon into a leaf cgroup of its own
// ("daemon"), so that the cgroups it creates are leaves too, as cgroup v2's
// "no internal processes" rule wants once controllers are enabled.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// DaemonLeaf is the name of the leaf cgroup Init moves the daemon into.
const DaemonLeaf = "daemon"

// Manager creates cgroups below one cgroup, its base.
type Manager struct {
	// base is the base cgroup's directory in the cgroup2 file system.
	base string
	seq  atomic.Uint64
}

var (
	defaultOnce sync.Once
	defaultMgr  *Manager
	defaultErr  error
)

// Default returns the Manager for this process, creating cgroups below the
// cgroup the process was in when Default (or Init) was first called. The
// error says why cgroups cannot be used: no cgroup v2 mounted, or a systemd
// service without Delegate=yes.
func Default() (*Manager, error) {
	defaultOnce.Do(func() { defaultMgr, defaultErr = setup(false) })
	return defaultMgr, defaultErr
}

// Init is Default for the daemon: when its cgroup is delegated to it and is
// not the root cgroup, it first moves the whole process into a leaf child
// cgroup, DaemonLeaf, so that its own cgroup only holds cgroups. It must be
// called before Default to have that effect; later calls return Default's
// result.
func Init() (*Manager, error) {
	defaultOnce.Do(func() { defaultMgr, defaultErr = setup(true) })
	return defaultMgr, defaultErr
}

// Base returns the directory of the cgroup below which m creates cgroups.
func (m *Manager) Base() string { return m.base }

func setup(moveSelf bool) (*Manager, error) {
	mnt, root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	rel, ok := strings.CutPrefix(own, root)
	if !ok {
		return nil, fmt.Errorf("cgroup %q is outside the cgroup2 mount's root %q", own, root)
	}
	base := filepath.Join(mnt, rel)
	delegated := isDelegated(base)
	if base == mnt && !delegated {
		// The root cgroup (of the machine, or of a cgroup namespace that
		// is not a delegated unit's): processes and cgroups may live side
		// by side.
		return &Manager{base: base}, nil
	}
	if !delegated {
		// Under systemd every cgroup is systemd's unless delegated.
		if os.Getenv("INVOCATION_ID") != "" {
			return nil, fmt.Errorf("the cgroup %s belongs to systemd: the unit needs Delegate=yes", base)
		}
		if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("the cgroup %s belongs to systemd (run fshealth as a service with Delegate=yes)", base)
		}
	}
	if moveSelf && delegated {
		leaf := filepath.Join(base, DaemonLeaf)
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("creating the daemon's leaf cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte("0"), 0); err != nil {
			return nil, fmt.Errorf("moving the daemon into %s: %w", leaf, err)
		}
	}
	return &Manager{base: base}, nil
}

// isDelegated reports whether systemd marked the cgroup at dir as delegated
// (the trusted.delegate or user.delegate extended attribute, systemd 251+).
func isDelegated(dir string) bool {
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		buf := make([]byte, 8)
		n, err := unix.Getxattr(dir, attr, buf)
		if err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

// cgroup2Mount returns the mount point and root of the cgroup2 file system,
// from /proc/self/mountinfo.
func cgroup2Mount() (mountpoint, root string, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		fields := strings.Fields(pre)
		if len(fields) < 5 {
			continue
		}
		return unescape(fields[4]), unescape(fields[3]), nil
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	return "", "", errors.New("no cgroup2 file system is mounted")
}

// unescape undoes mountinfo's octal escapes (\040 for a space...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroup returns this process's cgroup v2 path, from /proc/self/cgroup.
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSuffix(p, " (deleted)"), nil
		}
	}
	return "", errors.New("this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)")
}

// useKillFile is false in tests of the fallback for kernels before 5.14,
// which have no cgroup.kill.
var useKillFile = true

// Group is one cgroup created for one program run.
type Group struct {
	dir string
	fd  *os.File
}

// New creates a new, empty cgroup below m's base, named after kind, the
// process id and a sequence number (e.g. "fshealth-hook-4242-7").
func (m *Manager) New(kind string) (*Group, error) {
	var dir string
	for attempt := 0; ; attempt++ {
		// A name can be taken by a cgroup an earlier process with the same
		// pid could not remove (a process stuck in the kernel).
		dir = filepath.Join(m.base, fmt.Sprintf("fshealth-%s-%d-%d", kind, os.Getpid(), m.seq.Add(1)))
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || attempt == 9 {
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
	}
	fd, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("opening cgroup: %w", err)
	}
	return &Group{dir: dir, fd: fd}, nil
}

// NewGroup creates a new cgroup of kind below the Default Manager's base
// (see New), or says why cgroups cannot be used.
func NewGroup(kind string) (*Group, error) {
	m, err := Default()
	if err != nil {
		return nil, err
	}
	return m.New(kind)
}

// Path returns the cgroup's directory.
func (g *Group) Path() string { return g.dir }

// FD returns the file descriptor of the cgroup's directory, for
// SysProcAttr.CgroupFD.
func (g *Group) FD() int { return int(g.fd.Fd()) }

// Kill sends SIGKILL to every process in the cgroup: with cgroup.kill
// (Linux 5.14+), else by freezing the cgroup (so nothing can fork), killing
// each process it lists, and thawing it.
func (g *Group) Kill() error {
	if useKillFile {
		err := os.WriteFile(filepath.Join(g.dir, "cgroup.kill"), []byte("1"), 0)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	freeze := filepath.Join(g.dir, "cgroup.freeze")
	if err := os.WriteFile(freeze, []byte("1"), 0); err != nil {
		return fmt.Errorf("freezing %s: %w", g.dir, err)
	}
	defer os.WriteFile(freeze, []byte("0"), 0)
	deadline := time.Now().Add(time.Second)
	for !g.eventIs("frozen", "1") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	procs, err := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(string(procs)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	return nil
}

// eventIs reports whether cgroup.events has key with value.
func (g *Group) eventIs(key, value string) bool {
	data, err := os.ReadFile(filepath.Join(g.dir, "cgroup.events"))
	if err != nil {
		return false
	}
	return bytes.Contains(append([]byte("\n"), data...), []byte("\n"+key+" "+value+"\n"))
}

// Empty reports whether no process is left in the cgroup.
func (g *Group) Empty() bool { return g.eventIs("populated", "0") }

// Remove kills what is left in the cgroup, waits up to timeout for it to
// empty, and removes it. It fails, leaving the cgroup in place, when a
// process outlives the timeout (stuck in the kernel).
func (g *Group) Remove(timeout time.Duration) error {
	defer g.fd.Close()
	if !g.Empty() {
		if err := g.Kill(); err != nil {
			return err
		}
		deadline := time.Now().Add(timeout)
		for !g.Empty() {
			if time.Now().After(deadline) {
				return fmt.Errorf("processes in %s did not exit within %s of SIGKILL", g.dir, timeout)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if err := os.Remove(g.dir); err != nil {
		return fmt.Errorf("removing cgroup: %w", err)
	}
	return nil
}
