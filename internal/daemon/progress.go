package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/fshealth/fshealth/internal/actions"
)

// ActionProgress is what the daemon publishes, in the runtime directory,
// about the progress of its running recovery actions, for `fshealth
// status`: volatile, so not in the history, and not in the state
// directory, whose file system may be the one being scrubbed.
type ActionProgress struct {
	PID      int    `json:"pid"`
	StateDir string `json:"state_dir"`
	// Actions is the last progress of each running action that reports
	// one, by its id in the history.
	Actions map[int64]actions.Progress `json:"actions"`
}

// ProgressFile is the ActionProgress file of the daemon using stateDir.
func ProgressFile(stateDir string) string {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	sum := sha256.Sum256([]byte(stateDir))
	return filepath.Join(RuntimeDir(), "progress-"+hex.EncodeToString(sum[:8])+".json")
}

// ReadActionProgress returns the progress of the running recovery actions
// of the daemon using stateDir, by action id: nil, nil when there is none,
// or the daemon that published it is gone or used another state directory.
func ReadActionProgress(stateDir string) (map[int64]actions.Progress, error) {
	path := ProgressFile(stateDir)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p ActionProgress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	if p.PID <= 0 || p.StateDir != stateDir {
		return nil, nil
	}
	if err := syscall.Kill(p.PID, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return nil, nil // its daemon is gone
	}
	return p.Actions, nil
}

// ProgressBoard keeps the progress of the running recovery actions and
// publishes it in ProgressFile, replacing the file on each change; the
// file is removed when no action reports progress. It is safe for
// concurrent use; the zero value is not usable: use NewProgressBoard.
type ProgressBoard struct {
	stateDir string
	log      *slog.Logger

	mu     sync.Mutex
	all    map[int64]actions.Progress
	warned bool
}

// NewProgressBoard returns the board of the daemon using stateDir; log
// (may be nil) hears once that the file cannot be written.
func NewProgressBoard(stateDir string, log *slog.Logger) *ProgressBoard {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	return &ProgressBoard{stateDir: stateDir, log: log, all: map[int64]actions.Progress{}}
}

// Set records and publishes the progress of action id.
func (b *ProgressBoard) Set(id int64, p actions.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all[id] = p
	b.publish()
}

// Clear forgets action id, which has ended.
func (b *ProgressBoard) Clear(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.all[id]; !ok {
		return
	}
	delete(b.all, id)
	b.publish()
}

// publish writes the file, or removes it when there is nothing to show.
// The caller holds b.mu.
func (b *ProgressBoard) publish() {
	path := ProgressFile(b.stateDir)
	var err error
	if len(b.all) == 0 {
		if err = os.Remove(path); errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	} else {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
		var data []byte
		if err == nil {
			data, err = json.Marshal(ActionProgress{PID: os.Getpid(), StateDir: b.stateDir, Actions: b.all})
		}
		if err == nil {
			err = writeFileAtomic(path, append(data, '\n'))
		}
	}
	if err != nil && !b.warned && b.log != nil {
		b.warned = true
		b.log.Warn("could not publish the progress of recovery actions for `fshealth status`", "file", path, "err", err)
	}
}
