package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// markerPrefix starts the lines the guest's /init prints between test
// binaries (see init.sh).
const markerPrefix = "@@MATRIX "

// guestReport is the parsed console log of one guest.
type guestReport struct {
	Uname          string // uname -r
	Build          string // uname -v
	Done           bool   // /init reached its end
	ModuleFailures []string
	Packages       map[string]*packageReport
}

// packageReport is the output of one test binary.
type packageReport struct {
	Ended  bool   // the END marker was seen
	Status string // the binary's exit status, from the END marker
	Tests  map[string]*testReport
}

// testReport is what go test -v said about one top-level test.
type testReport struct {
	Result  string // "PASS", "FAIL", "SKIP", or "" if never reported
	Elapsed string
	Output  []string
}

// resultLine matches the line that ends a top-level test.
var resultLine = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) \(([^)]*)\)`)

// eventLine matches the lines go test -v prints when a test starts or
// resumes.
var eventLine = regexp.MustCompile(`^=== (?:RUN|CONT|NAME|PAUSE)\s+(\S+)`)

// parseConsole parses a guest's console log.
func parseConsole(lines []string) *guestReport {
	r := &guestReport{Packages: map[string]*packageReport{}}
	var pkg *packageReport
	var cur string
	for _, line := range lines {
		if rest, ok := cutMarker(line); ok {
			pkg, cur = r.marker(rest, pkg), ""
			continue
		}
		if pkg == nil {
			continue
		}
		cur = pkg.line(line, cur)
	}
	return r
}

// cutMarker returns what follows the marker prefix in line. The prefix may
// come after terminal escape sequences that firmware printed on the same
// line.
func cutMarker(line string) (string, bool) {
	i := strings.Index(line, markerPrefix)
	if i < 0 {
		return "", false
	}
	return line[i+len(markerPrefix):], true
}

// marker handles one marker line and returns the package now running.
func (r *guestReport) marker(rest string, pkg *packageReport) *packageReport {
	kind, args, _ := strings.Cut(rest, " ")
	switch kind {
	case "KERNEL":
		r.Uname, r.Build, _ = strings.Cut(args, " ")
	case "MODULE-FAILED":
		r.ModuleFailures = append(r.ModuleFailures, args)
	case "BEGIN":
		p := &packageReport{Tests: map[string]*testReport{}}
		r.Packages[args] = p
		return p
	case "END":
		if pkg != nil {
			pkg.Ended = true
			for _, f := range strings.Fields(args) {
				if v, ok := strings.CutPrefix(f, "rc="); ok {
					pkg.Status = v
				}
			}
		}
	case "DONE":
		r.Done = true
	}
	return nil
}

// line files one line of go test -v output under the test it belongs to
// and returns the test that the following lines belong to.
func (p *packageReport) line(line, cur string) string {
	if m := eventLine.FindStringSubmatch(line); m != nil {
		cur, _, _ = strings.Cut(m[1], "/")
	} else if m := resultLine.FindStringSubmatch(line); m != nil && !strings.Contains(m[2], "/") {
		cur = m[2]
		p.test(cur).Result, p.test(cur).Elapsed = m[1], m[3]
	}
	if cur != "" {
		t := p.test(cur)
		t.Output = append(t.Output, line)
	}
	return cur
}

// test returns the report of test name, creating it.
func (p *packageReport) test(name string) *testReport {
	t, ok := p.Tests[name]
	if !ok {
		t = &testReport{}
		p.Tests[name] = t
	}
	return t
}

// logMessage matches a t.Log/t.Skip/t.Error line: "    file_test.go:12: message".
var logMessage = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: (.*)$`)

// Messages returns what the test logged (t.Log, t.Error, t.Skip, ...), one
// message per line, without the file:line prefix.
func (t *testReport) Messages() []string {
	var msgs []string
	for _, line := range t.Output {
		if m := logMessage.FindStringSubmatch(line); m != nil {
			msgs = append(msgs, m[1])
		}
	}
	return msgs
}

