package e2e_test

import (
	"context"
	bin "encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	fsevent "github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/store"
	"github.com/fshealth/fshealth/internal/testutil"
)

// reportDoc is `fshealth report --json`.
type reportDoc struct {
	Filesystems []struct {
		UUID   string `json:"uuid"`
		Device string `json:"device"`
		Errors uint64 `json:"errors"`
		Events uint64 `json:"events"`
		Groups map[string][]struct {
			Value  string `json:"value"`
			Path   string `json:"path"`
			Errors uint64 `json:"errors"`
			Events uint64 `json:"events"`
		} `json:"groups"`
		Rate struct {
			Bucket string `json:"bucket"`
			Counts []struct {
				Errors uint64 `json:"errors"`
			} `json:"counts"`
		} `json:"rate"`
	} `json:"filesystems"`
}

// damagedFile is one of `fshealth status --json`'s damaged files.
type damagedFile struct {
	Inode       uint64  `json:"inode"`
	Generation  *uint32 `json:"generation"`
	Path        string  `json:"path"`
	PathPending bool    `json:"path_pending"`
	PathError   string  `json:"path_error"`
	State       string  `json:"state"`
	Errno       string  `json:"errno"`
	Errors      uint64  `json:"errors"`
	Events      uint64  `json:"events"`
}

