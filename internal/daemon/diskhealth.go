package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/fshealth/fshealth/internal/enrich"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/smart"
	"github.com/fshealth/fshealth/internal/storage"
)

// DiskHealthFileName is the file, in the state directory, where the daemon
// publishes the disks' own health (smart.Health, by device node) for
// `fshealth status`.
const DiskHealthFileName = "disk-health.json"

// DiskHealthFile is the disk health file of the daemon using stateDir.
func DiskHealthFile(stateDir string) string { return filepath.Join(stateDir, DiskHealthFileName) }

// ReadDiskHealth reads the disk health file of stateDir: nil, nil when
// there is none.
func ReadDiskHealth(stateDir string) (map[string]*smart.Health, error) {
	b, err := os.ReadFile(DiskHealthFile(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]*smart.Health
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", DiskHealthFile(stateDir), err)
	}
	return m, nil
}

// diskHealth reads the disks' own health with smartctl, off the events'
// critical path: asks are queued and a single goroutine queries one disk
// at a time (smart.Checker caches each answer for a while), logs what it
// found and publishes it in the state directory.
type diskHealth struct {
	log      *slog.Logger
	stateDir string
	checker  smart.Checker
	wake     chan struct{}

	mu      sync.Mutex
	pending []string
	results map[string]*smart.Health
	noTool  bool
}

func newDiskHealth(log *slog.Logger, stateDir string) *diskHealth {
	return &diskHealth{log: log, stateDir: stateDir, wake: make(chan struct{}, 1), results: map[string]*smart.Health{}}
}

// ask queues the disks of the stacks for a reading; it never waits.
func (h *diskHealth) ask(stacks ...[]storage.Layer) {
	h.mu.Lock()
	added := false
	for _, s := range stacks {
		for _, d := range storage.Disks(s) {
			node := d.Node
			if node == "" {
				node = "/dev/" + d.Name
			}
			if !slices.Contains(h.pending, node) {
				h.pending = append(h.pending, node)
				added = true
			}
		}
	}
	h.mu.Unlock()
	if added {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// askFilesystems queues the disks under file systems.
func (h *diskHealth) askFilesystems(fss []*enrich.Filesystem) {
	for _, fs := range fss {
		h.ask(fs.Storage)
	}
}

// askEvents queues the disks under the file systems of error and
// redundancy events: after an I/O error the disk's own view is read
// (its cached answer, if recent, is not read again).
func (h *diskHealth) askEvents(evs []event.Event) {
	for i := range evs {
		if k := evs[i].Kind; (k == event.KindError || k == event.KindRedundancy) && len(evs[i].Storage) > 0 {
			h.ask(evs[i].Storage)
		}
	}
}

// run reads what was asked until ctx is done.
func (h *diskHealth) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		for {
			h.mu.Lock()
			if len(h.pending) == 0 || ctx.Err() != nil {
				h.mu.Unlock()
				break
			}
			dev := h.pending[0]
			h.pending = h.pending[1:]
			h.mu.Unlock()
			h.check(ctx, dev)
		}
	}
}

// check reads one disk's health, logs it if it is new, and publishes it.
func (h *diskHealth) check(ctx context.Context, dev string) {
	res, err := h.checker.Check(ctx, dev)
	if errors.Is(err, smart.ErrNoSmartctl) {
		h.mu.Lock()
		first := !h.noTool
		h.noTool = true
		h.mu.Unlock()
		if first {
			h.log.Info("disks' own health is not read: smartctl (smartmontools) is not installed")
		}
		return
	}
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("cannot read a disk's health", "disk", dev, "err", err)
		}
		return
	}
	h.mu.Lock()
	old := h.results[dev]
	h.results[dev] = res
	snapshot := make(map[string]*smart.Health, len(h.results))
	for k, v := range h.results {
		snapshot[k] = v
	}
	h.mu.Unlock()
	if old == res {
		return // the cached answer
	}
	switch {
	case res.Failing():
		h.log.Warn("disk health", "disk", dev, "model", res.Model, "serial", res.Serial, "health", res.Summary())
	default:
		h.log.Info("disk health", "disk", dev, "model", res.Model, "serial", res.Serial, "health", res.Summary())
	}
	if err := writeDiskHealth(h.stateDir, snapshot); err != nil {
		h.log.Warn("cannot publish the disks' health", "file", DiskHealthFile(h.stateDir), "err", err)
	}
}

// writeDiskHealth replaces the disk health file atomically.
func writeDiskHealth(stateDir string, m map[string]*smart.Health) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(DiskHealthFile(stateDir), b)
}
