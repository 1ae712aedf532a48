package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/watch"
)

func newWatchCmd(g *globals) *cobra.Command {
	var asJSON, kernelLog bool
	cmd := &cobra.Command{
		Use:   "watch [--json] [PATH...]",
		Short: "Show file system errors as they happen",
		Long: `Watch file systems for errors and print one line per error as it happens.

With no PATH, every mounted file system that can be marked is watched, once per
file system; pseudo file systems (proc, sysfs, tmpfs, ...) are skipped. Which
file systems are watched, and which cannot be and why, is logged on stderr.
With PATHs, the file systems holding those paths are watched, and a PATH that
cannot be watched is an error.

When all file systems are marked, fshealth logs that it is ready and, if
$NOTIFY_SOCKET is set, tells the service manager READY=1.

Events are never merged or dropped by fshealth: error_count says how many
errors the kernel folded into one event, and a kernel queue overflow is
reported as an event of its own.

The kernel log (/dev/kmsg) is read too: the message the kernel logged about
an error is shown with its event, and errors that only the kernel log
reports (XFS before Linux 7.0, btrfs, I/O errors of the block layer) are
shown as events with source "kmsg"; btrfs device error counters that go up
are shown with source "btrfs-counters". One error is never shown twice.

fshealth never opens an inode an error is about (loading a corrupted inode
is itself a new file system error). On ext4 the inode's path is looked up
read-only from the device (debugfs -c) while the error is already shown with
"path pending"; the path follows as a line of its own (kind "path").

Needs root (CAP_SYS_ADMIN; CAP_SYSLOG for the kernel log).`,
		Example: `  fshealth watch
  fshealth watch --json /srv /var/lib/postgresql | jq .`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runWatch(ctx, g, watch.Config{Paths: args, KernelLog: kernelLog, Redundancy: true}, asJSON, g.stdout, nil)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per event (NDJSON)")
	cmd.Flags().BoolVar(&kernelLog, "kernel-log", true, "also read the kernel log (/dev/kmsg); --kernel-log=false to use fanotify alone")
	return cmd
}

// runWatch watches what cfg says and writes events to out until ctx is
// done. ready, if not nil, is called once every mark is in place.
func runWatch(ctx context.Context, g *globals, cfg watch.Config, asJSON bool, out io.Writer, ready func()) error {
	log := g.logger()
	var line []byte
	sink := func(evs []event.Event) error {
		line = line[:0]
		for i := range evs {
			if asJSON {
				var err error
				if line, err = event.AppendJSON(line, &evs[i]); err != nil {
					return err
				}
			} else {
				line = event.AppendText(line, &evs[i])
			}
		}
		_, err := out.Write(line)
		return err
	}
	// A path looked up after its event, and ext4's record of errors read
	// after their events, are printed as events of their own, kind "path"
	// naming the inode and kind "ext4" (see docs/events.md).
	later := func(e *event.Event) {
		if err := sink([]event.Event{*e}); err != nil {
			log.Error("writing a "+e.Kind+" event", "err", err)
		}
	}
	cfg.Logger, cfg.Sink, cfg.OnPath, cfg.OnExt4 = log, sink, later, later
	w, err := watch.New(cfg)
	if err != nil {
		return err
	}
	defer w.Close()
	sent, err := daemon.SdNotify(false, daemon.SdNotifyReady)
	if err != nil {
		log.Warn("could not notify the service manager", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
	log.Info("ready", "filesystems", len(w.Watched()), "notified", sent)
	if ready != nil {
		ready()
	}
	return w.Run(ctx)
}
