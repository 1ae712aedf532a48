package daemon

import "github.com/fshealth/fshealth/internal/policy"

// redundancyLost reports whether the file system fsKey has an open
// redundancy incident (an array under it lost a member, restored from
// before a restart): the watcher then reports the array whole again if it
// finds it so.
func (d *Daemon) redundancyLost(fsKey string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, inc := range d.engine.Incidents() {
		if inc.FSKey == fsKey && inc.ErrorKind == policy.KindRedundancy {
			return true
		}
	}
	return false
}
