package event

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/fshealth/fshealth/internal/storage"
)

// fsMembers copies the members an FSJSON caches from src to dst.
func fsMembers(dst, src *Event) {
	dst.FSID, dst.Device, dst.DeviceNumber, dst.FSType = src.FSID, src.Device, src.DeviceNumber, src.FSType
	dst.UUID, dst.Label, dst.Mountpoints, dst.Unmounted, dst.Storage = src.UUID, src.Label, src.Mountpoints, src.Unmounted, src.Storage
}

// TestFSJSONIsMarshal: random events that share one FSJSON, as one file
// system's events do, encode as json.Marshal encodes them, whichever of
// the members it caches changed since the event before (none, one, or one
// changed in place), so a member it failed to compare would be written
// stale; and an event whose members did not change takes them from it.
func TestFSJSONIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var c FSJSON
	var prev Event
	for i := range 20000 {
		var e, other Event
		fill(r, reflect.ValueOf(&e).Elem())
		fill(r, reflect.ValueOf(&other).Elem())
		if i > 0 {
			fsMembers(&e, &prev)
			switch r.IntN(13) {
			case 0:
				e.FSID = other.FSID + "x"
			case 1:
				e.Device = other.Device + "x"
			case 2:
				e.DeviceNumber = other.DeviceNumber + "x"
			case 3:
				e.FSType = other.FSType + "x"
			case 4:
				e.UUID = other.UUID + "x"
			case 5:
				e.Label = other.Label + "x"
			case 6:
				e.Mountpoints = other.Mountpoints
			case 7:
				// The same mount points, changed where they are.
				if len(e.Mountpoints) > 0 {
					e.Mountpoints[0] += "x"
				}
			case 8:
				// nil and empty encode differently (null, []).
				if e.Mountpoints == nil {
					e.Mountpoints = []string{}
				} else if len(e.Mountpoints) == 0 {
					e.Mountpoints = nil
				}
			case 9:
				e.Unmounted = !e.Unmounted
			case 10:
				e.Storage = other.Storage
			case 11:
				// A new reading of the same stack: a new slice.
				e.Storage = slices.Clone(e.Storage)
			case 12:
				// Fewer layers of the same array.
				if len(e.Storage) > 0 {
					e.Storage = e.Storage[:len(e.Storage)-1]
				}
			}
		}
		e.UseFSJSON(&c)
		checkSameAsMarshal(t, &e)
		prev = e
	}
	// Events that change nothing take the members from the cache.
	var e Event
	fill(r, reflect.ValueOf(&e).Elem())
	e.UseFSJSON(&c)
	checkSameAsMarshal(t, &e)
	hits := 0
	for range 100 {
		before := c.p.Load()
		var next Event
		fill(r, reflect.ValueOf(&next).Elem())
		fsMembers(&next, &e)
		next.UseFSJSON(&c)
		checkSameAsMarshal(t, &next)
		if c.p.Load() == before {
			hits++
		}
	}
	if hits != 100 {
		t.Errorf("%d of 100 events with the same members took them from the cache", hits)
	}
}

// TestFSJSONConcurrent: goroutines encoding events of two file systems
// that share one FSJSON (as the daemon's history writer, notifiers and
// watch line may) each get their own event's members.
func TestFSJSONConcurrent(t *testing.T) {
	var c FSJSON
	evs := []Event{
		{Kind: KindError, FSID: "00000001:00000002", Device: "/dev/sda1", FSType: "ext4", Mountpoints: []string{"/a"},
			Storage: []storage.Layer{{Name: "sda1", Kind: storage.KindPartition}}},
		{Kind: KindError, FSID: "00000003:00000004", Device: "/dev/sdb1", FSType: "xfs", Mountpoints: []string{"/b", "/c"}},
	}
	want := make([][]byte, len(evs))
	for i := range evs {
		evs[i].UseFSJSON(&c)
		w, err := json.Marshal((*plain)(&evs[i]))
		if err != nil {
			t.Fatal(err)
		}
		want[i] = w
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var b []byte
			for i := range 2000 {
				k := (i + g) % len(evs)
				e := evs[k]
				b, _ = AppendObject(b[:0], &e)
				if !bytes.Equal(b, want[k]) {
					t.Errorf("got %s\nwant %s", b, want[k])
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestFSJSONWithoutStack: an event of the file system that carries no
// storage stack (ext4's record) takes the members before it from the
// cache the others made, and leaves that cache to them.
func TestFSJSONWithoutStack(t *testing.T) {
	var c FSJSON
	withStack := Event{Kind: KindError, FSID: "00000001:00000002", Device: "/dev/sda1", FSType: "ext4", Mountpoints: []string{"/a"},
		Storage: []storage.Layer{{Name: "sda1", Kind: storage.KindPartition}}}
	withStack.UseFSJSON(&c)
	checkSameAsMarshal(t, &withStack)
	made := c.p.Load()
	record := withStack
	record.Kind, record.Storage = KindExt4, nil
	checkSameAsMarshal(t, &record)
	checkSameAsMarshal(t, &withStack)
	if c.p.Load() != made {
		t.Error("an event without a storage stack replaced the file system's encoding")
	}
}
