package watch

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// follower runs a Watcher that watches everything and follows mounts with
// mode, reporting changes on a channel.
type follower struct {
	*collector
	changes chan Change
}

func startFollowing(t *testing.T, mode string, paths ...string) *follower {
	t.Helper()
	f := &follower{collector: &collector{t: t, events: make(chan event.Event, 1024)}, changes: make(chan Change, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := New(Config{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		FollowMounts: mode, Paths: paths,
		OnChange: func(c Change) {
			// Once the test ends, nobody takes changes any more.
			select {
			case f.changes <- snapshot(c):
			case <-ctx.Done():
			}
		},
		Sink: func(evs []event.Event) error {
			for _, e := range evs {
				f.events <- e
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if mode != FollowAuto && w.Following() != mode {
		t.Fatalf("following with %q, want %q", w.Following(), mode)
	}
	f.w = w
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

// snapshot copies the file systems of c: OnChange runs in the watcher's
// goroutine, which goes on changing them while the test looks.
func snapshot(c Change) Change {
	cp := func(l []*enrich.Filesystem) []*enrich.Filesystem {
		out := make([]*enrich.Filesystem, len(l))
		for i, fs := range l {
			info := *fs.Info
			m := *info.Filesystem
			info.Filesystem = &m
			out[i] = &enrich.Filesystem{Info: &info}
		}
		return out
	}
	return Change{Added: cp(c.Added), Removed: cp(c.Removed), Updated: cp(c.Updated)}
}

// watched returns a snapshot of the watched file systems, taken in Run's
// goroutine, which changes them.
func (f *follower) watched() []*enrich.Filesystem {
	f.t.Helper()
	got := make(chan []*enrich.Filesystem, 1)
	f.w.Do(func() { got <- snapshot(Change{Added: f.w.Watched()}).Added })
	select {
	case l := <-got:
		return l
	case <-time.After(waitTimeout):
		f.t.Fatalf("the watcher did not run a call within %v", waitTimeout)
		return nil
	}
}

// change waits for a change satisfying ok.
func (f *follower) change(what string, ok func(Change) bool) Change {
	f.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case c := <-f.changes:
			if ok(c) {
				return c
			}
		case <-deadline:
			f.t.Fatalf("no change %s within %v", what, waitTimeout)
		}
	}
}

func has(list []*enrich.Filesystem, dev string) *enrich.Filesystem {
	for _, fs := range list {
		if fs.Device == dev {
			return fs
		}
	}
	return nil
}

// nextFor returns the next event for device dev, skipping others (the
// host's file systems are watched too).
func (f *follower) nextFor(dev string) event.Event {
	f.t.Helper()
	for {
		if e := f.next(); e.Device == dev {
			return e
		}
	}
}

// followModes runs test with each way of following mounts this kernel
// has: fanotify mount events (Linux 6.15+) and mountinfo notifications.
func followModes(t *testing.T, test func(t *testing.T, mode string)) {
	testutil.RequireRoot(t)
	modes := []string{FollowMountinfo}
	if g, err := fanotify.NewMountGroup(); err == nil {
		g.Close()
		modes = append(modes, FollowFanotify)
	}
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) { test(t, mode) })
	}
}

func TestFollowMountAfterStart(t *testing.T) {
	followModes(t, func(t *testing.T, mode string) {
		testutil.CheckNoLeaks(t)
		dir := t.TempDir()
		im, err := loopfs.Create(dir, "ext4", 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { im.Remove() })
		f := startFollowing(t, mode)
		// A mount point with a space and a newline in its name.
		mnt := filepath.Join(dir, "late mount\npoint")
		if err := im.Mount(mnt, "errors=continue"); err != nil {
			t.Fatal(err)
		}
		c := f.change("adding the new file system", func(c Change) bool { return has(c.Added, im.Dev) != nil })
		if fs := has(c.Added, im.Dev); !slices.Equal(fs.Mountpoints, []string{mnt}) {
			t.Errorf("mount points %q, want %q", fs.Mountpoints, mnt)
		}
		if err := im.TriggerError("after start"); err != nil {
			t.Fatal(err)
		}
		e := f.nextFor(im.Dev)
		checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
		checkFS(t, e, im)
	})
}

// TestFollowBindMoveUnmount follows one file system through a remount, a
// bind mount, a move, an unmount of one of its mounts and a lazy unmount.
func TestFollowBindMoveUnmount(t *testing.T) {
	followModes(t, func(t *testing.T, mode string) {
		testutil.CheckNoLeaks(t)
		im := testutil.NewExt4(t, 0)
		f := startFollowing(t, mode)
		sub := filepath.Join(im.Mountpoint, "sub")
		os.Mkdir(sub, 0o755)
		base := t.TempDir()
		bind, moved := filepath.Join(base, "bind"), filepath.Join(base, "moved")
		os.Mkdir(bind, 0o755)
		os.Mkdir(moved, 0o755)

		// A remount keeps the superblock, and so the mark.
		if err := unix.Mount("", im.Mountpoint, "", unix.MS_REMOUNT|unix.MS_RDONLY, "errors=continue"); err != nil {
			t.Fatal(err)
		}
		im.TriggerError("read-only")
		checkFS(t, f.nextFor(im.Dev), im)
		if err := unix.Mount("", im.Mountpoint, "", unix.MS_REMOUNT, "errors=continue"); err != nil {
			t.Fatal(err)
		}

		if err := unix.Mount(sub, bind, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(bind, unix.MNT_DETACH); unix.Unmount(moved, unix.MNT_DETACH) })
		f.change("for the bind mount", func(c Change) bool {
			fs := has(c.Updated, im.Dev)
			return fs != nil && slices.Equal(fs.Mountpoints, []string{im.Mountpoint, bind})
		})
		im.TriggerError("bind")
		checkFS(t, f.nextFor(im.Dev), im, im.Mountpoint, bind)

		// A move is a detach and an attach.
		if err := unix.Mount(bind, moved, "", unix.MS_MOVE, ""); err != nil {
			t.Fatal(err)
		}
		f.change("for the move", func(c Change) bool {
			fs := has(c.Updated, im.Dev)
			return fs != nil && slices.Equal(fs.Mountpoints, []string{im.Mountpoint, moved})
		})
		im.TriggerError("moved")
		checkFS(t, f.nextFor(im.Dev), im, im.Mountpoint, moved)

		if err := unix.Unmount(moved, 0); err != nil {
			t.Fatal(err)
		}
		f.change("for the unmount of the bind mount", func(c Change) bool {
			fs := has(c.Updated, im.Dev)
			return fs != nil && slices.Equal(fs.Mountpoints, []string{im.Mountpoint})
		})

		// A lazy unmount while a file is open: the superblock lives on,
		// unmounted, and its errors are still attributed.
		file, err := os.Open(im.Mountpoint)
		if err != nil {
			t.Fatal(err)
		}
		defer file.Close()
		if err := unix.Unmount(im.Mountpoint, unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		f.change("removing the lazily unmounted file system", func(c Change) bool { return has(c.Removed, im.Dev) != nil })
		if err := os.WriteFile(filepath.Join("/sys/fs/ext4", im.Name, "trigger_fs_error"), []byte("lazy"), 0); err != nil {
			t.Fatal(err)
		}
		e := f.nextFor(im.Dev)
		checkErr(t, e, syscall.EUCLEAN, "EUCLEAN", 1)
		// It is reported with the mount points it had, marked unmounted.
		if e.UUID == "" || !slices.Equal(e.Mountpoints, []string{im.Mountpoint}) || !e.Unmounted {
			t.Errorf("event of a lazily unmounted file system: uuid %q mountpoints %q unmounted %v", e.UUID, e.Mountpoints, e.Unmounted)
		}
		if txt := string(event.AppendText(nil, &e)); !strings.Contains(txt, "at "+im.Mountpoint+" (unmounted since)") {
			t.Errorf("text of the event does not say the file system was unmounted: %s", txt)
		}
		file.Close()
	})
}

// TestFollowConfiguredPaths: a configured path's file system, unmounted, is
// not replaced by the file system below its mount point; mounted again, it
// is watched again.
func TestFollowConfiguredPaths(t *testing.T) {
	followModes(t, func(t *testing.T, mode string) {
		testutil.CheckNoLeaks(t)
		a, b := testutil.NewExt4(t, 0), testutil.NewExt4(t, 0)
		mb := b.Mountpoint
		f := startFollowing(t, mode, a.Mountpoint, mb)
		if n := len(f.watched()); n != 2 {
			t.Fatalf("watching %d file systems, want 2", n)
		}
		dev := b.Dev
		if err := b.Unmount(); err != nil {
			t.Fatal(err)
		}
		c := f.change("removing the unmounted file system", func(c Change) bool { return has(c.Removed, dev) != nil })
		if len(c.Added) != 0 {
			t.Errorf("after the unmount of %s the watcher added %s (%s)", mb, c.Added[0].Device, c.Added[0].Mountpoints)
		}
		if err := b.Mount(mb, "errors=continue"); err != nil {
			t.Fatal(err)
		}
		f.change("watching it again once mounted", func(c Change) bool { return has(c.Added, b.Dev) != nil })
		if err := b.TriggerError("again"); err != nil {
			t.Fatal(err)
		}
		checkFS(t, f.nextFor(b.Dev), b)
		for _, fs := range f.watched() {
			if fs.Device != a.Dev && fs.Device != b.Dev {
				t.Errorf("also watching %s at %s", fs.Device, fs.Mountpoints)
			}
		}
	})
}

// TestFollowSkipsPseudoMounts: with fanotify mount events, mounts of
// pseudo file systems (tmpfs here), looked up with statmount(2), do not
// make the watcher re-read the mount table; other mounts do.
func TestFollowSkipsPseudoMounts(t *testing.T) {
	testutil.CheckNoLeaks(t)
	g, err := fanotify.NewMountGroup()
	var unsup *fanotify.UnsupportedError
	if errors.As(err, &unsup) {
		testutil.Skip(t, testutil.KernelLacks, "kernel has no mount events: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	f := startFollowing(t, FollowFanotify)
	before := f.w.rescans.Load()
	dir := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	// Unmounted at once, the mount could be gone before the watcher looks
	// it up, and an unknown mount is rescanned for: wait until the
	// follower has looked it up and queued it for the next rescan.
	queued := func() bool {
		f.w.mt.mu.Lock()
		defer f.w.mt.mu.Unlock()
		for _, op := range f.w.mt.ops {
			if op.kind == opAttach && op.m.Point == dir && op.m.FSType == "tmpfs" {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(waitTimeout); !queued(); time.Sleep(5 * time.Millisecond) {
		if n := f.w.rescans.Load() - before; n != 0 || time.Now().After(deadline) {
			t.Fatalf("the tmpfs mount at %s is not queued for the next rescan (%d rescans since it was mounted)", dir, n)
		}
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	// A mount the watcher must look at, after the tmpfs ones: once it is
	// seen, the tmpfs events have been handled.
	im := testutil.NewExt4(t, 0)
	f.change("adding the ext4 file system", func(c Change) bool { return has(c.Added, im.Dev) != nil })
	if n := f.w.rescans.Load() - before; n != 1 {
		t.Errorf("%d rescans for a tmpfs mount, its unmount and an ext4 mount, want 1", n)
	}
}

// TestFollowManyMounts: one file system bind-mounted hundreds of times
// before start, a thousand more added in bulk while running, then
// hundreds removed in bulk: the watcher follows, and an error on the file
// system arrives once, with every mount point it has.
func TestFollowManyMounts(t *testing.T) {
	followModes(t, func(t *testing.T, mode string) {
		testutil.CheckNoLeaks(t)
		im := testutil.NewExt4(t, 0)
		other := testutil.NewExt4(t, 0)
		base := t.TempDir()
		points := []string{im.Mountpoint}
		var f *follower
		bind := func(n int) {
			t.Helper()
			for range n {
				p := filepath.Join(base, strconv.Itoa(len(points)))
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := unix.Mount(im.Mountpoint, p, "", unix.MS_BIND, ""); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
				points = append(points, p)
			}
		}
		// withAll waits for a change after which the file system has
		// exactly the mount points in points.
		withAll := func(what string) {
			t.Helper()
			want := slices.Sorted(slices.Values(points))
			f.change(what, func(c Change) bool {
				fs := has(c.Updated, im.Dev)
				return fs != nil && slices.Equal(slices.Sorted(slices.Values(fs.Mountpoints)), want)
			})
		}
		bind(300)
		f = startFollowing(t, mode)
		watched := has(f.watched(), im.Dev)
		if watched == nil || len(watched.Mountpoints) != len(points) {
			t.Fatalf("at start: watching %v, want %d mount points", watched, len(points))
		}
		bind(1000)
		withAll("for 1000 bind mounts added")
		for _, p := range points[1:401] {
			if err := unix.Unmount(p, 0); err != nil {
				t.Fatal(err)
			}
		}
		points = slices.Delete(points, 1, 401)
		withAll("for 400 bind mounts removed")

		if err := im.TriggerError("many mounts"); err != nil {
			t.Fatal(err)
		}
		// An error on another file system, raised after: once its event
		// is in, every event of the first one is.
		if err := other.TriggerError("after"); err != nil {
			t.Fatal(err)
		}
		var got []event.Event
		for {
			e := f.next()
			if e.Device == other.Dev {
				break
			}
			if e.Device == im.Dev {
				got = append(got, e)
			}
		}
		if len(got) != 1 {
			t.Fatalf("%d events for the error on the file system with %d mount points, want 1", len(got), len(points))
		}
		checkErr(t, got[0], syscall.EUCLEAN, "EUCLEAN", 1)
		if !slices.Equal(slices.Sorted(slices.Values(got[0].Mountpoints)), slices.Sorted(slices.Values(points))) {
			t.Errorf("the event has %d mount points, want the %d the file system has", len(got[0].Mountpoints), len(points))
		}
	})
}
