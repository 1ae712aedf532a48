// Package daemon is `fshealth daemon`: it watches file systems with the
// watch package and turns every event into durable history, alerts that
// always arrive (through an outbox in the history database), and recovery
// actions, by policy. See docs/dev/daemon-design.md for the flow.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"github.com/fshealth/fshealth/internal/actions"
	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/config"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/metrics"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/policy"
	"github.com/fshealth/fshealth/internal/store"
	"github.com/fshealth/fshealth/internal/watch"
)

// Options configure a daemon run.
type Options struct {
	// ConfigPath is --config; empty means config.DefaultPath, which may be
	// missing (then the defaults apply).
	ConfigPath string
	// Overrides are the command-line flags that override the file.
	Overrides config.Overrides
	// Version is fshealth's version, for User-Agent headers and metrics.
	Version string
	// Logger receives the daemon's own log.
	Logger *slog.Logger
	// Stderr is where the journal channel writes outside systemd.
	Stderr io.Writer
	// Ready, if set, is called once the daemon is ready (tests).
	Ready func(*Daemon)
	// FollowMounts is watch.Config.FollowMounts (tests).
	FollowMounts string
	// KernelLogPath is watch.Config.KernelLogPath (tests).
	KernelLogPath string
}

// LoadConfig reads the configuration as the daemon would: the file (or the
// defaults, when the default file does not exist), then the flags.
func LoadConfig(path string, o config.Overrides) (*config.Config, error) {
	explicit := path != ""
	if !explicit {
		path = config.DefaultPath
	}
	c, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		c, err = config.Default(), nil
	}
	if err != nil {
		return nil, err
	}
	if err := c.ApplyOverrides(o); err != nil {
		return nil, err
	}
	return c, nil
}

// Daemon is a running daemon.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	store   *history
	metrics *metrics.Metrics
	watcher *watch.Watcher
	// watchdog is the progress watchdog, once the daemon is ready
	// (watchdog.go).
	watchdog atomic.Pointer[watchdog]
	// disks reads the disks' own health (diskhealth.go).
	disks   *diskHealth
	outbox  *outbox
	actions *actionRunner

	// mu guards the configuration, the channels and the policy engine,
	// which the sink, the policy timer and reload share.
	mu       sync.Mutex
	cfg      *config.Config
	channels *Channels
	engine   *policy.Engine
	// resend holds, per Alertmanager channel, when open incidents are next
	// re-sent to it.
	resend map[string]time.Time

	// kick wakes the policy timer when deadlines may have moved.
	kick chan struct{}
	// lastPrune is when retention last ran (Unix nanoseconds); the sink
	// and the policy timer both look at it.
	lastPrune atomic.Int64
	// reconcileTimer is the follow-up reconciliation after an overflow.
	reconcileTimer *time.Timer
	// overflows counts the overflow events seen (the follow-up
	// reconciliation logs it); only the watcher's goroutine uses it.
	overflows int
	// settleTimer runs the shortfall check settleAfter after the last
	// ext4 error event; settleUUIDs are the file systems it checks.
	// Guarded by mu.
	settleTimer *time.Timer
	settleUUIDs map[string]bool
	// targets maps file system keys to what actions need to know.
	targets sync.Map // string → actions.Target
	// btrfsDirty are btrfs error counters read since the last commit, by
	// file system UUID; the next batch records them with the events of
	// their increases. Guarded by mu.
	btrfsDirty map[string][]btrfs.DeviceStats
	// stateAlert is the open alert about fshealth's own state (degraded
	// history), nil if none. Guarded by mu.
	stateAlert *alert.Alert
	// ready is set once READY=1 is (about to be) sent.
	ready atomic.Bool
}