// damagedFiles returns the damaged files `status --json` lists, by device.
func damagedFiles(t *testing.T, state string) map[string][]damagedFile {
	t.Helper()
	var doc struct {
		Filesystems []struct {
			Device       string        `json:"device"`
			DamagedFiles []damagedFile `json:"damaged_files"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(statusOut(t, "--json", "--state-dir", state)), &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]damagedFile{}
	for _, f := range doc.Filesystems {
		if f.DamagedFiles == nil {
			t.Fatalf("status --json of %s has no damaged_files list", f.Device)
		}
		out[f.Device] = f.DamagedFiles
	}
	return out
}

// groupCounts renders a grouping of a report as "value=errors/events",
// sorted, with the values passed through name.
func groupCounts(doc *reportDoc, dev, dim string, name func(string) string) string {
	for _, f := range doc.Filesystems {
		if f.Device != dev {
			continue
		}
		var out []string
		for _, g := range f.Groups[dim] {
			out = append(out, fmt.Sprintf("%s=%d/%d", name(g.Value), g.Errors, g.Events))
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	return "(no such file system)"
}

// errorsCount is ext4's own count of the errors of im.
func errorsCount(t *testing.T, im *loopfs.Image) uint64 {
	t.Helper()
	n, err := im.ErrorsCount()
	if err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

// lookUp looks path up n times, each failing with EUCLEAN.
func lookUp(t *testing.T, path string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := os.Lstat(path); !errors.Is(err, syscall.EUCLEAN) {
			t.Fatalf("looking up %s: %v, want EUCLEAN", path, err)
		}
	}
}

// TestReportOnRealErrors: on two real ext4 file systems, a corrupted file
// looked up three times (and another, twice), a corrupted directory entry
// looked up twice and trigger_fs_error: `fshealth report` groups them by
// code location, inode, errno, source and device with exact counts that
// add up to the kernel's own errors_count; `status --json` lists the
// damaged files with their paths, found read-only, until `resolve`.
func TestReportOnRealErrors(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	testutil.CheckNoLeaks(t)
	a, b := testutil.NewExt4(t, 0), testutil.NewExt4(t, 0)
	badFile := corruptFile(t, a, "dir/bad")
	tree := filepath.Join(a.Mountpoint, "tree")
	corruptDir(t, a, tree)
	var st syscall.Stat_t
	if err := syscall.Stat(tree, &st); err != nil {
		t.Fatal(err)
	}
	badDir := st.Ino
	victim := corruptFile(t, b, "victim")

	dir := t.TempDir()
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, strings.Replace(baseConfig(a.Mountpoint), tomlString(a.Mountpoint), tomlString(a.Mountpoint)+", "+tomlString(b.Mountpoint), 1), 0o600)
	state := filepath.Join(dir, "state")
	d := startDaemon(t, cfg, state)
	beforeA, beforeB := errorsCount(t, a), errorsCount(t, b)

	// One error at a time, each in the history before the next: errors
	// raised while one is queued unread are folded by the kernel into
	// that one event (its error_count), which names the first's inode.
	n := uint64(0)
	one := func(raise func()) {
		raise()
		n++
		waitErrors(t, state, n)
	}
	for range 3 {
		one(func() { lookUp(t, filepath.Join(a.Mountpoint, "dir/bad"), 1) })
	}
	for range 2 {
		one(func() { lookUp(t, filepath.Join(tree, "bad_link"), 1) })
	}
	one(func() { trigger(t, a, "e2e: report one") })
	one(func() { trigger(t, a, "e2e: report two") })
	for range 2 {
		one(func() { lookUp(t, filepath.Join(b.Mountpoint, "victim"), 1) })
	}
	one(func() { trigger(t, b, "e2e: report three") })
	// The paths are found read-only on the devices.
	var files map[string][]damagedFile
	eventually(t, func() string { return fmt.Sprintf("damaged files without their paths: %+v", files) }, func() bool {
		files = damagedFiles(t, state)
		for _, fs := range files {
			for _, f := range fs {
				if f.Path == "" {
					return false
				}
			}
		}
		return len(files[a.Dev]) == 2 && len(files[b.Dev]) == 1
	})
	// Marker errors make sure ext4 has published its count with every
	// error before them.
	one(func() { trigger(t, a, "e2e: marker") })
	one(func() { trigger(t, b, "e2e: marker") })
	deltaA, deltaB := errorsCount(t, a)-beforeA, errorsCount(t, b)-beforeB
	if deltaA != 8 || deltaB != 4 {
		t.Errorf("ext4 counted %d and %d errors, want 8 and 4: fshealth must raise none", deltaA, deltaB)
	}

	var doc reportDoc
	if err := json.Unmarshal([]byte(mustRun(t, "report", "--json", "--state-dir", state)), &doc); err != nil {
		t.Fatal(err)
	}
	totals := map[string]uint64{}
	for _, f := range doc.Filesystems {
		totals[f.Device] = f.Errors
		var charted uint64
		for _, c := range f.Rate.Counts {
			charted += c.Errors
		}
		if charted != f.Errors || f.Rate.Bucket != "hour" {
			t.Errorf("%s: the chart counts %d errors per %s, the report %d", f.Device, charted, f.Rate.Bucket, f.Errors)
		}
	}
	if totals[a.Dev] != deltaA || totals[b.Dev] != deltaB || len(doc.Filesystems) != 2 {
		t.Errorf("report totals %v, want ext4's own counts %s=%d %s=%d", totals, a.Dev, deltaA, b.Dev, deltaB)
	}
	// Code locations: line numbers differ between kernels; which lookup
	// is which shows in the inode groups.
	line := func(v string) string {
		f, _, _ := strings.Cut(v, ":")
		return f + ":N"
	}
	for _, c := range []struct {
		dev, dim string
		name     func(string) string
		want     string
	}{
		{a.Dev, "location", line, "ext4_lookup:N=2/2 ext4_lookup:N=3/3 trigger_test_error:N=3/3"},
		{a.Dev, "file", func(v string) string {
			return map[string]string{fmt.Sprint(badFile): "file", fmt.Sprint(badDir): "dir"}[v]
		}, "dir=2/2 file=3/3"},
		{a.Dev, "errno", strings.Clone, "EUCLEAN=8/8"},
		{a.Dev, "source", strings.Clone, "fanotify=8/8"},
		{a.Dev, "device", strings.Clone, a.Dev + "=8/8"},
		{b.Dev, "location", line, "ext4_lookup:N=2/2 trigger_test_error:N=2/2"},
		{b.Dev, "file", func(v string) string { return map[string]string{fmt.Sprint(victim): "victim"}[v] }, "victim=2/2"},
		{b.Dev, "errno", strings.Clone, "EUCLEAN=4/4"},
	} {
		if got := groupCounts(&doc, c.dev, c.dim, c.name); got != c.want {
			t.Errorf("%s by %s: %s, want %s", c.dev, c.dim, got, c.want)
		}
	}
	// The two lookups of the file and of the directory are two places.
	for _, f := range doc.Filesystems {
		if f.Device == a.Dev && len(f.Groups["location"]) == 3 && f.Groups["location"][0].Value == f.Groups["location"][1].Value {
			t.Errorf("the file's and the directory's lookups have one location: %+v", f.Groups["location"])
		}
	}
	text := mustRun(t, "report", "--since", "1h", "--state-dir", state)
	for _, w := range []string{"errors per hour", "LOCATION", "ext4_lookup:", "trigger_test_error:", filepath.Join(a.Mountpoint, "dir/bad"), tree} {
		if !strings.Contains(text, w) {
			t.Errorf("report text has no %q:\n%s", w, text)
		}
	}
	if _, stderr, code := run(t, "report", "--fs", "/nowhere", "--state-dir", state); code == 0 || !strings.Contains(stderr, "no file system known as /nowhere") {
		t.Errorf("report --fs /nowhere: status %d, %q", code, stderr)
	}

	// The damaged files, like zpool status -v.
	got := func(fs []damagedFile) string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%d %s %s %d/%d %q", f.Inode, f.Path, f.Errno, f.Errors, f.Events, f.State))
		}
		sort.Strings(out)
		return strings.Join(out, ", ")
	}
	wantA := []string{fmt.Sprintf("%d %s EUCLEAN 3/3 \"\"", badFile, filepath.Join(a.Mountpoint, "dir/bad")), fmt.Sprintf("%d %s EUCLEAN 2/2 \"\"", badDir, tree)}
	sort.Strings(wantA)
	if g := got(files[a.Dev]); g != strings.Join(wantA, ", ") {
		t.Errorf("damaged files of %s: %s, want %s", a.Dev, g, strings.Join(wantA, ", "))
	}
	if g, w := got(files[b.Dev]), fmt.Sprintf("%d %s EUCLEAN 2/2 \"\"", victim, filepath.Join(b.Mountpoint, "victim")); g != w {
		t.Errorf("damaged files of %s: %s, want %s", b.Dev, g, w)
	}
	table := statusOut(t, "--files", "--state-dir", state)
	if !strings.Contains(table, "damaged files on "+a.Dev) || !strings.Contains(table, filepath.Join(b.Mountpoint, "victim")) {
		t.Errorf("status --files:\n%s", table)
	}

	// Resolved: that file system's list is empty, the other's stays, and
	// the report still has the history.
	mustRun(t, "resolve", "--state-dir", state, a.Mountpoint)
	files = damagedFiles(t, state)
	if len(files[a.Dev]) != 0 || len(files[b.Dev]) != 1 {
		t.Errorf("damaged files after resolving %s: %+v", a.Dev, files)
	}
	if table := statusOut(t, "--files", "--state-dir", state); strings.Contains(table, "damaged files on "+a.Dev) {
		t.Errorf("status --files after resolving %s:\n%s", a.Dev, table)
	}
	var after reportDoc
	if err := json.Unmarshal([]byte(mustRun(t, "report", "--json", "--fs", a.Mountpoint, "--state-dir", state)), &after); err != nil {
		t.Fatal(err)
	}
	if len(after.Filesystems) != 1 || after.Filesystems[0].Errors != deltaA {
		t.Errorf("report --fs %s after resolve: %+v", a.Mountpoint, after.Filesystems)
	}
	d.stop()
}

// TestDeletedDamagedFile: a file an error was about that is deleted before
// its path is found is listed as deleted. The error is written to the
// history as a daemon leaves an unfinished lookup (as in
// TestPendingPathLookupResumed); the lookup the next daemon makes reads the
// real device, where the file was deleted.
func TestDeletedDamagedFile(t *testing.T) {
	testutil.RequireCommand(t, "debugfs", "e2fsprogs")
	im := newFS(t)
	file := filepath.Join(im.Mountpoint, "doomed")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, file, 0)
	if err != nil || len(h.Bytes()) != 8 {
		t.Fatalf("file handle of %s: %v", file, err)
	}
	ino, gen := uint64(bin.NativeEndian.Uint32(h.Bytes())), bin.NativeEndian.Uint32(h.Bytes()[4:])
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	db, err := store.Open(store.PathIn(state))
	if err != nil {
		t.Fatal(err)
	}
	e := fsevent.Event{ID: "gone-1", Kind: fsevent.KindError, Time: fsevent.Time{Time: time.Now()}, Source: fsevent.SourceFanotify,
		Errno: 117, Error: "EUCLEAN", ErrorCount: 1, Device: im.Dev, FSType: "ext4", UUID: ext4UUID(t, im),
		Mountpoints: []string{im.Mountpoint}, Inode: &ino, Generation: &gen, PathPending: true}
	err = db.Commit(context.Background(), &store.Batch{Events: []fsevent.Event{e}})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "fshealth.toml")
	writeFile(t, cfg, baseConfig(im.Mountpoint), 0o600)
	d := startDaemon(t, cfg, state)
	var files map[string][]damagedFile
	eventually(t, func() string { return fmt.Sprintf("damaged files %+v, want inode %d deleted", files, ino) }, func() bool {
		files = damagedFiles(t, state)
		return len(files[im.Dev]) == 1 && !files[im.Dev][0].PathPending
	})
	if f := files[im.Dev][0]; f.Inode != ino || f.State != "deleted" || f.Path != "" || !strings.Contains(f.PathError, "no directory entry") {
		t.Errorf("damaged file %+v, want inode %d deleted", f, ino)
	}
	if table := statusOut(t, "--files", "--state-dir", state); !strings.Contains(table, "DELETED") {
		t.Errorf("status --files does not say the file was deleted:\n%s", table)
	}
	d.stop()
}
