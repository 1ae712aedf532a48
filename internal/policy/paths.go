package policy

import "github.com/fshealth/fshealth/internal/ext4"

// AttachPath gives a path found after its event (see package pathfind) to
// the open incidents of file system fsKey whose last event is about inode
// ino (generation gen) and waits for it, and to the damaged files they
// count, so that their digests, reminders and resolution carry it. pathError is set instead when none was found.
// It reports whether an incident changed (Changed then returns it).
func (e *Engine) AttachPath(fsKey string, ino uint64, gen uint32, path, pathError string) bool {
	changed := false
	for _, inc := range e.incidents {
		if inc.FSKey == fsKey && inc.Top != nil && inc.Top.attachPath(ino, gen, path) {
			e.changed[inc.ID] = inc
			changed = true
		}
		le := inc.LastEvent
		if inc.FSKey != fsKey || le == nil || !le.PathPending || le.Inode == nil || *le.Inode != ino || le.Gen() != gen {
			continue
		}
		le.PathPending, le.Path, le.PathError = false, path, pathError
		e.changed[inc.ID] = inc
		changed = true
	}
	return changed
}

// AttachExt4 gives ext4's record of errors, read after their events were
// sent (event.Event.Ext4Pending), to the open incidents of file system
// fsKey whose last event waits for it, so that their digests, reminders
// and resolution carry it. It reports whether an incident changed (Changed
// then returns it).
func (e *Engine) AttachExt4(fsKey string, st *ext4.State) bool {
	changed := false
	for _, inc := range e.incidents {
		le := inc.LastEvent
		if inc.FSKey != fsKey || le == nil || !le.Ext4Pending {
			continue
		}
		c := *st
		le.Ext4, le.Ext4Pending = &c, false
		e.changed[inc.ID] = inc
		changed = true
	}
	return changed
}