// Run runs the daemon until ctx is done or SIGINT/SIGTERM arrives.
func Run(ctx context.Context, o Options) error {
	// Catch SIGHUP from the start: its default action would kill the
	// daemon while it starts up (and systemd does not restart a service
	// that a SIGHUP ended). One that comes early reloads once ready.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR1: `fshealth resolve` recorded a request (requests.go).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)

	cfg, err := LoadConfig(o.ConfigPath, o.Overrides)
	if err != nil {
		return err
	}
	log := o.Logger
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	initCgroups(log)
	m := metrics.New(o.Version)
	// Whatever is wrong with the state directory, the daemon runs: with
	// its history in memory (degraded) if need be. Only another daemon
	// using it stops this one.
	st, err := openHistory(cfg.StateDir, log, m)
	if err != nil {
		return err
	}
	defer removeStatusFile(cfg.StateDir)
	defer os.Remove(ReloadFile(os.Getpid()))
	defer st.Close()
	chans, err := BuildChannels(cfg, o.Version, o.Stderr, log)
	if err != nil {
		return err
	}
	d := &Daemon{opts: o, log: log, store: st, metrics: m, cfg: cfg, channels: chans,
		engine: policy.FromConfig(cfg), kick: make(chan struct{}, 1), resend: map[string]time.Time{}}
	defer func() { d.channels.Close() }()
	if err := d.restoreIncidents(ctx); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	workCtx, cancelWork := context.WithCancel(ctx)
	defer cancelWork()

	if cfg.Metrics.Listen != "" {
		srv, err := d.serveMetrics(cfg.Metrics.Listen)
		if err != nil {
			return err
		}
		defer srv.Close()
	}

	// In a service's sandbox, report the host's mount points, not the
	// sandbox's bind mounts.
	hostView, err := mounts.OpenHostView("/proc")
	if err != nil {
		log.Warn("reporting this mount namespace's mount points, which may include the service sandbox's bind mounts", "err", err)
	}
	d.watcher, err = watch.New(watch.Config{Paths: cfg.Watch.Paths, Logger: log, Sink: d.sink, HostView: hostView,
		FollowMounts: o.FollowMounts, OnChange: func(c watch.Change) { d.mountsChanged(ctx, c) },
		KernelLog: cfg.Watch.KernelLog, KernelLogPath: o.KernelLogPath, KernelLogHold: cfg.Watch.KernelLogHold,
		BtrfsRestore: d.btrfsRestore, BtrfsSave: d.btrfsSave, OnPath: d.pathFound, OnExt4: d.ext4Recorded, Redundancy: true,
		RedundancyLost: d.redundancyLost})
	if err != nil {
		return err
	}
	defer d.watcher.Close()
	if err := d.recordWatched(ctx); err != nil {
		return err
	}

	d.outbox = newOutbox(st, log, d.metrics, d.channelMap, d.backoff)
	d.actions = &actionRunner{store: st, log: log, metrics: d.metrics, runner: d.actionRunner, target: d.target,
		wake: make(chan struct{}, 1), release: d.releaseFor, progress: NewProgressBoard(cfg.StateDir, log)}
	st.changed = d.historyChanged
	d.historyChanged()
	d.disks = newDiskHealth(log, cfg.StateDir)
	d.disks.askFilesystems(d.watcher.Watched())
	for _, f := range []func(context.Context){d.outbox.run, d.actions.run, d.policyLoop, st.run, d.disks.run} {
		wg.Add(1)
		go func() { defer wg.Done(); f(workCtx) }()
	}
	d.checkRecorded(ctx, d.watcher.Watched(), "")
	d.resumePathLookups(ctx)
	d.handleRequests(ctx)

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-workCtx.Done():
				return
			case <-hup:
				d.reloadOnSignal()
			case <-usr1:
				d.handleRequests(workCtx)
			}
		}
	}()

	d.ready.Store(true)
	sent, err := sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
	if err != nil {
		log.Warn("could not notify the service manager", "err", err)
	}
	d.startWatchdog(workCtx, &wg, sent, cfg.Metrics.Listen != "")
	log.Info("ready", "filesystems", len(d.watcher.Watched()), "state_dir", cfg.StateDir, "channels", len(chans.ByName))
	// What costs in proportion to the history runs once the daemon is
	// ready: reading the whole database to check it, then retention (in
	// small transactions, between which events commit).
	d.lastPrune.Store(time.Now().UnixNano())
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.checkIntegrity(workCtx)
		if workCtx.Err() == nil {
			d.prune(workCtx)
		}
	}()
	if o.Ready != nil {
		o.Ready(d)
	}
	err = d.watcher.Run(ctx)
	cancelWork()
	sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	log.Info("stopping")
	return err
}

