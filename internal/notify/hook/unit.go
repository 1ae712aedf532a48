package hook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// Isolations (Config.Isolation).
const (
	// IsolationAuto runs each hook in a transient systemd unit when PID 1
	// is systemd and its bus answers, else in a cgroup of its own.
	IsolationAuto = "auto"
	// IsolationUnit always runs hooks in transient units; a hook that
	// cannot be started so fails.
	IsolationUnit = "unit"
	// IsolationCgroup runs hooks as the daemon's children, each in a
	// cgroup of its own.
	IsolationCgroup = "cgroup"
)

// systemdBus is PID 1's private bus socket: root only, no dbus-daemon
// needed (minimal systems have none). systemdRunDir exists when PID 1 is
// systemd (sd_booted(3)). Variables for tests.
var (
	systemdBus    = "/run/systemd/private"
	systemdRunDir = "/run/systemd/system"
)

// systemdBooted reports whether PID 1 is systemd.
func systemdBooted() bool {
	fi, err := os.Lstat(systemdRunDir)
	return err == nil && fi.IsDir()
}

// dialSystemd connects to PID 1's private bus.
func dialSystemd(ctx context.Context) (*dbus.Conn, error) {
	conn, err := dbus.Dial("unix:path="+systemdBus, dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("connecting to systemd (%s): %w", systemdBus, err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to systemd (%s): %w", systemdBus, err)
	}
	return conn, nil
}

// unitProperty is one (name, value) of a transient unit's properties.
type unitProperty struct {
	Name  string
	Value dbus.Variant
}

// unitAux is StartTransientUnit's list of auxiliary units (none).
type unitAux struct {
	Name  string
	Props []unitProperty
}

// execStartEx is one ExecStartEx= command: the program's path, its argv
// and flags.
type execStartEx struct {
	Path  string
	Argv  []string
	Flags []string
}

func prop(name string, v any) unitProperty { return unitProperty{name, dbus.MakeVariant(v)} }

// unitName returns a new unique name for a hook's unit.
func unitName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "fshealth-hook-" + hex.EncodeToString(b[:]) + ".service"
}

// unitEnv returns env as systemd accepts it: each value valid UTF-8
// (invalid bytes become U+FFFD, as the JSON on stdin has them).
func unitEnv(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i] = strings.ToValidUTF8(kv, "\uFFFD")
	}
	return out
}

// unitProperties are the properties of the transient service that runs
// the program at path: exec'd directly (no shell, no $VARIABLE expansion
// of its argv), stdin, stdout and stderr the given descriptors, env its
// whole environment, "/" its working directory; stopped after timeout, and
// every process left in its cgroup killed (SIGKILL) when the program exits
// or the unit stops. The unit is started by PID 1: it has none of the
// daemon's sandbox.
func (n *Notifier) unitProperties(path string, stdin, stdout, stderr *os.File, env []string) []unitProperty {
	props := []unitProperty{
		prop("Description", "fshealth hook "+strconv.Quote(path)),
		prop("Type", "exec"),
		prop("ExecStartEx", []execStartEx{{Path: path, Argv: []string{path}, Flags: []string{"no-env-expand"}}}),
		prop("Environment", unitEnv(env)),
		prop("WorkingDirectory", "/"),
		prop("StandardInputFileDescriptor", dbus.UnixFD(stdin.Fd())),
		prop("StandardOutputFileDescriptor", dbus.UnixFD(stdout.Fd())),
		prop("StandardErrorFileDescriptor", dbus.UnixFD(stderr.Fd())),
		prop("RuntimeMaxUSec", uint64(n.timeout/time.Microsecond)),
		prop("KillMode", "control-group"),
		prop("KillSignal", int32(unix.SIGKILL)),
		prop("TimeoutStopUSec", uint64(cgroupRemoveTimeout/time.Microsecond)),
		// The unit stays (active, "exited") after the hook exits with
		// status 0, and a failed one stays failed, until fshealth has
		// read its outcome: then it stops the one (killing what the hook
		// left behind) and resets the other, and systemd forgets it.
		// (AddRef= would do, but systemd cannot track a client of its
		// private bus.)
		prop("RemainAfterExit", true),
	}
	if n.user != "" {
		props = append(props, prop("User", n.user))
	}
	if n.group != "" {
		props = append(props, prop("Group", n.group))
	}
	return props
}

