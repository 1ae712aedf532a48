// Package enrich turns a raw fanotify event into an event.Event an admin can
// act on: which device and mount points, which inode (its path is looked up
// apart, see package pathfind), what the
// error means, and what ext4 recorded about it. File systems are looked up by
// the fsid the event carries, in a Registry filled when they are marked, so
// no mount table scan happens per event.
package enrich

import (
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/mounts"
	"github.com/fshealth/fshealth/internal/pathfind"
	"github.com/fshealth/fshealth/internal/storage"
)

// Filesystem is a watched file system as the registry knows it.
type Filesystem struct {
	*mounts.Info
	// FormerMountpoints are, for a file system that was unmounted while
	// watched (its Mountpoints are then empty), the mount points it had:
	// its events still queued are reported with them.
	FormerMountpoints []string
	// Storage is the storage stack under the file system, as last read
	// (internal/storage); every event of the file system carries it.
	Storage []storage.Layer
	// ext4 reads the recorded error state; nil for other file systems.
	ext4 *ext4.Reader
	// lastCount is the errors_count seen last, to tell a stale read.
	lastCount uint64
	// ext4Due is when an event was sent whose ext4 record is still to be
	// read (Ext4Detail); zero if none is.
	ext4Due time.Time
	// ext4Read is when Ext4Detail last read the record.
	ext4Read time.Time
	// json is the encoding of what Describe puts in an event, kept for
	// the next event (event.FSJSON).
	json event.FSJSON
}

// Ext4State reads the file system's recorded ext4 error state now; it
// returns nil for other file systems. Like Enrich, it must not run
// concurrently with Enrich.
func (f *Filesystem) Ext4State() (*ext4.State, error) {
	if f.ext4 == nil {
		return nil, nil
	}
	return f.ext4.Read()
}

// Close releases what the entry holds open.
func (f *Filesystem) Close() {
	if f.ext4 != nil {
		f.ext4.Close()
		f.ext4 = nil
	}
}

// Registry maps fsids to watched file systems. It is safe for concurrent use.
type Registry struct {
	mu     sync.Mutex
	byFSID map[fanotify.FSID]*Filesystem
	// sysRoot is where sysfs is mounted, normally "/sys".
	sysRoot string
}

// NewRegistry returns an empty registry reading sysfs under sysRoot.
func NewRegistry(sysRoot string) *Registry {
	return &Registry{byFSID: map[fanotify.FSID]*Filesystem{}, sysRoot: sysRoot}
}

// Add registers a probed file system, replacing any entry with its fsid. For
// ext4 it opens the recorded error state, and returns it, so the caller can
// report what was recorded before watching began.
func (r *Registry) Add(info *mounts.Info) (*Filesystem, error) {
	fs := &Filesystem{Info: info}
	var err error
	if IsExt4(info.FSType) && info.KernelName != "" {
		fs.ext4, err = ext4.Open(ext4.Dir(r.sysRoot, info.KernelName))
		if err == nil {
			fs.lastCount, err = fs.ext4.Count()
		}
		if err != nil {
			err = fmt.Errorf("ext4 error state of %s: %w", info.Device, err)
		}
	}
	r.mu.Lock()
	if old := r.byFSID[info.FSID]; old != nil {
		old.Close()
	}
	r.byFSID[info.FSID] = fs
	r.mu.Unlock()
	return fs, err
}

// Remove drops fs from the registry, if it is still the entry for its
// fsid, and releases what it holds.
func (r *Registry) Remove(fs *Filesystem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byFSID[fs.FSID] == fs {
		delete(r.byFSID, fs.FSID)
	}
	fs.Close()
}

// Lookup returns the file system with the given fsid, or nil.
func (r *Registry) Lookup(fsid fanotify.FSID) *Filesystem {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byFSID[fsid]
}

// Len returns the number of registered file systems.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byFSID)
}

// Close releases every entry.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, fs := range r.byFSID {
		fs.Close()
		delete(r.byFSID, k)
	}
}

// IsExt4 reports whether a file system type is ext4 or one of the older
// formats the ext4 driver mounts.
func IsExt4(t string) bool { return t == "ext4" || t == "ext3" || t == "ext2" }

