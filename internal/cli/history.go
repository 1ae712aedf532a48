package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/daemon"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/smart"
	"github.com/fshealth/fshealth/internal/store"
)

// parseSince accepts a duration back from now ("90m", "24h", "7d") or a
// time ("2026-11-23", "2026-11-23T10:00:00Z").
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.ParseFloat(d, 64); err == nil && n >= 0 {
			return now.Add(-time.Duration(n * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration (90m, 24h, 7d) or a time (2026-11-23, 2026-11-23T10:00:00Z)", s)
}

func newEventsCmd(g *globals) *cobra.Command {
	var since, fs string
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "events [--since DUR|TIME] [--fs MOUNTPOINT|UUID|DEVICE] [--json]",
		Short: "Show the error history the daemon recorded",
		Long: `Show the file system errors the daemon has recorded, oldest first.

It reads the daemon's history database (in --state-dir) and works while the
daemon runs. --json prints one event per line, the same object 'watch --json'
prints plus its "id". It shows the newest 1000 events that match unless
--limit says otherwise (--limit 0: all); when it showed exactly the limit it
says so on standard error, because older ones may have been left out.`,
		Example: `  fshealth events --since 24h
  fshealth events --fs /srv --json | jq -r .path
  fshealth events --fs /srv --limit 0       # every event of /srv, however many`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			st, err := store.OpenReadOnly(store.PathIn(g.stateDir()))
			if err != nil {
				return err
			}
			defer st.Close()
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 (all) or a positive number of events", limit)
			}
			q := store.EventQuery{Since: from, FS: fs, Limit: limit}
			// limited says so when the limit may have left older events out.
			limited := func(n int) {
				if limit > 0 && n == limit {
					fmt.Fprintf(g.stderr, "the newest %d events are shown; older ones may be left out (--limit 0 shows all, --since narrows)\n", limit)
				}
			}
			if asJSON {
				// Buffered: one write(2) per 64 KiB, not per event.
				w := bufio.NewWriterSize(g.stdout, 64<<10)
				n := 0
				err := st.ScanRawEvents(cmd.Context(), q, func(raw []byte) error {
					n++
					w.Write(raw)
					return w.WriteByte('\n')
				})
				if err != nil {
					return err
				}
				if err := w.Flush(); err != nil {
					return err
				}
				limited(n)
				return nil
			}
			// Streamed: the table is aligned (and written, 64 KiB at a
			// time) per block of eventBlock rows, so a long history
			// starts printing at once and is never held in memory.
			w := bufio.NewWriterSize(g.stdout, 64<<10)
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tDEVICE\tMOUNTPOINT\tERROR\tCOUNT\tINODE\tPATH")
			n := 0
			err = st.ScanEvents(cmd.Context(), q, func(e *event.Event, _ []byte) error {
				n++
				if err := writeEventRow(tw, e); err != nil {
					return err
				}
				if n%eventBlock == 0 {
					return tw.Flush()
				}
				return nil
			})
			if err != nil {
				return err
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintln(g.stderr, "no events recorded", describeQuery(since, fs))
			}
			limited(n)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only events since this long ago (24h, 7d) or this time (2026-11-23)")
	cmd.Flags().StringVar(&fs, "fs", "", "only events of the file system with this mount point, UUID or device")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per event (NDJSON)")
	cmd.Flags().IntVar(&limit, "limit", defaultEventLimit, "show only the newest N events (0: all)")
	return cmd
}

// defaultEventLimit is how many of the newest events `fshealth events`
// shows without --limit: a year of a fleet host's history is a million.
const defaultEventLimit = 1000

// eventBlock is how many rows of the events table are aligned together.
const eventBlock = 1000

func describeQuery(since, fs string) string {
	var parts []string
	if since != "" {
		parts = append(parts, "since "+since)
	}
	if fs != "" {
		parts = append(parts, "on "+event.Safe(fs))
	}
	return strings.Join(parts, " ")
}

func writeEventRow(w io.Writer, e *event.Event) error {
	if e.Kind == event.KindOverflow {
		_, err := fmt.Fprintf(w, "%s\t-\t-\tQUEUE OVERFLOW\t-\t-\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), event.Clean(e.Message))
		return err
	}
	mp, ino, path := "-", "-", "-"
	if len(e.Mountpoints) > 0 {
		mp = event.Safe(e.Mountpoints[0])
	}
	if e.Inode != nil {
		ino = strconv.FormatUint(*e.Inode, 10)
	}
	if e.Path != "" {
		path = event.Safe(e.Path)
	}
	_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"),
		event.Safe(e.Device), mp, e.Error, e.ErrorCount, ino, path)
	return err
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, files bool
	cmd := &cobra.Command{
		Use:   "status [--files] [--json]",
		Short: "Show each file system's health and whether the daemon runs",
		Long: `Show every file system the daemon watches or has seen: its health (ok, or
errors seen: since when, how many, the last one), the last recovery action,
the alert delivery backlog, and whether the daemon is running.

--files lists, for each file system, the files that reported errors since it
was last healthy (like zpool status -v): inode, generation, path (found
read-only on the device, never by opening the file), errno, errors, first
and last time; and whether the file was deleted or its inode reused since.
'fshealth resolve' empties the list. --json always has the lists.

Exit status: 0 when every file system is healthy and the daemon runs; 1 when
a file system has had errors since it was last healthy, or the history is
not being recorded; 3 when the daemon is not running (and nothing is
unhealthy); 4 when the status cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.stateDir()
			pid, err, rt, _ := daemon.DaemonPID(dir)
			if err != nil {
				return err
			}
			st, err := store.OpenReadOnly(store.PathIn(dir))
			if err != nil {
				if rt != nil && rt.Degraded != nil {
					// The daemon runs, degraded: say so before the
					// reason the history cannot be read.
					fmt.Fprintf(g.stdout, "daemon: running (pid %d), state in %s\n", rt.PID, dir)
					writeHistoryState(g.stdout, rt, dir)
					return err
				}
				if pid == 0 {
					return fmt.Errorf("the daemon is not running and has no history in %s: %w", dir, err)
				}
				return err
			}
			defer st.Close()
			fss, err := st.Filesystems(cmd.Context())
			if err != nil {
				return err
			}
			backlog, err := st.Backlog(cmd.Context())
			if err != nil {
				return err
			}
			last, err := lastEvents(cmd.Context(), st, fss)
			if err != nil {
				return err
			}
			var damaged []store.DamagedFile
			if files || asJSON {
				if damaged, err = st.DamagedFiles(cmd.Context(), ""); err != nil {
					return err
				}
			}
			var progress map[int64]actions.Progress
			if pid != 0 {
				if progress, err = daemon.ReadActionProgress(dir); err != nil {
					fmt.Fprintf(g.stderr, "fshealth: the progress of recovery actions cannot be read: %v\n", err)
				}
			}
			disks, err := daemon.ReadDiskHealth(dir)
			if err != nil {
				fmt.Fprintf(g.stderr, "fshealth: the disks' health cannot be read: %v\n", err)
			}
			if asJSON {
				doc := statusJSON(pid, dir, fss, backlog, progress)
				doc.Disks = disks
				doc.History = historyDoc(rt, dir)
				addLastPaths(&doc, fss, last)
				addDamagedFiles(&doc, fss, damaged)
				if err := json.NewEncoder(g.stdout).Encode(doc); err != nil {
					return err
				}
				return statusExit(pid, rt, fss)
			}
			if err := writeStatus(g.stdout, pid, dir, fss, backlog, last, progress); err != nil {
				return err
			}
			if files {
				writeDamagedFiles(g.stdout, fss, damaged, time.Local)
			}
			writeDiskStatus(g.stdout, disks)
			writeHistoryState(g.stdout, rt, dir)
			return statusExit(pid, rt, fss)
		},
	}
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		var ee *exitError
		if err != nil && !errors.As(err, &ee) {
			return &exitError{code: 4, err: err}
		}
		return err
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as one JSON object")
	cmd.Flags().BoolVar(&files, "files", false, "list the files that reported errors since each file system was last healthy")
	return cmd
}

// statusExit is status's exit status, after it printed: 1 when a file
// system has had errors since it was last healthy or the history is not
// recorded, else 3 when the daemon is not running, else 0.
func statusExit(pid int, rt *daemon.RuntimeStatus, fss []store.FilesystemStatus) error {
	for _, f := range fss {
		if !f.FirstError.IsZero() {
			return &exitError{code: 1, err: errSilent}
		}
	}
	if rt != nil && rt.Degraded != nil {
		return &exitError{code: 1, err: errSilent}
	}
	if pid == 0 {
		return &exitError{code: 3, err: errSilent}
	}
	return nil
}

// statusDoc is the JSON form of `fshealth status`.
type statusDoc struct {
	Daemon struct {
		Running  bool   `json:"running"`
		PID      int    `json:"pid,omitempty"`
		StateDir string `json:"state_dir"`
	} `json:"daemon"`
	Filesystems []fsDoc         `json:"filesystems"`
	Deliveries  []store.Backlog `json:"deliveries"`
	History     histDoc         `json:"history"`
	// Disks is each disk's own health (smartctl), by device node, as the
	// daemon last read it.
	Disks map[string]*smart.Health `json:"disks,omitempty"`
}

// histDoc says whether the history is recorded: "recorded", or
// "degraded: history not recorded since …" while the daemon keeps it in
// memory; and which damaged databases were moved aside.
type histDoc struct {
	State        string           `json:"state"`
	Degraded     *daemon.Degraded `json:"degraded,omitempty"`
	MemoryEvents int64            `json:"memory_events,omitempty"`
	MovedAside   []string         `json:"moved_aside"`
}

func historyDoc(rt *daemon.RuntimeStatus, dir string) histDoc {
	h := histDoc{State: "recorded", MovedAside: store.MovedAside(dir)}
	if h.MovedAside == nil {
		h.MovedAside = []string{}
	}
	if rt != nil && rt.Degraded != nil {
		h.State, h.Degraded, h.MemoryEvents = rt.Degraded.Summary(), rt.Degraded, rt.MemoryEvents
	}
	return h
}

// writeHistoryState adds to the status what is wrong with the history.
func writeHistoryState(w io.Writer, rt *daemon.RuntimeStatus, dir string) {
	h := historyDoc(rt, dir)
	if h.Degraded != nil {
		fmt.Fprintf(w, "\nhistory: %s\n  (%d events kept in memory; they are committed when the state directory works again)\n",
			event.Clean(h.State), h.MemoryEvents)
	}
	for _, p := range h.MovedAside {
		fmt.Fprintf(w, "\nhistory: a damaged database was moved aside to %s and a new one started\n", event.Safe(p))
	}
}

type fsDoc struct {
	UUID        string     `json:"uuid"`
	Device      string     `json:"device"`
	FSType      string     `json:"fstype"`
	Label       string     `json:"label,omitempty"`
	Mountpoints []string   `json:"mountpoints"`
	Watched     bool       `json:"watched"`
	Health      string     `json:"health"`
	Errors      uint64     `json:"errors"`
	TotalErrors uint64     `json:"total_errors"`
	Events      uint64     `json:"events"`
	FirstError  *time.Time `json:"first_error,omitempty"`
	LastError   *time.Time `json:"last_error,omitempty"`
	LastErrno   string     `json:"last_errno,omitempty"`
	LastEventID string     `json:"last_event_id,omitempty"`
	lastPath
	LastAction *actionDoc `json:"last_action,omitempty"`
	// DamagedFiles are the files that reported errors since it was last
	// healthy, most recent error first.
	DamagedFiles []store.DamagedFile `json:"damaged_files"`
}

type actionDoc struct {
	Name    string `json:"name"`
	State   string `json:"state"`
	Outcome string `json:"outcome"`
	DryRun  bool   `json:"dry_run"`
	// Started is when it started (a pending action with a start time is
	// running); Finished when it ended.
	Started  *time.Time `json:"started,omitempty"`
	Finished time.Time  `json:"finished"`
	// Progress is how far a running action has got, where the kernel or
	// its program tells (a btrfs scrub, e2fsck given {progress_fd}).
	Progress *actions.Progress `json:"progress,omitempty"`
}

// runningProgress returns the progress of a, if it is running and its
// daemon published one.
func runningProgress(a *store.Action, progress map[int64]actions.Progress) (actions.Progress, bool) {
	if a.State != store.StatePending || a.Started.IsZero() {
		return actions.Progress{}, false
	}
	p, ok := progress[a.ID]
	return p, ok
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func statusJSON(pid int, dir string, fss []store.FilesystemStatus, backlog []store.Backlog, progress map[int64]actions.Progress) statusDoc {
	var d statusDoc
	d.Daemon.Running, d.Daemon.PID, d.Daemon.StateDir = pid != 0, pid, dir
	d.Filesystems = []fsDoc{}
	for _, f := range fss {
		fd := fsDoc{UUID: f.UUID, Device: f.Device, FSType: f.FSType, Label: f.Label, Mountpoints: f.Mountpoints,
			Watched: f.Watched, Health: f.Health, Errors: f.Errors, TotalErrors: f.TotalErrors, Events: f.Events,
			FirstError: timePtr(f.FirstError), LastError: timePtr(f.LastError), LastErrno: f.LastErrno, LastEventID: f.LastEventID}
		if fd.Mountpoints == nil {
			fd.Mountpoints = []string{}
		}
		fd.DamagedFiles = []store.DamagedFile{}
		if a := f.LastAction; a != nil {
			fd.LastAction = &actionDoc{Name: a.Name, State: a.State, Outcome: a.Outcome, DryRun: a.DryRun, Started: timePtr(a.Started), Finished: a.Finished}
			if p, ok := runningProgress(a, progress); ok {
				fd.LastAction.Progress = &p
			}
		}
		d.Filesystems = append(d.Filesystems, fd)
	}
	d.Deliveries = backlog
	if d.Deliveries == nil {
		d.Deliveries = []store.Backlog{}
	}
	return d
}

func writeStatus(w io.Writer, pid int, dir string, fss []store.FilesystemStatus, backlog []store.Backlog, lastEv map[string]event.Event, progress map[int64]actions.Progress) error {
	if pid != 0 {
		fmt.Fprintf(w, "daemon: running (pid %d), state in %s\n\n", pid, dir)
	} else {
		fmt.Fprintf(w, "daemon: NOT running (state in %s)\n\n", dir)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tMOUNTPOINT\tTYPE\tHEALTH\tERRORS\tSINCE\tLAST ERROR\tRECOVERY")
	for _, f := range fss {
		mp := "-"
		if len(f.Mountpoints) > 0 {
			mp = event.Safe(f.Mountpoints[0])
		}
		if !f.Watched {
			mp += " (not watched)"
		}
		health, since, last := "ok", "-", "-"
		if f.Health != store.HealthOK {
			health = "ERRORS"
			since = f.FirstError.Local().Format("2006-01-02 15:04")
		}
		if !f.LastError.IsZero() {
			last = f.LastError.Local().Format("2006-01-02 15:04:05") + " " + f.LastErrno
			if e, ok := lastEv[f.LastEventID]; ok {
				last += lastPathText(&e)
			}
		}
		rec := "-"
		if a := f.LastAction; a != nil {
			rec = a.Name + ": " + event.Clean(a.Outcome)
			if a.State == store.StatePending && !a.Started.IsZero() {
				rec = fmt.Sprintf("%s: running since %s (%s)", a.Name, a.Started.Local().Format("15:04:05"),
					time.Since(a.Started).Round(time.Second))
				if p, ok := runningProgress(a, progress); ok {
					rec += ", " + p.String()
				}
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", event.Safe(f.Device), mp, f.FSType, health, f.Errors, since, last, rec)
	}
	tw.Flush()
	if len(backlog) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANNEL\tPENDING\tGIVEN UP\tOLDEST\tLAST ERROR")
		for _, b := range backlog {
			oldest := "-"
			if !b.Oldest.IsZero() {
				oldest = b.Oldest.Local().Format("2006-01-02 15:04:05")
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", b.Channel, b.Pending, b.Failed, oldest, event.Clean(b.LastError))
		}
		tw.Flush()
	}
	return nil
}
