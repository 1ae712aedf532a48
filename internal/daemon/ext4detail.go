package daemon

import (
	"context"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/store"
)

// ext4Recorded records ext4's record of errors whose events were sent
// before ext4 had published it (a KindExt4 event, watch.Config.OnExt4):
// the events in the history that wait for it get it, and so do the open
// incidents whose last event is one of them, so that their digests,
// reminders and resolution carry it. It runs in the watcher's goroutine,
// after the sink committed the events; an alert already sent is not sent
// again.
func (d *Daemon) ext4Recorded(e *event.Event) {
	if e.Ext4 == nil {
		return
	}
	ctx := context.Background()
	key := e.FSKey()
	ids, err := d.store.AttachExt4(ctx, key, e.Ext4)
	if err != nil {
		d.log.Error("recording ext4's record of errors in the history", "device", e.Device, "err", err)
		return
	}
	d.mu.Lock()
	var b store.Batch
	if d.engine.AttachExt4(key, e.Ext4) {
		b.Incidents = incidentsToStore(d.engine.Changed())
	}
	d.mu.Unlock()
	if len(b.Incidents) > 0 {
		if err := d.store.Commit(ctx, &b); err != nil {
			d.log.Error("recording ext4's record of errors in an incident", "device", e.Device, "err", err)
		}
	}
	d.log.Debug("ext4's record of errors recorded in the history", "device", e.Device,
		"errors_count", e.Ext4.ErrorsCount, "events", ids)
}

// AttachExt4 is store.Store.AttachExt4 on the store in use.
func (h *history) AttachExt4(ctx context.Context, fsKey string, st *ext4.State) ([]string, error) {
	return do(h, func(s *store.Store) ([]string, error) { return s.AttachExt4(ctx, fsKey, st) })
}
