package fanotify_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
)

// FuzzParse feeds arbitrary buffers to Parse and checks its contract: no
// panic, termination, a buffer consumed exactly on success, a *ParseError
// with an in-range offset on failure, agreement with an event-by-event walk
// with ParseOne, and no change to the input. Besides the hand-built seeds
// below, testdata/fuzz/FuzzParse holds events captured from a real kernel.
func FuzzParse(f *testing.F) {
	seeds := [][]byte{
		nil,
		sbErrorEvent(1, linuxEUCLEAN, 1),
		inodeErrorEvent(2, linuxEUCLEAN, 13, 0xb13216cd),
		event(fanotify.FSError, fanotify.NoFD, 3,
			errorRecord(linuxEIO, 2),
			fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno64Gen, ino64Handle(1<<40, 1), "")),
		event(fanotify.QueueOverflow, fanotify.NoFD, 0),
		event(0x100, fanotify.NoFD, 4,
			fidRecord(fanotify.InfoDFIDName, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 0), "name"),
			pidfdRecord(5), record(200, u32(1))),
		event(fanotify.MountAttach, fanotify.NoFD, 5, mountRecord(0x80000075)),
		event(fanotify.Rename, fanotify.NoFD, 6,
			fidRecord(fanotify.InfoOldDFIDName, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 0), "old"),
			fidRecord(fanotify.InfoNewDFIDName, testFSID, fanotify.HandleIno64Gen, ino64Handle(3, 1), "new"),
			fidRecord(fanotify.InfoFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(12, 7), "")),
		event(fanotify.Create|fanotify.OnDir, fanotify.NoFD, 7,
			fidRecord(fanotify.InfoDFID, testFSID, fanotify.HandleIno32Gen, ext4Handle(2, 0), "")),
		event(fanotify.PreAccess, 9, 8, rangeRecord(4096, 1<<20)),
		event(fanotify.Open, -30, 9, pidfdRecord(fanotify.NoPIDFD)),
		event(fanotify.Open, 10, 9, pidfdRecord(-3)),
		// Malformed new records.
		event(fanotify.PreAccess, 9, 8, record(fanotify.InfoRange, u64(1), u64(2))),
		event(fanotify.Rename, fanotify.NoFD, 6, record(fanotify.InfoOldDFIDName, u64(1), u32(4), u32(1), u32(5))),
		concat(sbErrorEvent(1, linuxEUCLEAN, 1), event(fanotify.QueueOverflow, fanotify.NoFD, 0),
			inodeErrorEvent(2, linuxESHUTDOWN, 12, 1)),
		// Malformed.
		sbErrorEvent(1, linuxEIO, 1)[:30],
		with16(sbErrorEvent(1, linuxEIO, 1), offMetaLen, 8),
		with32(sbErrorEvent(1, linuxEIO, 1), offEventLen, 0),
		with16(sbErrorEvent(1, linuxEIO, 1), 24+2, 2),
		event(fanotify.FSError, fanotify.NoFD, 1,
			record(fanotify.InfoFID, i32(1), i32(2), u32(64), i32(fanotify.HandleIno32Gen), ext4Handle(1, 2))),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, buf []byte) {
		orig := bytes.Clone(buf)
		evs, err := fanotify.Parse(nil, buf)
		if !bytes.Equal(buf, orig) {
			t.Fatal("Parse modified its input")
		}
		// Every event takes at least MetadataSize bytes, so this bounds
		// the work Parse may have done.
		if len(evs) > len(buf)/fanotify.MetadataSize {
			t.Fatalf("Parse decoded %d events from %d bytes", len(evs), len(buf))
		}
		for i := range evs {
			// None of these may panic, whatever the handle holds.
			evs[i].FID.Handle.Inode()
			evs[i].DirFID.Handle.Inode()
			evs[i].OldDirFID.Handle.Inode()
			evs[i].NewDirFID.Handle.Inode()
			evs[i].IsOverflow()
			evs[i].IsFSError()
			if s := evs[i].Mask.String(); s == "" {
				t.Errorf("event %d: empty mask string", i)
			}
			if err := evs[i].PIDFDError(); (err != nil) != (evs[i].Records&fanotify.HasPIDFD != 0 && evs[i].PIDFD < 0) {
				t.Errorf("event %d: PIDFDError %v for %+v", i, err, evs[i])
			}
			if (evs[i].FDError != 0) != (evs[i].FD < fanotify.NoFD) || evs[i].FDError != 0 && int64(evs[i].FDError) != -int64(evs[i].FD) {
				t.Errorf("event %d: FDError %d for fd %d", i, evs[i].FDError, evs[i].FD)
			}
			for _, fid := range []struct {
				has  fanotify.Records
				f    fanotify.FileID
				name string
			}{{fanotify.HasDirFID, evs[i].DirFID, evs[i].Name}, {fanotify.HasOldName, evs[i].OldDirFID, evs[i].OldName}, {fanotify.HasNewName, evs[i].NewDirFID, evs[i].NewName}} {
				if evs[i].Records&fid.has == 0 && (fid.f.Handle.Bytes != nil || fid.f.FSID != (fanotify.FSID{}) || fid.name != "") {
					t.Errorf("event %d has a %v-style record's fields without the record: %+v", i, fid.has, evs[i])
				}
				if strings.IndexByte(fid.name, 0) >= 0 || len(fid.f.Handle.Bytes) > len(buf) {
					t.Errorf("event %d: name %q with a NUL, or a handle longer than the input", i, fid.name)
				}
			}
			if evs[i].Records&fanotify.HasRange == 0 && (evs[i].RangeOffset != 0 || evs[i].RangeCount != 0) {
				t.Errorf("event %d has a range but no range record", i)
			}
			if h := evs[i].FID.Handle; evs[i].Records&fanotify.HasFID == 0 && (h.Type != 0 || h.Bytes != nil) {
				t.Errorf("event %d has a handle but no FID record: %+v", i, evs[i])
			}
			if len(evs[i].FID.Handle.Bytes) > len(buf) || len(evs[i].DirFID.Handle.Bytes) > len(buf) {
				t.Errorf("event %d has a handle longer than the input", i)
			}
		}

		// Walk the buffer again with ParseOne.
		off, n := 0, 0
		var walkErr error
		for off < len(buf) {
			var ev fanotify.Event
			k, err := fanotify.ParseOne(&ev, buf[off:])
			if err != nil {
				walkErr = err
				break
			}
			if k < fanotify.MetadataSize || k > len(buf)-off {
				t.Fatalf("ParseOne at byte %d consumed %d of %d bytes", off, k, len(buf)-off)
			}
			if n >= len(evs) {
				t.Fatalf("ParseOne decoded an event at byte %d, after the %d Parse returned", off, len(evs))
			}
			if !reflect.DeepEqual(ev, evs[n]) {
				t.Fatalf("event %d at byte %d: ParseOne %+v, Parse %+v", n, off, ev, evs[n])
			}
			off += k
			n++
		}
		if n != len(evs) {
			t.Fatalf("ParseOne walked %d events, Parse returned %d", n, len(evs))
		}

		if err == nil {
			if walkErr != nil {
				t.Fatalf("Parse succeeded but ParseOne failed at byte %d: %v", off, walkErr)
			}
			if off != len(buf) {
				t.Fatalf("events consumed %d bytes of %d", off, len(buf))
			}
			return
		}
		var pe *fanotify.ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse error %v (%T) is not a *ParseError", err, err)
		}
		if pe.Offset < 0 || pe.Offset > len(buf) {
			t.Fatalf("ParseError.Offset %d outside [0, %d]", pe.Offset, len(buf))
		}
		if pe.Offset < off {
			t.Fatalf("ParseError.Offset %d lies before the faulty event at byte %d", pe.Offset, off)
		}
		var we *fanotify.ParseError
		if !errors.As(walkErr, &we) {
			t.Fatalf("Parse failed (%v) but ParseOne at byte %d returned %v", err, off, walkErr)
		}
		if we.Offset+off != pe.Offset || we.Reason != pe.Reason {
			t.Fatalf("Parse: %v; ParseOne at byte %d: %v", err, off, walkErr)
		}
	})
}
