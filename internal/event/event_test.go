package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/ext4"
	"github.com/fshealth/fshealth/internal/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func ptr[T any](v T) *T { return &v }

// samples are events of every shape, including hostile strings from the
// file system.
func samples() []Event {
	tm := Time{time.Date(2026, 11, 23, 21, 0, 0, 5, time.UTC)}
	st := &ext4.State{ErrorsCount: 3,
		FirstError: &ext4.ErrorInfo{Time: time.Unix(1795470877, 0).UTC(), Function: "trigger_test_error", Line: 129, Code: 5, Error: "EUCLEAN"},
		LastError:  &ext4.ErrorInfo{Time: time.Unix(1795470999, 0).UTC(), Function: "ext4_lookup", Line: 1787, Inode: 13, Code: 5, Error: "EUCLEAN"}}
	base := Event{Kind: KindError, Time: tm, Source: SourceFanotify, Errno: 117, Error: "EUCLEAN", ErrorText: "structure needs cleaning",
		ErrorCount: 1, PID: 42, FSID: "3434710c:449b99e7", Device: "/dev/loop0", DeviceNumber: "7:0", FSType: "ext4",
		UUID: "0ce10eaa-b1cc-431b-b8e3-c3c28ef0f428", Mountpoints: []string{"/srv/data"}, Ext4: st}
	sb := base
	ino := base
	ino.Inode, ino.Generation, ino.PathError = ptr(uint64(13)), ptr(uint32(3908447102)), "the inode cannot be opened by its handle (ESTALE): it is corrupted or was deleted"
	hostile := base
	hostile.ErrorCount = 4
	hostile.Label = "lbl\x1b[31m"
	hostile.Mountpoints = []string{"/srv/a b", "/mnt/x\ny"}
	hostile.Inode, hostile.Generation, hostile.Path = ptr(uint64(12)), ptr(uint32(1)), "/srv/a b/evil\n2026-01-01 EIO forged line $(rm -rf /) \"q\""
	raw := base
	raw.Errno, raw.Error, raw.ErrorText, raw.Ext4 = 5, "EIO", "input/output error", nil
	raw.Handle, raw.PathError = &Handle{Type: 0x4d, Bytes: "0102"}, "file system not known (not mounted in this namespace?)"
	raw.Device, raw.FSType, raw.UUID, raw.DeviceNumber, raw.Mountpoints = "", "", "", "", []string{}
	stacked := base
	stacked.Device, stacked.DeviceNumber = "/dev/dm-1", "253:1"
	stacked.Storage = []storage.Layer{
		{Name: "dm-1", Kind: storage.KindLVM, MountedAs: "/dev/vgA/data", DMName: "vgA-data", LV: "vgA/data", On: []string{"dm-0"}},
		{Name: "dm-0", Kind: storage.KindCrypt, DMName: "luks x\n\x1b[31m", On: []string{"md0"}},
		{Name: "md0", Kind: storage.KindMD, MD: &storage.MD{Level: "raid1", Degraded: 1,
			Members: []storage.Member{{Name: "sda2", State: "in_sync"}, {Name: "sdb2", State: "faulty"}}}, On: []string{"sda2", "sdb2"}},
		{Name: "sda2", Kind: storage.KindPartition, Partition: 2, On: []string{"sda"}},
		{Name: "sdb2", Kind: storage.KindPartition, Partition: 2, On: []string{"sdb"}},
		{Name: "sda", Kind: storage.KindDisk, Disk: &storage.Disk{Vendor: "ATA", Model: "FOO \"2000\"", Serial: "S123", Slot: "3", Enclosure: "0:0:8:0"}},
		{Name: "sdb", Kind: storage.KindDisk, Disk: &storage.Disk{Vendor: "ATA", Model: "BAR", Serial: "S 4\n56"}},
	}
	ov := Event{Kind: KindOverflow, Time: tm, Source: SourceFanotify, Message: "the queue overflowed"}
	// Sent before ext4 published its record, which follows.
	pending := base
	pending.Ext4, pending.Ext4Pending = nil, true
	record := Event{Kind: KindExt4, Time: tm, Source: SourceExt4Record, FSID: base.FSID, Device: base.Device,
		DeviceNumber: base.DeviceNumber, FSType: "ext4", UUID: base.UUID, Mountpoints: []string{"/srv/a b"}, Ext4: st}
	return []Event{sb, ino, hostile, raw, stacked, ov, pending, record}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n got:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestTextGolden(t *testing.T) {
	var b []byte
	for _, e := range samples() {
		b = AppendText(b, &e)
	}
	golden(t, "events.txt", b)
	if n := bytes.Count(b, []byte("\n")); n != len(samples()) {
		t.Errorf("%d lines for %d events: a hostile string split a line", n, len(samples()))
	}
	if bytes.ContainsRune(b, 0x1b) {
		t.Error("an escape character reached the terminal output")
	}
}

func TestJSONGolden(t *testing.T) {
	var b []byte
	for _, e := range samples() {
		var err error
		if b, err = AppendJSON(b, &e); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "events.ndjson", b)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(samples()) {
		t.Fatalf("%d lines for %d events", len(lines), len(samples()))
	}
	// The keys scripts rely on, and round-tripping.
	for i, l := range lines[:4] {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"time", "errno", "error", "error_count", "pid", "fsid", "device", "fstype", "uuid", "mountpoints"} {
			if _, ok := m[k]; !ok {
				t.Errorf("event %d lacks key %q", i, k)
			}
		}
		_, hasIno := m["inode"]
		_, hasGen := m["generation"]
		if hasIno != (samples()[i].Inode != nil) || hasGen != hasIno {
			t.Errorf("event %d: inode/generation presence wrong: %s", i, l)
		}
		var back Event
		if err := json.Unmarshal([]byte(l), &back); err != nil {
			t.Fatal(err)
		}
		if !back.Time.Equal(samples()[i].Time.Time) || back.Path != samples()[i].Path {
			t.Errorf("event %d does not round-trip: %+v", i, back)
		}
	}
	if !strings.Contains(lines[0], `"time":"2026-11-23T21:00:00.000000005Z"`) {
		t.Errorf("time not RFC 3339 with nanoseconds: %s", lines[0])
	}
}

