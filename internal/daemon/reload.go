package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// ReloadVerdict is what the daemon publishes in the runtime directory after
// each reload (SIGHUP): whether the configuration was applied. `fshealth
// reload` (the unit's ExecReload=) waits for the verdict of a reload that
// began after its signal, so `systemctl reload` fails when the daemon
// refuses the configuration.
type ReloadVerdict struct {
	PID int `json:"pid"`
	// Began is when the daemon began reading the configuration, on
	// CLOCK_MONOTONIC in microseconds (the MONOTONIC_USEC= it sent with
	// RELOADING=1).
	Began uint64 `json:"began_monotonic_usec"`
	// Applied is whether the configuration is now in use; Error says why
	// not.
	Applied bool      `json:"applied"`
	Error   string    `json:"error,omitempty"`
	Time    time.Time `json:"time"`
}

// ReloadFile is the ReloadVerdict file of the daemon with process id pid,
// in the runtime directory (not in the state directory, whose file system
// may be read-only, and which a refused configuration may name
// differently).
func ReloadFile(pid int) string {
	return filepath.Join(RuntimeDir(), "reload-"+strconv.Itoa(pid)+".json")
}

// MonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd's
// MONOTONIC_USEC= and ReloadVerdict.Began use.
func MonotonicUsec() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Sec)*1e6 + uint64(ts.Nsec)/1e3
}

// reloadOnSignal is Reload for SIGHUP: it tells the service manager that
// the daemon reloads (RELOADING=1 with MONOTONIC_USEC=, as Type=notify-reload
// requires, then READY=1 whatever the outcome: the daemon runs on, with the
// new configuration or the old one) and publishes the verdict.
func (d *Daemon) reloadOnSignal() {
	began := MonotonicUsec()
	// Before READY=1 at start, a READY=1 here would end the start early.
	ready := d.ready.Load()
	if ready {
		d.notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatUint(began, 10))
	}
	err := d.Reload()
	if ready {
		d.notify(sddaemon.SdNotifyReady)
	}
	v := ReloadVerdict{PID: os.Getpid(), Began: began, Applied: err == nil, Time: time.Now().UTC()}
	if err != nil {
		v.Error = err.Error()
	}
	if werr := writeReloadVerdict(ReloadFile(v.PID), &v); werr != nil {
		d.log.Error("could not publish the reload's outcome: `fshealth reload` will not learn it", "err", werr)
	}
}

// notify sends state to the service manager, if there is one.
func (d *Daemon) notify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		d.log.Warn("could not notify the service manager", "err", err)
	}
}

func writeReloadVerdict(path string, v *ReloadVerdict) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// ErrReloadRefused is wrapped by WaitReload's error when the daemon refused
// the configuration.
var ErrReloadRefused = errors.New("the daemon refused the configuration and keeps running with its current one")

// WaitReload waits until the daemon pid publishes in its ReloadFile the verdict of a
// reload that began at or after since (MonotonicUsec, taken before the
// signal was sent), polling until ctx is done. It returns nil when the
// configuration was applied, an error wrapping ErrReloadRefused with the
// daemon's reason when it was refused, and ctx's error otherwise.
func WaitReload(ctx context.Context, pid int, since uint64) error {
	file := ReloadFile(pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		v, err := readReloadVerdict(file)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("reading the daemon's verdict %s: %w", file, err)
		case err == nil && v.PID == pid && v.Began >= since:
			if !v.Applied {
				return fmt.Errorf("%w: %s", ErrReloadRefused, v.Error)
			}
			return nil
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("the daemon (pid %d) exited before it reported the reload's outcome", pid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the daemon (pid %d) did not report the reload's outcome in %s: %w", pid, file, ctx.Err())
		case <-t.C:
		}
	}
}

func readReloadVerdict(path string) (*ReloadVerdict, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var v ReloadVerdict
	if err := json.NewDecoder(f).Decode(&v); err != nil {
		return nil, fmt.Errorf("not a reload verdict: %v", err)
	}
	return &v, nil
}
