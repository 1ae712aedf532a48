// Package metrics exposes fshealth's Prometheus metrics: errors per file
// system and errno, file system health, what is watched, lost events, the
// delivery outbox and recovery actions. It uses its own registry, so only
// fshealth's metrics (plus the Go and process collectors) are served.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fshealth/fshealth/internal/event"
)

// fsLabels identify a file system in metrics. The mount point is the first
// one; device and UUID keep series apart.
var fsLabels = []string{"device", "mountpoint", "fstype", "uuid"}

// Metrics holds every collector.
type Metrics struct {
	reg *prometheus.Registry

	errors        *prometheus.CounterVec
	events        *prometheus.CounterVec
	healthy       *prometheus.GaugeVec
	lastError     *prometheus.GaugeVec
	watched       prometheus.Gauge
	overflows     prometheus.Counter
	undecodable   prometheus.Counter
	attempts      *prometheus.CounterVec
	failures      *prometheus.CounterVec
	backlog       *prometheus.GaugeVec
	gaveUp        *prometheus.GaugeVec
	actions       *prometheus.CounterVec
	commitSeconds prometheus.Histogram

	degraded         *prometheus.GaugeVec
	notRecordedSince prometheus.Gauge
	memoryEvents     prometheus.Gauge
	historyFailures  prometheus.Counter
}

