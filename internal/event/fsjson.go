package event

import (
	"slices"
	"sync/atomic"

	"github.com/fshealth/fshealth/internal/jsonappend"
	"github.com/fshealth/fshealth/internal/storage"
)

// FSJSON caches the JSON of the members that describe an event's file
// system, fsid through storage, which every event of the file system
// repeats: AppendObject copies them from it, instead of encoding them
// again, for an event that carries it (UseFSJSON) while they are still
// what it was made from. Package enrich keeps one per file system. The
// storage stack is compared by identity (a stack is never modified once
// read: a new reading is a new slice), the other members by value; an
// event without a stack (ext4's record) takes the members before it, so
// such events, between the file system's others, do not replace it. The
// zero value is ready; it is safe for concurrent use.
type FSJSON struct{ p atomic.Pointer[fsJSON] }

// fsJSON is what one encoding was made from, and the encoding: the
// members from `,"fsid":` to the storage stack's closing bracket, the
// stack's member from cut on (cut is len(b) without one).
type fsJSON struct {
	fsid, device, deviceNumber, fstype, uuid, label string
	mountpoints                                     []string
	unmounted                                       bool
	storage                                         *storage.Layer
	nstorage                                        int
	b                                               []byte
	cut                                             int
}

// UseFSJSON makes AppendObject take the members that describe e's file
// system from c when they are still those c was made from.
func (e *Event) UseFSJSON(c *FSJSON) { e.fsJSON = c }

// encoding returns the part of c's encoding that is e's members, and
// false if c was not made from them.
func (c *fsJSON) encoding(e *Event) ([]byte, bool) {
	if c.fsid != e.FSID || c.device != e.Device || c.deviceNumber != e.DeviceNumber ||
		c.fstype != e.FSType || c.uuid != e.UUID || c.label != e.Label || c.unmounted != e.Unmounted ||
		(c.mountpoints == nil) != (e.Mountpoints == nil) || !slices.Equal(c.mountpoints, e.Mountpoints) {
		return nil, false
	}
	switch {
	case len(e.Storage) == 0:
		return c.b[:c.cut], true
	case c.storage == storageID(e.Storage) && c.nstorage == len(e.Storage):
		return c.b, true
	}
	return nil, false
}

// storageID is the identity of a storage stack: its first layer.
func storageID(s []storage.Layer) *storage.Layer {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// appendFS appends, after the members before fsid (o.B has at least one),
// the members that describe e's file system, from e.fsJSON when it was
// made from them, else encoded (and kept there for the next event).
func appendFS(o *jsonappend.Object, e *Event) {
	if e.fsJSON != nil {
		if c := e.fsJSON.p.Load(); c != nil {
			if b, ok := c.encoding(e); ok {
				o.B = append(o.B, b...)
				return
			}
		}
	}
	start := len(o.B)
	o.String("fsid", e.FSID)
	o.String("device", e.Device)
	o.StringOmitEmpty("device_number", e.DeviceNumber)
	o.String("fstype", e.FSType)
	o.String("uuid", e.UUID)
	o.StringOmitEmpty("label", e.Label)
	o.Strings("mountpoints", e.Mountpoints)
	o.TrueOmitEmpty("unmounted", e.Unmounted)
	cut := len(o.B) - start
	if len(e.Storage) > 0 {
		o.Key("storage")
		o.B = storage.AppendJSON(o.B, e.Storage)
	}
	if e.fsJSON == nil {
		return
	}
	mps := e.Mountpoints
	if mps != nil {
		mps = slices.Clone(mps)
	}
	e.fsJSON.p.Store(&fsJSON{fsid: e.FSID, device: e.Device, deviceNumber: e.DeviceNumber, fstype: e.FSType,
		uuid: e.UUID, label: e.Label, mountpoints: mps, unmounted: e.Unmounted,
		storage: storageID(e.Storage), nstorage: len(e.Storage), b: slices.Clone(o.B[start:]), cut: cut})
}
