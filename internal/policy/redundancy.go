package policy

import (
	"time"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/storage"
)

// KindRedundancy is the error kind of the incident that KindRedundancy
// events (an array under the file system lost redundancy) open.
const KindRedundancy = event.KindRedundancy

// restoredRedundancy reports whether ev says an array is whole again.
func restoredRedundancy(ev *event.Event) bool {
	return ev.Kind == event.KindRedundancy && ev.Redundancy != nil && ev.Redundancy.Change == storage.ChangeRestored
}

// restored handles a redundancy-restored event: it resolves the file
// system's redundancy incident, if one is open (a digest of what is still
// folded, then a resolved alert), and opens nothing. Its other incidents
// (file system errors) stay open.
func (e *Engine) restored(ev *event.Event, now time.Time) Decision {
	fsKey := FSKey(ev)
	key := IncidentKey(fsKey, KindRedundancy)
	d := Decision{}
	inc := e.incidents[key]
	if inc == nil {
		return d
	}
	d.Rule, d.Severity = inc.Rule, inc.Severity
	inc.LastEvent = cloneEvent(ev)
	inc.LastEventTime = now
	d.Alerts = e.resolve(key, inc, now)
	d.Incident = inc.clone()
	return d
}