// New creates the metrics, registered on a fresh registry.
func New(version string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fshealth_filesystem_errors_total",
		Help: "File system errors reported by the kernel (the sum of error_count), by file system and errno.",
	}, append(append([]string{}, fsLabels...), "errno"))
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fshealth_filesystem_error_events_total",
		Help: "File system error events received (one event may carry several folded errors), by file system and errno.",
	}, append(append([]string{}, fsLabels...), "errno"))
	m.healthy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_filesystem_healthy",
		Help: "1 if no error has been seen on the file system (since it was last marked healthy), else 0.",
	}, fsLabels)
	m.lastError = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_filesystem_last_error_timestamp_seconds",
		Help: "Unix time of the last error seen on the file system.",
	}, fsLabels)
	m.watched = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fshealth_filesystems_watched",
		Help: "Number of file systems being watched for errors.",
	})
	m.overflows = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fshealth_queue_overflows_total",
		Help: "Times the kernel's fanotify queue overflowed, losing events.",
	})
	m.undecodable = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fshealth_undecodable_reads_total",
		Help: "Reads whose data could not be fully decoded (events may have been lost).",
	})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fshealth_delivery_attempts_total",
		Help: "Alert delivery attempts, by channel.",
	}, []string{"channel"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fshealth_delivery_failures_total",
		Help: "Failed alert delivery attempts, by channel.",
	}, []string{"channel"})
	m.backlog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_delivery_backlog",
		Help: "Alerts waiting to be delivered, by channel.",
	}, []string{"channel"})
	m.gaveUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_delivery_given_up",
		Help: "Alerts whose delivery was given up after the maximum age, still kept in history, by channel.",
	}, []string{"channel"})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fshealth_actions_total",
		Help: "Recovery actions run, by action and result (ok, failed, dry_run).",
	}, []string{"action", "result"})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fshealth_history_commit_duration_seconds",
		Help:    "Time until a batch of events is durable in the history database (the alerts wait for it).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	})
	m.degraded = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_history_degraded",
		Help: "1 while the history database cannot be used and history and alerts are kept in memory (degraded), with the path at fault and the cause.",
	}, []string{"path", "cause"})
	m.notRecordedSince = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fshealth_history_not_recorded_since_timestamp_seconds",
		Help: "Unix time since when the history has not been recorded on disk (degraded); 0 while it is.",
	})
	m.memoryEvents = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fshealth_history_events_in_memory",
		Help: "Events kept in memory while degraded, to be committed when the database works again.",
	})
	m.historyFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fshealth_history_failures_total",
		Help: "Operations on the history database (or the in-memory history) that failed.",
	})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fshealth_build_info",
		Help: "fshealth build information; the value is always 1.",
	}, []string{"version"})
	build.WithLabelValues(version).Set(1)
	m.reg.MustRegister(m.errors, m.events, m.healthy, m.lastError, m.watched, m.overflows, m.undecodable,
		m.attempts, m.failures, m.backlog, m.gaveUp, m.actions, m.commitSeconds, m.degraded, m.notRecordedSince, m.memoryEvents, m.historyFailures, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// FS is how a file system is labelled.
type FS struct{ Device, Mountpoint, FSType, UUID string }

func (f FS) values() []string { return []string{f.Device, f.Mountpoint, f.FSType, f.UUID} }

// FSOf returns the labels of an event's file system.
func FSOf(e *event.Event) FS {
	mp := ""
	if len(e.Mountpoints) > 0 {
		mp = e.Mountpoints[0]
	}
	return FS{e.Device, mp, e.FSType, e.UUID}
}

// Event counts one event.
func (m *Metrics) Event(e *event.Event) {
	if e.Kind == event.KindOverflow {
		m.overflows.Inc()
		return
	}
	if e.Kind == event.KindRedundancy {
		// Not an error of the file system: its incident and alerts say it.
		return
	}
	fs := FSOf(e)
	lv := append(fs.values(), e.Error)
	m.errors.WithLabelValues(lv...).Add(float64(e.ErrorCount))
	m.events.WithLabelValues(lv...).Inc()
	m.healthy.WithLabelValues(fs.values()...).Set(0)
	m.lastError.WithLabelValues(fs.values()...).Set(float64(e.Time.UnixNano()) / 1e9)
}

// Undecodable counts a read that could not be fully decoded.
func (m *Metrics) Undecodable() { m.undecodable.Inc() }

// InitialErrnos are the errnos whose error counters every file system given
// to SetHealth has from the start, at 0, so that increase() and rate() see
// its first error: the ones file systems report (ext4's and XFS's
// EFSCORRUPTED is EUCLEAN and EFSBADCRC EBADMSG; an abort is ESHUTDOWN, or
// EROFS from ext4's journal). Other errnos' series begin with their first
// error.
var InitialErrnos = []string{"EIO", "EUCLEAN", "EBADMSG", "ESHUTDOWN", "EROFS"}

// SetHealth sets a file system's health and, if known, its last error time,
// and makes sure its error counters exist (InitialErrnos).
func (m *Metrics) SetHealth(fs FS, healthy bool, lastError time.Time) {
	for _, errno := range InitialErrnos {
		lv := append(fs.values(), errno)
		m.errors.WithLabelValues(lv...)
		m.events.WithLabelValues(lv...)
	}
	v := 0.0
	if healthy {
		v = 1
	}
	m.healthy.WithLabelValues(fs.values()...).Set(v)
	if !lastError.IsZero() {
		m.lastError.WithLabelValues(fs.values()...).Set(float64(lastError.UnixNano()) / 1e9)
	}
}

// SetWatched sets the number of watched file systems.
func (m *Metrics) SetWatched(n int) { m.watched.Set(float64(n)) }

// Delivery counts one delivery attempt on channel.
func (m *Metrics) Delivery(channel string, err error) {
	m.attempts.WithLabelValues(channel).Inc()
	if err != nil {
		m.failures.WithLabelValues(channel).Inc()
	}
}

// SetBacklog sets a channel's pending and given-up delivery counts, and
// makes sure its delivery counters exist (at 0 before its first attempt).
func (m *Metrics) SetBacklog(channel string, pending, gaveUp int) {
	m.attempts.WithLabelValues(channel)
	m.failures.WithLabelValues(channel)
	m.backlog.WithLabelValues(channel).Set(float64(pending))
	m.gaveUp.WithLabelValues(channel).Set(float64(gaveUp))
}

// Action counts one recovery action; result is "ok", "failed" or "dry_run".
func (m *Metrics) Action(name, result string) { m.actions.WithLabelValues(name, result).Inc() }

// ObserveCommit records how long a history commit took.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commitSeconds.Observe(d.Seconds()) }

// SetDegraded records that the history is kept in memory since since,
// because of cause at path.
func (m *Metrics) SetDegraded(path, cause string, since time.Time) {
	m.degraded.Reset()
	m.degraded.WithLabelValues(path, cause).Set(1)
	m.notRecordedSince.Set(float64(since.UnixNano()) / 1e9)
}

// SetRecorded records that the history is recorded on disk (again).
func (m *Metrics) SetRecorded() {
	m.degraded.Reset()
	m.notRecordedSince.Set(0)
	m.memoryEvents.Set(0)
}

// SetMemoryEvents sets the number of events kept in memory.
func (m *Metrics) SetMemoryEvents(n int64) { m.memoryEvents.Set(float64(n)) }

// HistoryFailure counts a failed history operation.
func (m *Metrics) HistoryFailure() { m.historyFailures.Inc() }