// errNoUnit says that a hook could not be handed to systemd; with
// IsolationAuto it then runs in a cgroup instead.
type errNoUnit struct{ err error }

func (e *errNoUnit) Error() string { return e.err.Error() }
func (e *errNoUnit) Unwrap() error { return e.err }

// unitPoll is how often a running hook unit's state is read.
const unitPoll = 20 * time.Millisecond

// hookUnit is a hook's running transient unit.
type hookUnit struct {
	conn    *dbus.Conn
	manager dbus.BusObject
	unit    dbus.BusObject
	name    string
}

// startUnit starts the program at path in a transient systemd service. An
// *errNoUnit means systemd could not be asked to run it; nothing ran.
func (n *Notifier) startUnit(ctx context.Context, path string, stdin, stdout, stderr *os.File, env []string) (*hookUnit, error) {
	conn, err := dialSystemd(ctx)
	if err != nil {
		return nil, &errNoUnit{err}
	}
	u := &hookUnit{conn: conn, manager: conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1"), name: unitName()}
	var job, unitPath dbus.ObjectPath
	err = u.manager.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.StartTransientUnit", 0,
		u.name, "fail", n.unitProperties(path, stdin, stdout, stderr, env), []unitAux{}).Store(&job)
	if err != nil {
		conn.Close()
		return nil, &errNoUnit{fmt.Errorf("starting a transient unit: %w", err)}
	}
	if err := u.manager.CallWithContext(ctx, "org.freedesktop.systemd1.Manager.GetUnit", 0, u.name).Store(&unitPath); err != nil {
		// Started, but lost: stop it.
		_ = u.manager.Call("org.freedesktop.systemd1.Manager.StopUnit", 0, u.name, "replace").Err
		conn.Close()
		return nil, fmt.Errorf("cannot start: finding its unit %s: %w", u.name, err)
	}
	u.unit = conn.Object("org.freedesktop.systemd1", unitPath)
	return u, nil
}

// wait waits until the unit's program has ended, stopping the unit (which
// kills it all) when ctx is done, and returns how the hook ended (nil: exit
// status 0). It then makes sure everything in the unit's cgroup is dead and
// lets systemd forget the unit.
func (u *hookUnit) wait(ctx context.Context, timeout time.Duration) error {
	defer u.conn.Close()
	stop := func() { _ = u.manager.Call("org.freedesktop.systemd1.Manager.StopUnit", 0, u.name, "replace").Err }
	reset := func() { _ = u.manager.Call("org.freedesktop.systemd1.Manager.ResetFailedUnit", 0, u.name).Err }
	stopped := false
	var outcome error
	for {
		state, err := unitState(u.unit)
		if err != nil {
			stop()
			return fmt.Errorf("reading the state of its unit %s: %w", u.name, err)
		}
		if state.ended() {
			outcome = state.outcome(timeout, stopped, context.Cause(ctx))
			if state.active == "failed" {
				// Its cgroup is empty: systemd stopped it before failing it.
				reset()
				return outcome
			}
			if state.gone() {
				return outcome
			}
			break
		}
		select {
		case <-ctx.Done():
			if !stopped {
				stopped = true
				stop()
			}
		case <-time.After(unitPoll):
		}
	}
	// The hook exited: stop its unit, which kills whatever it left
	// running, and wait until that is done.
	stop()
	deadline := time.Now().Add(2 * cgroupRemoveTimeout)
	for time.Now().Before(deadline) {
		state, err := unitState(u.unit)
		if err != nil || state.gone() {
			return outcome
		}
		if state.active == "failed" {
			reset()
			return outcome
		}
		time.Sleep(unitPoll)
	}
	return outcome
}

// hookUnitState is what wait reads of a hook's unit.
type hookUnitState struct {
	load, active, sub string
	// started is whether the unit has left its initial inactive state.
	started bool
	// result, code and status are the service's Result, ExecMainCode
	// (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and ExecMainStatus.
	result       string
	code, status int32
}

