package fanotify_test

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fshealth/fshealth/fanotify"
	"github.com/fshealth/fshealth/internal/testutil"
)

// The values below were observed while capturing testdata/captured (see
// testdata/README.md).
const (
	capturedPID             = 6811       // the capturing process
	capturedAbortPID        = 6828       // the mount(8) that aborted the file system
	capturedInode           = 13         // dir/bad
	capturedGen      uint32 = 0xb13216cd // dir/bad's generation (2972849869)
	capturedMountID  uint64 = 0x80000075 // statx(STATX_MNT_ID_UNIQUE) of the mount point
)

// capturedFSID is statfs(2)'s f_fsid of the captured file system,
// ed802256:6b69c467.
var capturedFSID = fanotify.FSID{int32(-0x127fddaa), 0x6b69c467}

// capturedSBError is the FAN_FS_ERROR event of an error not tied to an
// inode, as captured.
func capturedSBError(pid int32, errno syscall.Errno, count uint32) fanotify.Event {
	return fanotify.Event{
		Mask: fanotify.FSError, FD: fanotify.NoFD, PID: pid,
		Records: fanotify.HasError | fanotify.HasFID,
		Errno:   errno, ErrorCount: count,
		FID: fanotify.FileID{FSID: capturedFSID, Handle: fanotify.Handle{Type: fanotify.HandleInvalid}},
	}
}

// capturedWant maps each file of testdata/captured to the events it must
// decode to.
var capturedWant = map[string][]fanotify.Event{
	"fs_error_trigger.bin": {capturedSBError(capturedPID, linuxEUCLEAN, 1)},
	"fs_error_bad_inode.bin": {{
		Mask: fanotify.FSError, FD: fanotify.NoFD, PID: capturedPID,
		Records: fanotify.HasError | fanotify.HasFID,
		Errno:   linuxEUCLEAN, ErrorCount: 1,
		FID: fanotify.FileID{FSID: capturedFSID, Handle: fanotify.Handle{
			Type:  fanotify.HandleIno32Gen,
			Bytes: []byte{0x0d, 0, 0, 0, 0xcd, 0x16, 0x32, 0xb1},
		}},
	}},
	"fs_error_count3.bin": {capturedSBError(capturedPID, linuxEUCLEAN, 3)},
	"fs_error_overflow.bin": {
		capturedSBError(capturedPID, linuxEUCLEAN, 1),
		{Mask: fanotify.QueueOverflow, FD: fanotify.NoFD},
	},
	"fs_error_abort.bin": {capturedSBError(capturedAbortPID, linuxESHUTDOWN, 1)},
	"mount_attach.bin": {{
		Mask: fanotify.MountAttach, FD: fanotify.NoFD, PID: capturedPID,
		Records: fanotify.HasMount, MountID: capturedMountID,
	}},
	"rename.bin": capturedRename(),
	"mount_detach.bin": {{
		Mask: fanotify.MountDetach, FD: fanotify.NoFD, PID: capturedPID,
		Records: fanotify.HasMount, MountID: capturedMountID,
	}},
}

// capturedRename is what rename.bin holds: a/old renamed to b/new on a
// tmpfs (see testdata/README.md), as a FAN_RENAME event and the
// moved_from and moved_to events, in a FAN_REPORT_DFID_NAME_TARGET group.
func capturedRename() []fanotify.Event {
	fsid := fanotify.FSID{int32(-0x42b2107f), 0x60ada38c} // bd4def81:60ada38c
	fid := func(b ...byte) fanotify.FileID {
		return fanotify.FileID{FSID: fsid, Handle: fanotify.Handle{Type: 1, Bytes: b}}
	}
	a := fid(0x75, 0x49, 0xe6, 0xdb, 2, 0, 0, 0, 0, 0, 0, 0)
	b := fid(0x24, 0xed, 0xae, 0x80, 3, 0, 0, 0, 0, 0, 0, 0)
	file := fid(0x70, 0x5f, 0xdc, 0xe8, 4, 0, 0, 0, 0, 0, 0, 0)
	const pid = 12947
	return []fanotify.Event{
		{Mask: fanotify.Rename, FD: fanotify.NoFD, PID: pid,
			Records:   fanotify.HasOldName | fanotify.HasNewName | fanotify.HasFID,
			OldDirFID: a, OldName: "old", NewDirFID: b, NewName: "new", FID: file},
		{Mask: fanotify.MovedFrom, FD: fanotify.NoFD, PID: pid,
			Records: fanotify.HasDirFID | fanotify.HasFID, DirFID: a, Name: "old", FID: file},
		{Mask: fanotify.MovedTo, FD: fanotify.NoFD, PID: pid,
			Records: fanotify.HasDirFID | fanotify.HasFID, DirFID: b, Name: "new", FID: file},
	}
}

// skipUnlessLittleEndian skips tests over the captured files, which hold
// little-endian x86_64 bytes, on big-endian machines.
func skipUnlessLittleEndian(t *testing.T) {
	t.Helper()
	if ne.Uint16([]byte{1, 0}) != 1 {
		testutil.Skip(t, testutil.NotApplicable, "testdata/captured was captured on a little-endian machine")
	}
}

