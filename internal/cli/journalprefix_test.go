package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// streamFile creates a file and returns it with its "dev:ino", as systemd
// puts it in $JOURNAL_STREAM.
func streamFile(t *testing.T, name string) (*os.File, string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return f, fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestJournalPriorityPrefixes: when $JOURNAL_STREAM names stderr, every
// log line starts with the syslog priority of its level (attributes and
// groups kept); when it names another stream, or is not set, lines are
// plain.
func TestJournalPriorityPrefixes(t *testing.T) {
	journal, stream := streamFile(t, "journal")
	other, _ := streamFile(t, "other")
	t.Setenv("JOURNAL_STREAM", stream)
	for _, c := range []struct {
		f      *os.File
		prefix bool
	}{{journal, true}, {other, false}} {
		g := &globals{stderr: c.f, verbose: true}
		log := g.logger().With("daemon", "fshealth").WithGroup("g")
		log.Debug("d")
		log.Info("i", "k", "v")
		log.Warn("w")
		log.Error("e", "err", "line one\nline two")
		b, err := os.ReadFile(c.f.Name())
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines, want 4:\n%s", len(lines), b)
		}
		for i, want := range []string{"<7>", "<6>", "<4>", "<3>"} {
			if !c.prefix {
				want = "time="
			}
			if !strings.HasPrefix(lines[i], want) || !strings.Contains(lines[i], "daemon=fshealth") {
				t.Errorf("line %d %q, want it to start with %q and keep the attributes", i, lines[i], want)
			}
		}
		if !strings.Contains(lines[1], "g.k=v") {
			t.Errorf("the group is lost: %q", lines[1])
		}
	}
	os.Unsetenv("JOURNAL_STREAM")
	if journalStream(journal) {
		t.Error("without $JOURNAL_STREAM a file is taken for the journal")
	}
	t.Setenv("JOURNAL_STREAM", "garbage")
	if journalStream(journal) {
		t.Error("a malformed $JOURNAL_STREAM matches")
	}
}

func TestPrefixLines(t *testing.T) {
	if got := prefixLines("<3>", "fshealth: bad\nRun 'x' for usage.\n"); got != "<3>fshealth: bad\n<3>Run 'x' for usage.\n" {
		t.Errorf("got %q", got)
	}
}
