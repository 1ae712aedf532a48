// Package demo implements `fshealth demo`: it makes a scratch ext4 file
// system on a loop device, watches it, breaks it in three real ways and shows
// each error as `fshealth watch` would, then removes everything.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/watch"
)

// Options configure a demo run.
type Options struct {
	// Out receives the narration and the events.
	Out io.Writer
	// Logger receives the watcher's log.
	Logger *slog.Logger
	// Format appends one event in the chosen output format.
	Format func([]byte, *event.Event) []byte
	// Timeout bounds the wait for each event; 10s if zero.
	Timeout time.Duration
}

// Run runs the demo. It must run as root in a private mount namespace (see
// package mountns), so that the scratch mount cannot outlive it.
func Run(ctx context.Context, o Options) (err error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root: it attaches a loop device, mounts a file system and listens with fanotify")
	}
	for _, tool := range []string{"mkfs.ext4", "debugfs"} {
		if _, err := loopfs.FindTool(tool); err != nil {
			return fmt.Errorf("the demo needs %s (Debian package e2fsprogs): %w", tool, err)
		}
	}
	say := func(format string, args ...any) { fmt.Fprintf(o.Out, "==> "+format+"\n", args...) }

	dir, err := os.MkdirTemp("", "fshealth-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	img, err := loopfs.Create(dir, "ext4", 64<<20, "-L", "fshealth-demo")
	if err != nil {
		return err
	}
	defer func() {
		if rerr := img.Remove(); rerr != nil && err == nil {
			err = rerr
		}
	}()
	mnt := filepath.Join(dir, "mnt")

	// Populate, then corrupt one inode offline, as a failing disk or a bug
	// would.
	if err := img.Mount(mnt, "errors=continue"); err != nil {
		return err
	}
	if err := populate(mnt); err != nil {
		return err
	}
	if err := img.Unmount(); err != nil {
		return err
	}
	if err := img.Debugfs("sif data/broken mode 0xff"); err != nil {
		return fmt.Errorf("corrupting data/broken: %w", err)
	}
	if err := img.Mount(mnt, "errors=continue"); err != nil {
		return err
	}
	say("scratch ext4 file system %s on %s, mounted at %s (errors=continue)", filepath.Base(img.File), img.Dev, mnt)

	events := make(chan event.Event, 64)
	var line []byte
	sink := func(evs []event.Event) error {
		line = line[:0]
		for i := range evs {
			line = o.Format(line, &evs[i])
		}
		if _, err := o.Out.Write(line); err != nil {
			return err
		}
		for _, e := range evs {
			select {
			case events <- e:
			default: // the demo only waits for what it caused
			}
		}
		return nil
	}
	onPath := func(e *event.Event) { sink([]event.Event{*e}) }
	w, err := watch.New(watch.Config{Paths: []string{mnt}, Logger: o.Logger, KernelLog: true, Sink: sink, OnPath: onPath})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	defer func() {
		stop()
		if rerr := <-runErr; rerr != nil && err == nil {
			err = rerr
		}
	}()
	say("watching it for FAN_FS_ERROR; now breaking it three ways")

	wait := func(kind string, errno syscall.Errno) error {
		deadline := time.After(o.Timeout)
		for {
			select {
			case e := <-events:
				if e.Kind == kind && e.Errno == int(errno) {
					return nil
				}
			case err := <-runErr:
				runErr <- err
				return fmt.Errorf("watcher stopped: %v", err)
			case <-deadline:
				if kind == event.KindPath {
					return fmt.Errorf("no path event within %v", o.Timeout)
				}
				return fmt.Errorf("no %s event within %v", errno, o.Timeout)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	say("1/3 superblock-level error: writing to %s/trigger_fs_error", img.SysfsDir())
	if err := img.TriggerError("fshealth demo: simulated superblock error"); err != nil {
		return err
	}
	if err := wait(event.KindError, syscall.EUCLEAN); err != nil {
		return err
	}

	broken := filepath.Join(mnt, "data/broken")
	say("2/3 corrupted inode: looking up %s, whose mode debugfs set to 0xff", broken)
	_, lerr := os.Lstat(broken)
	if !errors.Is(lerr, syscall.EUCLEAN) {
		return fmt.Errorf("looking up the corrupted inode gave %v, want EUCLEAN", lerr)
	}
	if err := wait(event.KindError, syscall.EUCLEAN); err != nil {
		return err
	}
	say("   its path is looked up read-only from the device (debugfs -c), never by opening the inode, which would raise a new error")
	if err := wait(event.KindPath, 0); err != nil {
		return err
	}
	if err := ownErrors(img, 2, o.Timeout, say); err != nil {
		return err
	}

	say("3/3 aborted file system: mount -o remount,ro,abort %s", mnt)
	if err := img.Abort(); err != nil {
		return err
	}
	if err := wait(event.KindError, syscall.ESHUTDOWN); err != nil {
		return err
	}
	say("done: three errors caught; unmounting and removing the scratch file system")
	return nil
}

// ownErrors checks that ext4 counted exactly the errors the demo caused
// (want): fshealth must raise none of its own. ext4 publishes its count a
// moment after an error, so it is read until it reaches want.
func ownErrors(img *loopfs.Image, want int, timeout time.Duration, say func(string, ...any)) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := img.ErrorsCount()
		if err != nil {
			return err
		}
		if n > want {
			return fmt.Errorf("ext4 counted %d errors, but the demo caused %d: something else raised errors", n, want)
		}
		if n == want {
			say("   ext4 has counted %d errors: the %d the demo caused, none raised by fshealth", n, want)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ext4 counted %d errors within %v, want %d", n, timeout, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// populate writes a few files, among them the one to corrupt.
func populate(mnt string) error {
	if err := os.Mkdir(filepath.Join(mnt, "data"), 0o755); err != nil {
		return err
	}
	for name, body := range map[string]string{"report.txt": "all good\n", "broken": "soon unreadable\n"} {
		if err := os.WriteFile(filepath.Join(mnt, "data", name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