// Enricher enriches raw events.
type Enricher struct {
	// Registry holds the watched file systems.
	Registry *Registry
	// Now returns the time stamped on events; time.Now if nil.
	Now func() time.Time
	// Paths looks the paths of inodes up, read-only from the device and
	// off the event's way; nil means paths are not looked up.
	Paths *pathfind.Finder
	// Refresh is called once when an event names an fsid the registry does
	// not know (a file system mounted since the registry was filled); it
	// should re-probe and return whether anything was added.
	Refresh func() bool
	// Ext4Later marks the events of ext4 file systems Ext4Pending and
	// their file system due for a read of its record (Filesystem.Ext4Detail),
	// which the caller does after it sent the events. Without it events
	// carry no ext4 record. Enrich itself never reads the record: ext4
	// publishes it a moment after it reports the error, and an event must
	// not wait for it.
	Ext4Later bool
}

// Enrich fills dst from raw and returns the file system the event is about,
// or nil if it is not known (or for an overflow). dst is overwritten.
// Enrich is not safe for concurrent use.
func (e *Enricher) Enrich(raw *fanotify.Event, dst *event.Event) *Filesystem {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	*dst = event.Event{Time: event.Time{Time: now()}, Source: event.SourceFanotify, PID: int(raw.PID)}
	if raw.IsOverflow() {
		dst.Kind = event.KindOverflow
		dst.Message = "the kernel's fanotify event queue overflowed and events were lost; " +
			"errors may have happened that are not reported here (check each file system's error counters)"
		return nil
	}
	dst.Kind = event.KindError
	dst.Errno = int(raw.Errno)
	dst.Error = event.ErrnoName(int(raw.Errno))
	dst.ErrorText = raw.Errno.Error()
	dst.ErrorCount = raw.ErrorCount

	fs := e.Registry.Lookup(raw.FID.FSID)
	if fs == nil && e.Refresh != nil && e.Refresh() {
		fs = e.Registry.Lookup(raw.FID.FSID)
	}
	if fs != nil {
		fs.Describe(dst)
		dst.Storage = fs.Storage
	} else {
		dst.FSID, dst.Mountpoints = raw.FID.FSID.String(), []string{}
	}

	if raw.Records&fanotify.HasFID != 0 && !raw.FID.Handle.IsInvalid() {
		h := raw.FID.Handle
		if ino, gen, ok := h.Inode(); ok {
			dst.Inode, dst.Generation = &ino, &gen
		} else {
			dst.Handle = &event.Handle{Type: h.Type, Bytes: hex.EncodeToString(h.Bytes)}
		}
	}
	if fs != nil && fs.ext4 != nil && e.Ext4Later {
		dst.Ext4Pending = true
		if fs.ext4Due.IsZero() {
			fs.ext4Due = dst.Time.Time
		}
	}
	if raw.Records&fanotify.HasFID != 0 && !raw.FID.Handle.IsInvalid() {
		e.findPath(fs, dst)
	}
	return fs
}

// findPath asks the path finder for the inode's path: known already, or
// pending (it follows through the finder), or why there is none. Nothing
// here touches the mounted file system: opening a corrupted inode by its
// handle would raise a new file system error (see package pathfind).
func (e *Enricher) findPath(fs *Filesystem, dst *event.Event) {
	if e.Paths == nil {
		return
	}
	if fs == nil {
		dst.PathError = "file system not known (not mounted in this namespace?)"
		return
	}
	if dst.Inode == nil {
		dst.PathError = "the file handle names no inode number fshealth can look up"
		return
	}
	p, pending, err := e.Paths.Lookup(PathRequest(fs, *dst.Inode, dst.Gen()))
	switch {
	case p != "":
		dst.Path = p
	case pending:
		dst.PathPending = true
	case err != nil:
		dst.PathError = err.Error()
	}
}

// FindPath asks the path finder for the path of the inode an event made
// from the kernel log alone names (no generation: any matches), unless the
// event already has a path, a pending one or the reason it has none.
func (e *Enricher) FindPath(fs *Filesystem, dst *event.Event) {
	if dst.Inode != nil && dst.Path == "" && !dst.PathPending && dst.PathError == "" {
		e.findPath(fs, dst)
	}
}

