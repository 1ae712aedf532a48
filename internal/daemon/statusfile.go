package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RuntimeStatus is what the running daemon publishes about its history in
// the runtime directory (not the state directory, which may be the thing
// that is broken), for `fshealth status`.
type RuntimeStatus struct {
	PID      int    `json:"pid"`
	StateDir string `json:"state_dir"`
	// Degraded is set while the history is kept in memory.
	Degraded *Degraded `json:"degraded,omitempty"`
	// MemoryEvents counts the events kept in memory.
	MemoryEvents int64 `json:"memory_events,omitempty"`
	// MovedAside is where a corrupt database was moved, if one was.
	MovedAside string    `json:"moved_aside,omitempty"`
	Updated    time.Time `json:"updated"`
}

// RuntimeDir is where the daemon publishes its RuntimeStatus:
// $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=) or /run/fshealth.
func RuntimeDir() string {
	if d, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); d != "" {
		return d
	}
	return "/run/fshealth"
}

// StatusFile is the RuntimeStatus file of the daemon using stateDir.
func StatusFile(stateDir string) string {
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	sum := sha256.Sum256([]byte(stateDir))
	return filepath.Join(RuntimeDir(), "state-"+hex.EncodeToString(sum[:8])+".json")
}

// writeStatusFile publishes s, replacing the file atomically.
func writeStatusFile(s *RuntimeStatus) error {
	path := StatusFile(s.StateDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic replaces path with b: written to a temporary file next
// to it, then renamed over it.
func writeFileAtomic(path string, b []byte) error {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// removeStatusFile removes the daemon's status file if it is its own.
func removeStatusFile(stateDir string) {
	if s, _ := ReadRuntimeStatus(stateDir); s != nil && s.PID == os.Getpid() {
		os.Remove(StatusFile(stateDir))
	}
}

// ReadRuntimeStatus returns what the daemon using stateDir published, or
// nil if no running daemon did.
func ReadRuntimeStatus(stateDir string) (*RuntimeStatus, error) {
	b, err := os.ReadFile(StatusFile(stateDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s RuntimeStatus
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatusFile(stateDir), err)
	}
	if s.PID <= 0 || syscall.Kill(s.PID, 0) != nil && !errors.Is(syscall.Kill(s.PID, 0), syscall.EPERM) {
		return nil, nil // its daemon is gone
	}
	return &s, nil
}

// DaemonPID reports the pid of the daemon using stateDir, or 0 if none
// runs: the holder of the state directory's lock or, while its history is
// degraded (it let go of the directory), the daemon that published its
// runtime status. rt is that status (nil if none), rtErr why it could not
// be read.
func DaemonPID(stateDir string) (pid int, err error, rt *RuntimeStatus, rtErr error) {
	pid, err = RunningPID(stateDir)
	rt, rtErr = ReadRuntimeStatus(stateDir)
	if rt != nil && pid == 0 {
		pid, err = rt.PID, nil
	}
	return pid, err, rt, rtErr
}
