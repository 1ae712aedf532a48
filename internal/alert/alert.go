// Package alert defines what fshealth's notifiers deliver: an Alert about a
// file system incident, and the Notifier interface every channel (webhook,
// e-mail, Alertmanager, hook programs, journal) implements.
package alert

import (
	"context"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// Alert types.
const (
	// TypeError is the first alert of an incident.
	TypeError = "error"
	// TypeDigest summarises the errors of an incident that were folded
	// while alerts were held back (anti-flood).
	TypeDigest = "digest"
	// TypeReminder says an incident is still open.
	TypeReminder = "reminder"
	// TypeResolved says an incident has ended.
	TypeResolved = "resolved"
	// TypeTest is sent by `fshealth test-alert`.
	TypeTest = "test"
)

// Severities.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Filesystem identifies the file system an alert is about.
type Filesystem struct {
	UUID        string   `json:"uuid"`
	Device      string   `json:"device"`
	FSType      string   `json:"fstype"`
	Mountpoints []string `json:"mountpoints"`
	Label       string   `json:"label,omitempty"`
}

// Alert is one notification about a file system incident (a file system and
// an error kind).
type Alert struct {
	// ID is unique per alert; receivers de-duplicate deliveries on it.
	ID string `json:"id"`
	// Type is one of the Type* constants.
	Type string `json:"type"`
	// Severity is one of the Severity* constants.
	Severity string `json:"severity"`
	// Rule is the name of the policy rule that matched.
	Rule string `json:"rule"`
	// Host is the machine's host name.
	Host string `json:"host"`
	// Time is when the alert was raised.
	Time time.Time `json:"time"`
	// Summary is one line for subjects and chat messages; it has no control
	// characters.
	Summary string `json:"summary"`
	// Filesystem is the file system the incident is on.
	Filesystem Filesystem `json:"filesystem"`
	// ErrorKind is the errno name the incident is about, e.g. "EUCLEAN".
	ErrorKind string `json:"error_kind"`
	// Count is the number of errors this alert covers (for a digest, those
	// since Since).
	Count uint64 `json:"count"`
	// Since is when the incident (or, for a digest, the folded run) began.
	Since time.Time `json:"since"`
	// Event is the event that raised the alert (the latest, for digests).
	Event *event.Event `json:"event,omitempty"`
	// TopLocations are, on digests, reminders and resolved alerts, the
	// kernel code locations that reported the incident's errors most
	// often (ext4's function:line, the function of an XFS, btrfs or block
	// layer message), at most MaxTop, most errors first.
	TopLocations []Tally `json:"top_locations,omitempty"`
	// DamagedFiles are, on digests, reminders and resolved alerts, the
	// files (inodes) the incident's errors were about, at most
	// MaxDamagedFiles, most errors first.
	DamagedFiles []DamagedFile `json:"damaged_files,omitempty"`
	// Test marks alerts sent by `fshealth test-alert`.
	Test bool `json:"test,omitempty"`
}

// MaxTop and MaxDamagedFiles bound TopLocations and DamagedFiles.
const (
	MaxTop          = 5
	MaxDamagedFiles = 10
)

// Tally is how many errors had one value (a code location), and when the
// last of them was received.
type Tally struct {
	Value  string    `json:"value"`
	Errors uint64    `json:"errors"`
	Last   time.Time `json:"last"`
}

// DamagedFile is a file an incident's errors were about.
type DamagedFile struct {
	Inode uint64 `json:"inode"`
	// Generation is absent when the errors did not say.
	Generation *uint32 `json:"generation,omitempty"`
	// Path is the file's path when it was found (read-only, on the
	// device).
	Path   string    `json:"path,omitempty"`
	Errors uint64    `json:"errors"`
	Last   time.Time `json:"last"`
}

// Notifier is one configured delivery channel.
type Notifier interface {
	// Name is the channel's name from the configuration.
	Name() string
	// Send delivers a. It returns nil only when the receiver has accepted
	// the alert. It may be called again with the same alert after a failure
	// or a restart; a.ID lets the receiver de-duplicate.
	Send(ctx context.Context, a *Alert) error
}

// AttemptBounder is implemented by channels that bound a delivery attempt
// themselves, by their configured timeouts. AttemptTimeout returns how long
// one Send may take at the most; the outbox, which otherwise cuts an
// attempt off after a fixed time, waits that long.
type AttemptBounder interface {
	AttemptTimeout() time.Duration
}

// AttemptMargin is what a channel adds to its own timeout in
// AttemptTimeout, so that its own, more precise, timeout error comes first.
const AttemptMargin = 5 * time.Second

// IsTest reports whether a was sent by `fshealth test-alert`.
func (a *Alert) IsTest() bool { return a.Test || a.Type == TypeTest }

// Headline returns a's Summary or, for an alert without one,
// "<error kind> on <device>" ("file system error on unknown device" when
// neither is known).
func (a *Alert) Headline() string {
	if a.Summary != "" {
		return a.Summary
	}
	kind, dev := a.ErrorKind, a.Filesystem.Device
	if kind == "" {
		kind = "file system error"
	}
	if dev == "" {
		dev = "unknown device"
	}
	return kind + " on " + dev
}