// readCaptured returns every testdata/captured/*.bin file by base name.
func readCaptured(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "captured", "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no testdata/captured/*.bin files")
	}
	files := make(map[string][]byte)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	return files
}

// TestCaptured decodes the events captured from this kernel and checks
// every field.
func TestCaptured(t *testing.T) {
	skipUnlessLittleEndian(t)
	files := readCaptured(t)
	for name := range capturedWant {
		if _, ok := files[name]; !ok {
			t.Errorf("testdata/captured/%s is missing", name)
		}
	}
	for name, buf := range files {
		t.Run(name, func(t *testing.T) {
			want, ok := capturedWant[name]
			if !ok {
				t.Fatalf("no expectations for testdata/captured/%s: add them to capturedWant", name)
			}
			got, err := fanotify.Parse(nil, buf)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse decoded%s\nwant%s", formatEvents(got), formatEvents(want))
			}
			for _, ev := range got {
				switch {
				case ev.IsFSError():
					if ev.ErrorCount < 1 {
						t.Errorf("error event with error_count %d", ev.ErrorCount)
					}
					if ev.Records&(fanotify.HasError|fanotify.HasFID) != fanotify.HasError|fanotify.HasFID {
						t.Errorf("error event without the mandatory error and FID records: %+v", ev)
					}
				case ev.IsOverflow():
					if ev.Records != 0 || ev.FD != fanotify.NoFD {
						t.Errorf("overflow event %+v carries records or an fd", ev)
					}
				}
			}
		})
	}
}

// TestCapturedInode checks that the corrupted inode's handle decodes to the
// inode number and generation debugfs showed.
func TestCapturedInode(t *testing.T) {
	skipUnlessLittleEndian(t)
	buf, err := os.ReadFile(filepath.Join("testdata", "captured", "fs_error_bad_inode.bin"))
	if err != nil {
		t.Fatal(err)
	}
	evs, err := fanotify.Parse(nil, buf)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Parse = %s, %v", formatEvents(evs), err)
	}
	h := evs[0].FID.Handle
	if h.IsInvalid() {
		t.Fatal("handle is FILEID_INVALID")
	}
	ino, gen, ok := h.Inode()
	if !ok || ino != capturedInode || gen != capturedGen {
		t.Errorf("Inode() = %d, %#x, %v; want %d, %#x, true", ino, gen, ok, capturedInode, capturedGen)
	}
	if got := evs[0].FID.FSID.String(); got != "ed802256:6b69c467" {
		t.Errorf("FSID = %s, want ed802256:6b69c467 (statfs f_fsid)", got)
	}
}

// TestCapturedLayout checks the test helpers against the kernel: events the
// helpers build from the observed values must equal the captured bytes,
// record order (FID before ERROR) and padding included.
func TestCapturedLayout(t *testing.T) {
	skipUnlessLittleEndian(t)
	files := readCaptured(t)
	fid := func(htype int32, handle []byte) []byte {
		return fidRecord(fanotify.InfoFID, capturedFSID, htype, handle, "")
	}
	built := map[string][]byte{
		"fs_error_trigger.bin": event(fanotify.FSError, fanotify.NoFD, capturedPID,
			fid(fanotify.HandleInvalid, nil), errorRecord(linuxEUCLEAN, 1)),
		"fs_error_bad_inode.bin": event(fanotify.FSError, fanotify.NoFD, capturedPID,
			fid(fanotify.HandleIno32Gen, ext4Handle(capturedInode, capturedGen)), errorRecord(linuxEUCLEAN, 1)),
		"fs_error_overflow.bin": concat(
			event(fanotify.FSError, fanotify.NoFD, capturedPID, fid(fanotify.HandleInvalid, nil), errorRecord(linuxEUCLEAN, 1)),
			event(fanotify.QueueOverflow, fanotify.NoFD, 0)),
		"mount_attach.bin": event(fanotify.MountAttach, fanotify.NoFD, capturedPID, mountRecord(capturedMountID)),
	}
	for name, want := range built {
		if got := files[name]; !bytes.Equal(got, want) {
			t.Errorf("%s:\n captured %x\n built    %x", name, got, want)
		}
	}
}

// readCorpusEntry decodes a one-value `go test fuzz v1` corpus file holding
// a []byte.
func readCorpusEntry(data []byte) ([]byte, bool) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		return nil, false
	}
	lit, ok := strings.CutPrefix(lines[1], "[]byte(")
	if !ok {
		return nil, false
	}
	lit, ok = strings.CutSuffix(lit, ")")
	if !ok {
		return nil, false
	}
	s, err := strconv.Unquote(lit)
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

// TestCapturedInFuzzCorpus checks that every captured file is also a seed
// of FuzzParse.
func TestCapturedInFuzzCorpus(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := readCorpusEntry(data)
		if !ok {
			t.Errorf("%s is not a go test fuzz v1 []byte entry", p)
			continue
		}
		seeds = append(seeds, b)
	}
	for name, buf := range readCaptured(t) {
		found := false
		for _, s := range seeds {
			if bytes.Equal(s, buf) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("testdata/captured/%s is not in testdata/fuzz/FuzzParse", name)
		}
	}
}
