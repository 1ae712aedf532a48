package actions

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// helperArg as os.Args[1] makes the test binary act as a test program
// instead of running tests; os.Args[2] is the mode.
const helperArg = "fshealth-actions-test-helper"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		os.Exit(helper(os.Args[2], os.Args[3:]))
	}
	testutil.MainInMountNamespace(m)
}

// helperRecord is what the "record" helper writes: its exact argv and
// environment.
type helperRecord struct {
	Argv []string `json:"argv"`
	Env  []string `json:"env"`
}

// helper runs one of the test programs:
//
//	record FILE ARGS...   write argv and environment as JSON to FILE
//	spawn PIDFILE         start sleep, write "self child" pids, sleep
//	ignoreterm PIDFILE    ignore SIGTERM, write the pid, sleep
//	background PIDFILE    start sleep holding stdout, write its pid, exit 0
//	output N              write N bytes: "HEAD", filler, "TAIL"
//	exit N MESSAGE        print MESSAGE and exit with status N
//	progress FD           print $FSHEALTH_PROGRESS_FD, write progress lines to FD
func helper(mode string, args []string) int {
	switch mode {
	case "record":
		b, _ := json.Marshal(helperRecord{Argv: os.Args, Env: os.Environ()})
		if err := os.WriteFile(args[0], b, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("recorded")
		return 0
	case "spawn", "background":
		c := exec.Command("sleep", "300")
		c.Stdout = os.Stdout
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		pids := fmt.Sprintf("%d %d", os.Getpid(), c.Process.Pid)
		if err := os.WriteFile(args[0], []byte(pids), 0o600); err != nil {
			return 1
		}
		if mode == "background" {
			return 0
		}
		time.Sleep(time.Hour)
		return 0
	case "ignoreterm":
		signal.Ignore(syscall.SIGTERM)
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
			return 1
		}
		time.Sleep(time.Hour)
		return 0
	case "output":
		n, _ := strconv.Atoi(args[0])
		b := []byte("HEAD" + strings.Repeat("x", n-8) + "TAIL")
		os.Stdout.Write(b)
		return 0
	case "progress":
		// e2fsck's progress lines, one hostile and one too long, on the
		// descriptor args[0] ("none": fails as descriptor 3 is closed).
		fmt.Println(os.Getenv("FSHEALTH_PROGRESS_FD"))
		if args[0] == "none" {
			args[0] = "3"
		}
		fd, _ := strconv.Atoi(args[0])
		f := os.NewFile(uintptr(fd), "progress")
		_, err := fmt.Fprintf(f, "1 0 10 /dev/x\n1 5 10 a b\n1 11 10 x\n%s\n2 3 3 y\n2 4 4", strings.Repeat("9", 5000))
		if err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	case "exit":
		n, _ := strconv.Atoi(args[0])
		fmt.Fprintln(os.Stderr, args[1])
		return n
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

// helperArgv returns the argv that runs the test binary as helper mode.
func helperArgv(t *testing.T, mode string, args ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{exe, helperArg, mode}, args...)
}
