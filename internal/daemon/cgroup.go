package daemon

import (
	"log/slog"

	"github.com/fshealth/fshealth/internal/cgroup"
)

// initCgroups prepares the cgroups hooks and recovery action programs run
// in (package cgroup): under systemd with Delegate=yes it moves the daemon
// into a leaf cgroup of its own unit's cgroup, so that the programs' cgroups
// are its siblings. Without a usable cgroup v2 it logs why: the programs
// then only get a process group, and their descendants that leave it are
// not contained.
func initCgroups(log *slog.Logger) {
	m, err := cgroup.Init()
	if err != nil {
		log.Warn("hooks and recovery actions run without cgroups of their own: descendants that leave their process group (setsid, daemons) are not contained",
			"reason", err)
		return
	}
	log.Debug("hooks and recovery actions run in cgroups of their own", "below", m.Base())
}