// restoreIncidents reloads the policy engine's open incidents.
func (d *Daemon) restoreIncidents(ctx context.Context) error {
	open, err := d.store.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	var states []policy.IncidentState
	for _, in := range open {
		var s policy.IncidentState
		if len(in.State) == 0 {
			continue
		}
		if err := json.Unmarshal(in.State, &s); err != nil {
			d.log.Error("dropping an unreadable incident state", "incident", in.Key, "err", err)
			continue
		}
		states = append(states, s)
	}
	d.engine.Restore(states)
	if len(states) > 0 {
		d.log.Info("open incidents restored", "count", len(states))
	}
	return nil
}

// recordWatched tells the store which file systems are watched and notes
// what actions need about each.
func (d *Daemon) recordWatched(ctx context.Context) error {
	var fss []alert.Filesystem
	for _, w := range d.watcher.Watched() {
		f := alert.Filesystem{UUID: w.UUID, Device: w.Device, FSType: w.FSType, Mountpoints: w.Mountpoints, Label: w.Label}
		fss = append(fss, f)
		// Actions run in this mount namespace: their mount points are its
		// own, not the host's that are reported.
		own := make([]string, 0, len(w.Mounts))
		for _, m := range w.Mounts {
			own = append(own, m.Point)
		}
		if len(own) == 0 {
			own = w.Mountpoints
		}
		d.targets.Store(event.FilesystemKey(w.UUID, w.Device, w.FSID.String()),
			actions.Target{Device: w.Device, FSType: w.FSType, UUID: w.UUID, Mountpoints: own})
	}
	d.metrics.SetWatched(len(fss))
	if err := d.store.SetWatched(ctx, fss); err != nil {
		return err
	}
	if d.store.Degraded() != nil {
		// The in-memory history knows only what happened since; the
		// gauges keep what the database said.
		return nil
	}
	// Health gauges for every watched file system, from the history: a
	// healthy one shows 1, and one with errors keeps showing 0 (and its
	// last error time) across restarts.
	rows, err := d.store.Filesystems(ctx)
	if err != nil {
		return err
	}
	for _, f := range rows {
		if f.Watched {
			d.metrics.SetHealth(statusFS(&f), f.Health == store.HealthOK, f.LastError)
		}
	}
	return nil
}

// mountsChanged keeps the store, the metrics and the action targets in step
// with the watched file systems, and checks newly mounted ones for errors
// recorded while nobody watched. It runs in the watcher's goroutine.
func (d *Daemon) mountsChanged(ctx context.Context, c watch.Change) {
	if err := d.recordWatched(ctx); err != nil {
		d.log.Error("recording the watched file systems", "err", err)
	}
	if len(c.Added) > 0 {
		d.checkRecorded(ctx, c.Added, "")
		if d.disks != nil {
			d.disks.askFilesystems(c.Added)
		}
	}
}

func (d *Daemon) target(fsKey string) (actions.Target, bool) {
	v, ok := d.targets.Load(fsKey)
	if !ok {
		return actions.Target{}, false
	}
	return v.(actions.Target), true
}

func (d *Daemon) channelMap() map[string]alert.Notifier {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.channels.ByName
}

func (d *Daemon) backoff() (Backoff, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cfg.Delivery
	return Backoff{Initial: c.InitialBackoff, Max: c.MaxBackoff}, c.MaxAge
}

func (d *Daemon) actionRunner() *actions.Runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &actions.Runner{DryRun: d.cfg.Actions.DryRun, DefaultTimeout: d.cfg.Actions.Timeout, Logger: d.log}
}

