package mounts

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// HostView gives file systems the mount points the host sees, when this
// process runs in a mount namespace of its own: a systemd service with
// ProtectSystem=, PrivateTmp=, ReadWritePaths= or PrivateMounts= sees its
// root file system also at /tmp, /var/tmp, /var/lib/... (bind mounts systemd
// made for the sandbox), which are not where the host has it. The host's
// mount table is PID 1's, read from /proc/1/mountinfo.
//
// Only Mountpoints change: Mounts stay this namespace's, which is where the
// process opens and marks file systems. A nil *HostView changes nothing.
type HostView struct {
	path string

	mu sync.Mutex
	// points are the host's mount points by device number, from the last
	// Refresh.
	points map[[2]uint32][]string
}

// OpenHostView returns the host's view of the mount table, from
// procRoot/1/mountinfo, or nil when this process is in PID 1's mount
// namespace (then there is nothing to translate). It fails when PID 1's
// mount table cannot be read (a unit with ProtectProc=invisible, or a PID
// namespace of its own).
func OpenHostView(procRoot string) (*HostView, error) {
	return openHostView(procRoot, "1")
}

// openHostView is OpenHostView with the host's mount namespace that of
// process hostPID (tests).
func openHostView(procRoot, hostPID string) (*HostView, error) {
	if sameMountNamespace(procRoot, hostPID) {
		return nil, nil
	}
	h := &HostView{path: filepath.Join(procRoot, hostPID, "mountinfo")}
	if err := h.Refresh(); err != nil {
		return nil, err
	}
	return h, nil
}

// sameMountNamespace reports whether this process is in the mount
// namespace of process hostPID; when that cannot be told (reading another
// process's namespace link needs ptrace access to it), it says no: the
// host's table is then read, which in the same namespace changes nothing.
func sameMountNamespace(procRoot, hostPID string) bool {
	var self, init unix.Stat_t
	if unix.Stat(filepath.Join(procRoot, "self/ns/mnt"), &self) != nil ||
		unix.Stat(filepath.Join(procRoot, hostPID, "ns/mnt"), &init) != nil {
		return false
	}
	return self.Dev == init.Dev && self.Ino == init.Ino
}

// Refresh reads the host's mount table again; Apply uses what it read.
// Call it when this namespace's mounts changed: the host's changes reach a
// service's namespace (systemd makes it a slave of the host's), so a
// change of the host's table shows as one of this namespace's too. (poll(2)
// on another namespace's mountinfo was seen not to report its changes.)
// On error the table read before stays.
func (h *HostView) Refresh() error {
	if h == nil {
		return nil
	}
	ms, err := ReadMountinfo(h.path)
	if err != nil {
		return fmt.Errorf("the host's mount table: %w", err)
	}
	points := make(map[[2]uint32][]string, len(ms))
	for _, m := range ms {
		k := [2]uint32{m.Major, m.Minor}
		points[k] = append(points[k], m.Point)
	}
	h.mu.Lock()
	h.points = points
	h.mu.Unlock()
	return nil
}

// Apply returns f with the host's mount points of its device, in the
// host's mount order: a copy, f itself being left alone. It returns f when
// the host does not have the file system mounted (a mount made inside this
// namespace only) or h is nil.
func (h *HostView) Apply(f *Filesystem) *Filesystem {
	if h == nil || f == nil {
		return f
	}
	h.mu.Lock()
	points := h.points[[2]uint32{f.Major, f.Minor}]
	h.mu.Unlock()
	if len(points) == 0 || slices.Equal(points, f.Mountpoints) {
		return f
	}
	c := *f
	c.Mountpoints = slices.Clone(points)
	return &c
}