func TestSafe(t *testing.T) {
	for in, want := range map[string]string{
		"/srv/data": "/srv/data", "": `""`, "a b": `"a b"`, "x\ny": `"x\ny"`, "\xff": `"\xff"`, `q"`: `"q\""`,
	} {
		if got := Safe(in); got != want {
			t.Errorf("Safe(%q) = %s, want %s", in, got, want)
		}
	}
	if got := Clean("a b\n\x1b"); got != `a b\n\x1b` {
		t.Errorf("Clean = %s", got)
	}
}

// BenchmarkAppendJSON: one error event as `fshealth watch --json` writes it.
func BenchmarkAppendJSON(b *testing.B) {
	e := samples()[1]
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendJSON(buf[:0], &e)
	}
}

// BenchmarkAppendText: the same event as `fshealth watch` writes it.
func BenchmarkAppendText(b *testing.B) {
	e := samples()[1]
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendText(buf[:0], &e)
	}
}

// TestExt4TextWithoutMountpoints: ext4's record of a file system that has
// no mount point left names none (no empty " at ").
func TestExt4TextWithoutMountpoints(t *testing.T) {
	e := Event{Kind: KindExt4, Time: Time{time.Unix(0, 0).UTC()}, Source: SourceExt4Record, Device: "/dev/sdb1", FSType: "ext4",
		Ext4: &ext4.State{ErrorsCount: 2}}
	got := string(AppendText(nil, &e))
	if want := " EXT4 RECORD of /dev/sdb1 ext4: ext4 has recorded 2 error(s)\n"; !strings.HasSuffix(got, want) {
		t.Errorf("AppendText = %q, want it to end in %q", got, want)
	}
}
