package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/testutil"
)

// crashChildEnv makes the test binary run crashChild instead of the tests;
// its value is "PATH ROUND".
const crashChildEnv = "FSHEALTH_STORE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(crashChildEnv); v != "" {
		crashChild(v)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashBatch is batch i of round r: three events, two deliveries, an action
// and an incident, all named after (r, i).
func crashBatch(r, i int) *Batch {
	name := fmt.Sprintf("r%d-b%d", r, i)
	f := []alert.Filesystem{fs1, fs2, fs3}[i%3]
	b := &Batch{Ext4Reported: map[string]uint64{fs1.UUID: uint64(r*1_000_000 + i)}}
	for j := 0; j < 3; j++ {
		b.Events = append(b.Events, errEvent(fmt.Sprintf("%s-e%d", name, j), time.Now(), f, "EIO", 1))
	}
	for _, ch := range []string{"webhook", "smtp"} {
		b.Deliveries = append(b.Deliveries, Delivery{Channel: ch, Alert: alert.Alert{ID: name, Event: &b.Events[0]}})
	}
	b.Actions = []Action{{IncidentKey: name + "/EIO", EventID: name + "-e0", Name: "remount-ro"}}
	b.Incidents = []Incident{{Key: name + "/EIO", Opened: time.Now(), Events: 3, Errors: 3}}
	return b
}

// crashChild commits batches until it is killed, printing each batch's number
// once Commit has returned.
func crashChild(arg string) {
	path, round, _ := strings.Cut(arg, " ")
	r, _ := strconv.Atoi(round)
	s, err := Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		if err := s.Commit(ctx, crashBatch(r, i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: the line is in the pipe when this
		// returns.
		fmt.Printf("%d\n", i)
	}
}

// TestCrashSafety kills a process that commits in a loop, at a random moment,
// and checks that every batch it reported committed survived, that no batch
// is half there, and that a read-only opener saw the data while the writer
// ran.
func TestCrashSafety(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := PathIn(t.TempDir())
	rounds := 4
	if testing.Short() {
		rounds = 1
	}
	reported := map[string]bool{} // batch names the children reported
	for r := 0; r < rounds; r++ {
		cmd := testutil.HelperCommand(t, 2*time.Minute, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", crashChildEnv, path, r))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 20 + rand.IntN(150)
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			i, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			reported[fmt.Sprintf("r%d-b%d", r, i)] = true
			n++
			if n == 10 {
				// The daemon is running: a reader sees its commits.
				ro, err := OpenReadOnly(path)
				if err != nil {
					t.Fatalf("read-only open while the writer runs: %v", err)
				}
				evs, err := ro.Events(ctx, EventQuery{FS: fs1.UUID, Limit: 5})
				if err != nil || len(evs) == 0 {
					t.Errorf("reader while the writer runs: %d events, %v", len(evs), err)
				}
				if _, ok, err := ro.Ext4Reported(ctx, fs1.UUID); !ok || err != nil {
					t.Errorf("reader while the writer runs: ext4 %v, %v", ok, err)
				}
				ro.Close()
			}
			if n == killAfter {
				// Let the next commit get under way.
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die of SIGKILL: %v", r, err)
		}
		t.Logf("round %d: killed after %d reported commits (target %d)", r, n, killAfter)

		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", r, err)
		}
		var check string
		if err := s.db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity check: %s, %v", check, err)
		}
		rows, err := s.db.Query("PRAGMA foreign_key_check")
		if err != nil {
			t.Fatal(err)
		}
		if rows.Next() {
			t.Errorf("foreign key violations after the crash")
		}
		rows.Close()
		verifyCrash(t, s, reported)
		s.Close()
	}
}

// verifyCrash checks that every reported batch is whole in s and that every
// batch in s is whole.
func verifyCrash(t *testing.T, s *Store, reported map[string]bool) {
	t.Helper()
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]int{} // batch name → events + deliveries + actions + incidents
	for _, e := range evs {
		parts[e.ID[:strings.LastIndex(e.ID, "-")]]++
	}
	due, err := s.DueDeliveries(ctx, time.Now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		parts[d.Alert.ID]++
	}
	acts, _ := s.PendingActions(ctx)
	for _, a := range acts {
		parts[strings.TrimSuffix(a.IncidentKey, "/EIO")]++
	}
	ins, _ := s.OpenIncidents(ctx)
	for _, in := range ins {
		parts[strings.TrimSuffix(in.Key, "/EIO")]++
	}
	const whole = 3 + 2 + 1 + 1
	for name, n := range parts {
		if n != whole {
			t.Errorf("batch %s is partly there: %d of %d rows", name, n, whole)
		}
	}
	for name := range reported {
		if parts[name] != whole {
			t.Errorf("batch %s was reported committed but has %d of %d rows", name, parts[name], whole)
		}
	}
	var errs uint64
	fss, _ := s.Filesystems(ctx)
	for _, f := range fss {
		errs += f.Errors
	}
	if errs != uint64(len(evs)) {
		t.Errorf("health rows count %d errors, the history has %d", errs, len(evs))
	}
	t.Logf("%d batches in the database, %d reported", len(parts), len(reported))
}