func unitState(unit dbus.BusObject) (*hookUnitState, error) {
	var s hookUnitState
	var left uint64
	for _, p := range []struct {
		name string
		into any
	}{
		{"org.freedesktop.systemd1.Unit.LoadState", &s.load},
		{"org.freedesktop.systemd1.Unit.ActiveState", &s.active},
		{"org.freedesktop.systemd1.Unit.SubState", &s.sub},
		{"org.freedesktop.systemd1.Unit.InactiveExitTimestampMonotonic", &left},
		{"org.freedesktop.systemd1.Service.Result", &s.result},
		{"org.freedesktop.systemd1.Service.ExecMainCode", &s.code},
		{"org.freedesktop.systemd1.Service.ExecMainStatus", &s.status},
	} {
		v, err := unit.GetProperty(p.name)
		if err != nil {
			return nil, err
		}
		if err := v.Store(p.into); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	s.started = left != 0
	return &s, nil
}

// ended reports whether the hook's program has ended: it exited with
// status 0 (the unit remains, "exited"), or the unit failed or was stopped.
func (s *hookUnitState) ended() bool {
	return s.gone() || s.active == "active" && s.sub == "exited" ||
		s.started && (s.active == "inactive" || s.active == "failed")
}

// gone reports whether systemd has forgotten the unit (reading it made a
// stub that is not loaded) or it is inactive after having run: its cgroup
// is empty either way.
func (s *hookUnitState) gone() bool {
	return s.load != "loaded" || s.started && s.active == "inactive"
}

// outcome says how the hook ended, as execute's errors do.
func (s *hookUnitState) outcome(timeout time.Duration, stopped bool, cause error) error {
	const killed = "it was killed with everything it started"
	switch {
	case stopped:
		return fmt.Errorf("interrupted (%v); %s", cause, killed)
	case s.result == "timeout":
		return fmt.Errorf("timed out after %s; %s", timeout, killed)
	case s.result == "exec" || s.result == "resources":
		return fmt.Errorf("cannot start: systemd could not execute it (result %q, exit status %d; its journal says why)", s.result, s.status)
	case s.code == 2 || s.code == 3: // CLD_KILLED, CLD_DUMPED
		return fmt.Errorf("killed by signal %s", unix.SignalName(unix.Signal(s.status)))
	case s.code == 1 && s.status != 0: // CLD_EXITED
		return fmt.Errorf("exit status %d", s.status)
	case s.result == "success":
		return nil
	}
	return fmt.Errorf("cannot start: its unit failed with result %q", s.result)
}

// useUnit reports whether hooks run in transient units, by n's isolation:
// for IsolationAuto, whether PID 1 is systemd.
func (n *Notifier) useUnit() bool {
	switch n.isolation {
	case IsolationUnit:
		return true
	case IsolationCgroup:
		return false
	}
	return systemdBooted()
}

// noUnit logs, once, why hooks run as the daemon's children although
// systemd is PID 1.
func (n *Notifier) noUnit(err error) {
	n.noUnitOnce.Do(func() {
		n.log.Warn("hooks run as the daemon's children, each in a cgroup of its own, inheriting the daemon's sandbox: systemd could not be asked to run them in units of their own",
			"error", errors.Unwrap(err))
	})
}

// executeUnit is execute for a hook run in a transient unit: it reads the
// hook's output while it runs, and fills res. An *errNoUnit means systemd
// could not be asked to run it: res is untouched and the pipes still open.
func (n *Notifier) executeUnit(ctx context.Context, path string, in, outR, outW, errR, errW *os.File, env []string, res *result) error {
	u, err := n.startUnit(ctx, path, in, outW, errW, env)
	var nu *errNoUnit
	if errors.As(err, &nu) {
		return err
	}
	outW.Close()
	errW.Close()
	if err != nil {
		res.err = err
		return nil
	}
	readers := make(chan struct{}, 2)
	go func() { res.stdout.readFrom(outR); readers <- struct{}{} }()
	go func() { res.stderr.readFrom(errR); readers <- struct{}{} }()
	res.err = u.wait(ctx, n.timeout)
	// Everything in the unit's cgroup is dead, and systemd lets go of its
	// copies of the pipes with the unit: they reach EOF at once.
	deadline := time.Now().Add(pipeGrace)
	_ = outR.SetReadDeadline(deadline)
	_ = errR.SetReadDeadline(deadline)
	<-readers
	<-readers
	if res.err != nil {
		if last := res.stderr.lastLine(); last != "" {
			res.err = fmt.Errorf("%w (stderr: %s)", res.err, last)
		}
	}
	return nil
}
