package journal

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/testutil"
)

const catalogFile = "../../../dist/fshealth.catalog"

// catalogEntry is one entry of a journald message catalog.
type catalogEntry struct {
	id      string
	headers map[string]string
	body    string
}

// parseCatalog reads a catalog in journald's format: "-- ID" starts an
// entry, header lines ("Subject: ...") follow up to an empty line, then the
// text; lines starting with "#" outside entries are comments.
func parseCatalog(t *testing.T, path string) []catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idLine := regexp.MustCompile(`^-- ([0-9a-f]{32})$`)
	var out []catalogEntry
	var cur *catalogEntry
	inBody := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if m := idLine.FindStringSubmatch(line); m != nil {
			out = append(out, catalogEntry{id: m[1], headers: map[string]string{}})
			cur, inBody = &out[len(out)-1], false
			continue
		}
		switch {
		case cur == nil:
			if line != "" && !strings.HasPrefix(line, "#") {
				t.Fatalf("%s:%d: text outside an entry: %q", path, n, line)
			}
		case !inBody && line == "":
			inBody = true
		case !inBody:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s:%d: not a header line: %q", path, n, line)
			}
			cur.headers[k] = v
		default:
			cur.body += line + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// messageIDs returns every MessageID* constant of journal.go, read from
// the source so that a new one without a catalog entry is noticed.
func messageIDs(t *testing.T) map[string]string {
	t.Helper()
	src, err := os.ReadFile("journal.go")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, m := range regexp.MustCompile(`(MessageID\w+) = "([0-9a-f]{32})"`).FindAllStringSubmatch(string(src), -1) {
		ids[m[2]] = m[1]
	}
	if len(ids) < 9 {
		t.Fatalf("found %d message ids in journal.go", len(ids))
	}
	return ids
}

// TestCatalogCoversMessageIDs checks that dist/fshealth.catalog has one
// complete entry for every MESSAGE_ID fshealth logs, and none for an id it
// does not.
func TestCatalogCoversMessageIDs(t *testing.T) {
	ids := messageIDs(t)
	entries := parseCatalog(t, catalogFile)
	seen := map[string]bool{}
	fieldRef := regexp.MustCompile(`@([A-Z0-9_]+)@`)
	for _, e := range entries {
		name, ok := ids[e.id]
		switch {
		case !ok:
			t.Errorf("catalog entry %s is no MESSAGE_ID of journal.go", e.id)
		case seen[e.id]:
			t.Errorf("catalog entry %s (%s) is there twice", e.id, name)
		}
		seen[e.id] = true
		if e.headers["Subject"] == "" || e.headers["Defined-By"] != "fshealth" || strings.TrimSpace(e.body) == "" {
			t.Errorf("catalog entry %s (%s) lacks a subject, Defined-By or text: %+v", e.id, name, e)
		}
		// Every field the text refers to is one fshealth sets.
		for _, m := range fieldRef.FindAllStringSubmatch(e.headers["Subject"]+e.body, -1) {
			if !strings.HasPrefix(m[1], "FSHEALTH_") {
				t.Errorf("catalog entry %s refers to field %s", e.id, m[1])
			}
		}
	}
	for id, name := range ids {
		if !seen[id] {
			t.Errorf("%s (%s) has no catalog entry", name, id)
		}
	}
}

// TestCatalogFieldsAreSet checks that the FSHEALTH_* fields each entry's
// text refers to are among the fields fshealth sends with that id.
func TestCatalogFieldsAreSet(t *testing.T) {
	sent := map[string][]string{}
	record := func(fields []Field) {
		var id string
		var names []string
		for _, f := range fields {
			if f.Name == "MESSAGE_ID" {
				id = f.Value
			}
			names = append(names, f.Name)
		}
		sent[id] = append(sent[id], names...)
	}
	for _, kind := range []string{event.KindError, event.KindOverflow, event.KindRedundancy} {
		e := hostileEvent()
		e.Kind = kind
		record(EventFields(e))
	}
	for _, a := range []string{"error", "digest", "reminder", "resolved", "test", "other"} {
		al := hostileAlert()
		al.Type = a
		record(AlertFields(al))
	}
	fieldRef := regexp.MustCompile(`@([A-Z0-9_]+)@`)
	for _, e := range parseCatalog(t, catalogFile) {
		names, ok := sent[e.id]
		if !ok {
			t.Errorf("no entry was sent with catalog entry %s's id", e.id)
		}
		for _, m := range fieldRef.FindAllStringSubmatch(e.headers["Subject"]+e.body, -1) {
			if !slices.Contains(names, m[1]) {
				t.Errorf("catalog entry %s refers to %s, which its entries do not carry", e.id, m[1])
			}
		}
	}
}

// TestCatalogUpdates installs the catalog into a scratch root and builds
// journald's catalog database there with the real `journalctl
// --update-catalog`, as the package's installation does, then checks that
// journalctl lists every entry with its subject.
func TestCatalogUpdates(t *testing.T) {
	testutil.RequireCommand(t, "journalctl", "systemd")
	root := t.TempDir()
	dir := filepath.Join(root, "usr", "lib", "systemd", "catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fshealth.catalog"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("journalctl", "--root="+root, "--update-catalog").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	out, err := exec.Command("journalctl", "--root="+root, "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	listed := string(out)
	for _, e := range parseCatalog(t, catalogFile) {
		if want := e.id + " fshealth: " + e.headers["Subject"]; !strings.Contains(listed, want) {
			t.Errorf("journalctl does not list %q:\n%s", want, listed)
		}
	}
}