// Reason returns the test's last logged message: for a skipped test, why.
func (t *testReport) Reason() string {
	if msgs := t.Messages(); len(msgs) > 0 {
		return msgs[len(msgs)-1]
	}
	return "no reason given"
}

// cellState is the verdict of one test on one kernel.
type cellState int

// Verdicts, from best to worst.
const (
	cellPass  cellState = iota // passed
	cellSkip                   // skipped where its feature is missing
	cellKnown                  // failed, as a known failure says
	cellFail                   // failed, skipped where it must run, or never reported
)

// cell is one test on one kernel.
type cell struct {
	State  cellState
	Note   string   // why it skipped or failed
	Output []string // the test's output, for a failure
}

// evaluate judges test t on the kernel of run g, whose log parsed as rep.
func evaluate(t guestTest, g *guestRun, rep *guestReport) cell {
	tr, missing := findTest(t, g, rep)
	if missing != "" {
		var partial []string
		if tr != nil {
			partial = tr.Output
		}
		return cell{State: cellFail, Note: missing, Output: partial}
	}
	upstream := g.Kernel.Upstream()
	known := knownFailureFor(t, upstream)
	switch tr.Result {
	case "PASS":
		if known != nil {
			return cell{State: cellPass, Note: "passes where matrix/testset.go lists a known failure: remove the entry"}
		}
		return cell{State: cellPass}
	case "SKIP":
		if t.Needs != nil && compareVersions(upstream, t.Needs.Since) < 0 {
			return cell{State: cellSkip, Note: tr.Reason()}
		}
		note := "skipped: " + tr.Reason()
		if t.Needs != nil {
			note = fmt.Sprintf("skipped on Linux %s, which has %s (Linux %s+): %s", upstream, t.Needs.Name, t.Needs.Since, tr.Reason())
		}
		return cell{State: cellFail, Note: note, Output: tr.Output}
	}
	if known != nil && known.matches(tr) {
		return cell{State: cellKnown, Note: known.Reason, Output: tr.Output}
	}
	return cell{State: cellFail, Note: "failed: " + tr.Reason(), Output: tr.Output}
}

// knownFailureFor returns the known failure of t that covers upstream
// version v, or nil.
func knownFailureFor(t guestTest, v string) *knownFailure {
	for i, k := range t.Known {
		if (k.From == "" || compareVersions(v, k.From) >= 0) && (k.Before == "" || compareVersions(v, k.Before) < 0) {
			return &t.Known[i]
		}
	}
	return nil
}

// matches reports whether a failed test failed exactly the known way: it
// logged at least one message, and every message matches k.Match.
func (k *knownFailure) matches(tr *testReport) bool {
	re, err := regexp.Compile(k.Match)
	if err != nil {
		return false
	}
	msgs := tr.Messages()
	for _, m := range msgs {
		if !re.MatchString(m) {
			return false
		}
	}
	return len(msgs) > 0
}

// findTest returns t's report in rep, or why it has no result (with what
// the test printed before the guest stopped, if anything).
func findTest(t guestTest, g *guestRun, rep *guestReport) (*testReport, string) {
	if g.Err != nil {
		return nil, "guest failed: " + g.Err.Error()
	}
	stopped := "the guest stopped (kernel panic or crash: see " + g.LogPath + ")"
	if g.TimedOut {
		stopped = fmt.Sprintf("the guest timed out after %s", g.Wall.Round(time.Second))
	}
	pkg := rep.Packages[strings.TrimPrefix(t.Pkg, "./")]
	if pkg == nil {
		return nil, "not run: " + stopped + " before " + t.Pkg + " started"
	}
	tr := pkg.Tests[t.Name]
	if tr != nil && tr.Result != "" {
		return tr, ""
	}
	if pkg.Ended {
		return nil, fmt.Sprintf("not reported: the %s test binary exited with status %s first", t.Pkg, pkg.Status)
	}
	return nil, "not reported: " + stopped + " while " + t.Pkg + " ran"
}
