package cli

import (
	"context"
	"strconv"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/store"
)

// lastPath is what `status --json` says about the inode of a file
// system's last error: its path once found (the daemon adds it to the
// history when the read-only lookup ends), or that it is still pending.
type lastPath struct {
	LastInode       *uint64 `json:"last_inode,omitempty"`
	LastPath        string  `json:"last_path,omitempty"`
	LastPathPending bool    `json:"last_path_pending,omitempty"`
}

// lastEvents returns the last error event of each file system, by id.
func lastEvents(ctx context.Context, st *store.Store, fss []store.FilesystemStatus) (map[string]event.Event, error) {
	ids := make([]string, 0, len(fss))
	for _, f := range fss {
		ids = append(ids, f.LastEventID)
	}
	return st.EventsByID(ctx, ids)
}

// addLastPaths fills each file system's lastPath from its last event.
func addLastPaths(d *statusDoc, fss []store.FilesystemStatus, last map[string]event.Event) {
	for i := range d.Filesystems {
		e, ok := last[fss[i].LastEventID]
		if !ok || e.Inode == nil {
			continue
		}
		d.Filesystems[i].lastPath = lastPath{LastInode: e.Inode, LastPath: e.Path, LastPathPending: e.PathPending}
	}
}

// lastPathText is the status table's note on the last error's inode.
func lastPathText(e *event.Event) string {
	switch {
	case e.Inode == nil:
		return ""
	case e.Path != "":
		return " " + event.Safe(e.Path)
	case e.PathPending:
		return " inode " + strconv.FormatUint(*e.Inode, 10) + " (path pending)"
	}
	return " inode " + strconv.FormatUint(*e.Inode, 10)
}