// btrfsRestore returns the btrfs error counters recorded for a file
// system before, so that increases while the daemon was stopped are
// reported when it starts.
func (d *Daemon) btrfsRestore(uuid string) []btrfs.DeviceStats {
	devs, err := d.store.BtrfsCounters(context.Background(), uuid)
	if err != nil {
		d.log.Error("reading the recorded btrfs counters", "uuid", uuid, "err", err)
	}
	return devs
}

// btrfsSave keeps btrfs error counters read anew for the next commit, which
// also records the events of their increases.
func (d *Daemon) btrfsSave(uuid string, devs []btrfs.DeviceStats) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.btrfsDirty == nil {
		d.btrfsDirty = map[string][]btrfs.DeviceStats{}
	}
	d.btrfsDirty[uuid] = devs
}

func (d *Daemon) kickPolicy() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// policyLoop raises the alerts that fall due with time: digests, reminders,
// and Alertmanager re-sends while incidents are open. It sleeps until the
// next deadline, or until kicked; with nothing scheduled it does not wake.
func (d *Daemon) policyLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		d.mu.Lock()
		next := d.nextDeadline()
		d.mu.Unlock()
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), 0))
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-d.kick:
		case <-timer.C:
		}
		timer.Stop()
		d.tick(ctx, time.Now())
	}
}

// nextDeadline is the earliest of the engine's deadline and the
// Alertmanager re-sends. The caller holds d.mu.
func (d *Daemon) nextDeadline() time.Time {
	next := d.engine.NextDeadline()
	if len(d.engine.Incidents()) == 0 && d.stateAlert == nil {
		return next
	}
	for _, am := range d.channels.Alertmanagers {
		t, ok := d.resend[am.Name()]
		if !ok {
			t = time.Now().Add(am.ResendInterval())
			d.resend[am.Name()] = t
		}
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	return next
}

// tick commits whatever fell due.
func (d *Daemon) tick(ctx context.Context, now time.Time) {
	d.mu.Lock()
	b := &store.Batch{}
	d.enqueue(b, d.engine.Tick(now), now)
	d.resendAlertmanagers(b, now)
	b.Incidents = incidentsToStore(d.engine.Changed())
	d.mu.Unlock()
	if len(b.Deliveries) == 0 && len(b.Incidents) == 0 {
		return
	}
	if err := d.store.Commit(ctx, b); err != nil {
		if ctx.Err() == nil {
			d.log.Error("recording due alerts", "err", err)
		}
		return
	}
	d.outbox.Wake()
	// Reminders and re-sends add rows while no event comes: retention
	// runs here too, not only after events.
	d.pruneDaily(ctx, now)
}

// resendAlertmanagers queues, for each Alertmanager channel whose re-send
// is due, one alert per open incident, so Alertmanager keeps it firing. The
// caller holds d.mu.
func (d *Daemon) resendAlertmanagers(b *store.Batch, now time.Time) {
	incidents := d.engine.Incidents()
	for _, am := range d.channels.Alertmanagers {
		if t, ok := d.resend[am.Name()]; !ok || now.Before(t) {
			continue
		}
		d.resend[am.Name()] = now.Add(am.ResendInterval())
		if d.stateAlert != nil {
			// fshealth's own state, while degraded.
			a := *d.stateAlert
			a.ID, a.Time = a.ID+"-am-"+strconv.FormatInt(now.Unix(), 10), now
			b.Deliveries = append(b.Deliveries, store.Delivery{Channel: am.Name(), Alert: a, Created: now, NextAttempt: now})
		}
		for _, inc := range incidents {
			if !inc.Resolved.IsZero() {
				continue
			}
			a := alert.Alert{ID: inc.ID + "-am-" + strconv.FormatInt(now.Unix(), 10), Type: alert.TypeReminder,
				Severity: inc.Severity, Rule: inc.Rule, Host: d.cfg.Host(), Time: now, Filesystem: inc.Filesystem,
				ErrorKind: inc.ErrorKind, Count: inc.Errors, Since: inc.Opened, Event: inc.LastEvent,
				Summary: fmt.Sprintf("%s on %s: still open, %d errors since %s", inc.ErrorKind,
					event.Safe(inc.Filesystem.Device), inc.Errors, inc.Opened.Format(time.RFC3339))}
			b.Deliveries = append(b.Deliveries, store.Delivery{Channel: am.Name(), Alert: a, Created: now, NextAttempt: now})
		}
	}
}

// pruneDaily prunes if it last did more than a day before now.
func (d *Daemon) pruneDaily(ctx context.Context, now time.Time) {
	last := d.lastPrune.Load()
	if now.Sub(time.Unix(0, last)) > 24*time.Hour && d.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		d.prune(ctx)
	}
}

