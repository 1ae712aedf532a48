package watch

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/btrfs"
	"github.com/fshealth/fshealth/internal/mounts"
)

// markSuperblock marks the file system fs for FAN_FS_ERROR by path. The
// kernel refuses a path of a btrfs subvolume (EXDEV: its fsid is not the
// superblock's), and distributions install btrfs with only subvolumes
// mounted (subvol=@, subvol=@home). So for btrfs, when path is refused,
// each other mount of fs is tried (a bind mount of a directory of the top
// level is accepted), then the top level itself, opened through a private
// detached mount (btrfs.OpenTopLevel) that no one else sees and that goes
// away at once. fsid is then the fsid the file system's events carry (the
// top level's, not path's); via says how it was marked, for the log.
//
// A btrfs file system that cannot be marked at all returns a *noMarkError:
// it is still watched through the kernel log and its device error counters.
func (w *Watcher) markSuperblock(fs *mounts.Filesystem, path, uuid string) (fsid *fanotify.FSID, via string, err error) {
	err = w.group.MarkFilesystemErrors(path)
	if err == nil || fs.FSType != "btrfs" || !errors.Is(err, fanotify.ErrSubvolume) {
		return nil, "", err
	}
	for _, m := range fs.Mounts {
		if m.Point == path {
			continue
		}
		if w.group.MarkFilesystemErrors(m.Point) == nil {
			id, err := statfsFSID(m.Point)
			return id, "mount " + m.Point, err
		}
	}
	if uuid == "" {
		return nil, "", &noMarkError{mark: err, top: errors.New("its UUID is not known")}
	}
	fd, terr := btrfs.OpenTopLevel(fs.Source, uuid)
	if terr != nil {
		return nil, "", &noMarkError{mark: err, top: terr}
	}
	defer unix.Close(fd)
	// fanotify_mark(2) takes a path: the descriptor's is its magic link.
	if terr := w.group.MarkFilesystemErrors(filepath.Join(w.cfg.ProcRoot, "self/fd", strconv.Itoa(fd))); terr != nil {
		return nil, "", &noMarkError{mark: err, top: terr}
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return nil, "", fmt.Errorf("statfs of the top level of %s: %w", fs.Source, err)
	}
	return &fanotify.FSID{st.Fsid.Val[0], st.Fsid.Val[1]}, "its top-level subvolume, opened through a private detached mount", nil
}

// statfsFSID returns the fsid of the file system path is on.
func statfsFSID(path string) (*fanotify.FSID, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	return &fanotify.FSID{st.Fsid.Val[0], st.Fsid.Val[1]}, nil
}

// noMarkError says why a btrfs file system has no fanotify mark: none of its
// mounts is accepted (mark) and its top level could not be opened or marked
// (top).
type noMarkError struct {
	mark, top error
}

func (e *noMarkError) Error() string {
	return fmt.Sprintf("only subvolumes are mounted (%s) and the top level could not be marked (%v)", reason(e.mark), e.top)
}

func (e *noMarkError) Unwrap() error { return e.mark }