// PathRequest is the path finder's request for an inode of fs.
func PathRequest(fs *Filesystem, ino uint64, gen uint32) pathfind.Request {
	r := pathfind.Request{FSKey: fs.FSID.String(), FSType: fs.FSType, UUID: fs.UUID, Label: fs.Label,
		Device: fs.Device, Major: fs.Major, Minor: fs.Minor, Inode: ino, Generation: gen}
	for _, m := range fs.Mounts {
		r.Mounts = append(r.Mounts, pathfind.Mount{Point: m.Point, Root: m.Root})
	}
	return r
}

// PathEvent is the KindPath event that reports a path lookup's result.
func PathEvent(r *pathfind.Result, now time.Time) event.Event {
	ino, gen := r.Inode, r.Generation
	e := event.Event{Kind: event.KindPath, Time: event.Time{Time: now}, Source: event.SourcePathfind,
		FSID: r.FSKey, Device: r.Device, DeviceNumber: fmt.Sprintf("%d:%d", r.Major, r.Minor), FSType: r.FSType,
		UUID: r.UUID, Label: r.Label, Mountpoints: []string{}, Inode: &ino, Generation: &gen, Path: r.Path}
	for _, m := range r.Mounts {
		e.Mountpoints = append(e.Mountpoints, m.Point)
	}
	if r.Err != nil {
		e.PathError = r.Err.Error()
	} else {
		e.Message = fmt.Sprintf("found read-only on the device in %v", r.Took.Round(time.Millisecond))
		if r.Names > 1 {
			e.Message += fmt.Sprintf("; the inode has %d names, this is the first", r.Names)
		}
	}
	return e
}

// Describe fills e's description of the file system f: its fsid, device,
// type, UUID, label and mount points — never nil; an unmounted file
// system's former ones, with Unmounted set. The storage stack is the
// caller's to add.
func (f *Filesystem) Describe(e *event.Event) {
	e.FSID, e.Device, e.DeviceNumber = f.FSID.String(), f.Device, f.Dev()
	e.FSType, e.UUID, e.Label = f.FSType, f.UUID, f.Label
	e.Mountpoints = f.Mountpoints
	if len(f.Mountpoints) == 0 && len(f.FormerMountpoints) > 0 {
		e.Mountpoints, e.Unmounted = f.FormerMountpoints, true
	}
	if e.Mountpoints == nil {
		e.Mountpoints = []string{}
	}
	e.UseFSJSON(&f.json)
}

// Ext4Due returns since when fs has events whose ext4 record is still to be
// read (zero if none has).
func (f *Filesystem) Ext4Due() time.Time { return f.ext4Due }

// Ext4Read returns when Ext4Detail last read fs's ext4 record (zero if
// never).
func (f *Filesystem) Ext4Read() time.Time { return f.ext4Read }

// Ext4Detail reads ext4's record for the events sent since Ext4Due: the
// whole state once errors_count has moved since it was last read (ext4
// counts an error when it records it, a moment after it queued the event).
// Until then it returns done false, unless force is set: a file system
// that cannot record errors (on a read-only device) never moves its count,
// and its events then get the state as it stands. done true means nothing
// is left to wait for (the file system is also done when it is no longer
// watched, or its record cannot be read: st is then nil). Like Enrich, it
// must not run concurrently with Enrich.
func (f *Filesystem) Ext4Detail(force bool) (st *ext4.State, done bool, err error) {
	if f.ext4 == nil || f.ext4Due.IsZero() {
		f.ext4Due = time.Time{}
		return nil, true, nil
	}
	n, err := f.ext4.Count()
	if err == nil && n == f.lastCount && !force {
		return nil, false, nil
	}
	f.ext4Due = time.Time{}
	if err == nil {
		st, err = f.ext4.Read()
		f.ext4Read = time.Now()
	}
	if err != nil {
		return nil, true, err
	}
	f.lastCount = st.ErrorsCount
	return st, true, nil
}