// prune applies the retention period.
func (d *Daemon) prune(ctx context.Context) {
	d.mu.Lock()
	keep := d.cfg.History.Retention
	d.mu.Unlock()
	d.lastPrune.Store(time.Now().UnixNano())
	st, err := d.store.Prune(ctx, time.Now().Add(-keep))
	if err != nil {
		d.log.Error("pruning history", "err", err)
		return
	}
	if st.Events > 0 || st.Deliveries > 0 {
		d.log.Info("pruned history", "events", st.Events, "deliveries", st.Deliveries, "older_than", keep.String())
	}
}

// Reload re-reads the configuration (SIGHUP). A bad configuration is
// refused and the running one kept. Events keep flowing meanwhile: the
// watcher never stops, and the sink switches between two batches.
func (d *Daemon) Reload() error {
	cfg, err := LoadConfig(d.opts.ConfigPath, d.opts.Overrides)
	if err == nil {
		d.mu.Lock()
		old := d.cfg
		d.mu.Unlock()
		err = reloadable(old, cfg)
	}
	var chans *Channels
	if err == nil {
		chans, err = BuildChannels(cfg, d.opts.Version, d.opts.Stderr, d.log)
	}
	if err != nil {
		d.log.Error("configuration NOT reloaded; keeping the running one", "err", err)
		return err
	}
	for _, w := range cfg.Warnings {
		d.log.Warn("configuration: " + w)
	}
	d.mu.Lock()
	oldChans := d.channels
	d.cfg, d.channels = cfg, chans
	d.engine.Reconfigure(cfg.Rules, cfg.Flood, policy.Options{Host: cfg.Host(), Channels: cfg.ChannelNames()})
	d.resend = map[string]time.Time{}
	d.mu.Unlock()
	oldChans.Close()
	d.log.Info("configuration reloaded", "channels", len(chans.ByName), "rules", len(cfg.Rules))
	d.outbox.Wake()
	d.kickPolicy()
	return nil
}

// reloadable refuses changes that need a restart.
func reloadable(old, cfg *config.Config) error {
	switch {
	case cfg.StateDir != old.StateDir:
		return fmt.Errorf("state_dir changed (%s → %s): restart the daemon to use it", old.StateDir, cfg.StateDir)
	case cfg.Metrics.Listen != old.Metrics.Listen:
		return fmt.Errorf("metrics.listen changed (%q → %q): restart the daemon to use it", old.Metrics.Listen, cfg.Metrics.Listen)
	case fmt.Sprint(cfg.Watch.Paths) != fmt.Sprint(old.Watch.Paths):
		return errors.New("watch.paths changed: restart the daemon to use it")
	case cfg.Watch.KernelLog != old.Watch.KernelLog || cfg.Watch.KernelLogHold != old.Watch.KernelLogHold:
		return errors.New("watch.kernel_log or watch.kernel_log_hold changed: restart the daemon to use it")
	}
	return nil
}

// serveMetrics serves /metrics and /healthz on addr.
func (d *Daemon) serveMetrics(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", d.metrics.Handler())
	mux.HandleFunc("/healthz", d.healthz)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	d.log.Info("serving metrics", "address", ln.Addr().String())
	return srv, nil
}

// Metrics returns the daemon's metrics (tests).
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// Store returns the daemon's store in use: the database, or the in-memory
// history while degraded (tests).
func (d *Daemon) Store() *store.Store { return d.store.Store() }
