// Command mutation runs gremlins (a tool dependency of tools/go.mod) over
// the packages listed in thresholds.txt, one package at a time, prints each
// package's efficacy and run time, and exits non-zero when a package is
// below its threshold.
//
// Efficacy is killed / (killed + lived), where timed-out mutants count as
// killed (the tests noticed: they never finished) and surviving mutants
// listed in equivalent.txt (with the reason each cannot be told apart from
// the real code) are left out. Each gremlins run is started in a process
// group of its own, and the whole group is killed when it ends: a mutant
// that makes a test binary loop where the test's own -timeout cannot reach
// it (package initialisation) leaves nothing running.
//
// Run it from the repository root through make mutation:
//
//	make mutation                                  # every package
//	make mutation MUTATIONFLAGS='-pkg internal/kmsg -workers 2'
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// target is one line of thresholds.txt.
type target struct {
	Pkg  string  // directory relative to the repository root
	Min  float64 // minimum efficacy, percent
	What string  // what the package does, for the report
}

// equivalent is one line of equivalent.txt: a surviving mutant the tests
// cannot kill because it does not change behaviour.
type equivalent struct {
	File   string // path relative to the repository root
	Line   int
	Column int
	Type   string
	Reason string
}

func (e equivalent) key() string { return fmt.Sprintf("%s:%d:%d:%s", e.File, e.Line, e.Column, e.Type) }

// result is the part of gremlins' JSON output (-o) that is used here.
type result struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
}

func main() {
	root := flag.String("root", ".", "repository root")
	only := flag.String("pkg", "", "run only the packages whose directory contains this (comma-separated)")
	workers := flag.Int("workers", 1, "gremlins --workers")
	coefficient := flag.Int("timeout-coefficient", 10, "gremlins --timeout-coefficient")
	thresholds := flag.String("thresholds", "tools/mutation/thresholds.txt", "thresholds file, relative to -root")
	equivalents := flag.String("equivalent", "tools/mutation/equivalent.txt", "equivalent mutants file, relative to -root")
	outDir := flag.String("out", "build/mutation", "directory for gremlins' JSON results (relative: to -root)")
	flag.Parse()

	abs, err := filepath.Abs(*root)
	if err != nil {
		fatal(err)
	}
	targets, err := readTargets(filepath.Join(abs, *thresholds))
	if err != nil {
		fatal(err)
	}
	eqs, err := readEquivalents(filepath.Join(abs, *equivalents))
	if err != nil {
		fatal(err)
	}
	if *only != "" {
		var keep []target
		for _, t := range targets {
			for _, o := range strings.Split(*only, ",") {
				if strings.Contains(t.Pkg, strings.TrimPrefix(o, "./")) {
					keep = append(keep, t)
					break
				}
			}
		}
		if len(keep) == 0 {
			fatal(fmt.Errorf("-pkg %q matches no package of %s", *only, *thresholds))
		}
		targets = keep
	}
	if !filepath.IsAbs(*outDir) {
		*outDir = filepath.Join(abs, *outDir)
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	used := map[string]bool{}
	failed := false
	fmt.Printf("%-28s %7s %6s %6s %6s %6s %5s %8s %6s %9s\n", "package", "mutants", "killed", "lived", "t/o", "equiv", "n/c", "efficacy", "min", "time")
	var total time.Duration
	for _, t := range targets {
		out := filepath.Join(*outDir, strings.ReplaceAll(t.Pkg, "/", "_")+".json")
		start := time.Now()
		log, err := unleash(ctx, abs, t.Pkg, out, *workers, *coefficient)
		took := time.Since(start).Round(time.Second)
		total += took
		if err != nil {
			os.Stderr.Write(log)
			fmt.Printf("%-28s gremlins failed after %s: %v\n", t.Pkg, took, err)
			failed = true
			if ctx.Err() != nil {
				break
			}
			continue
		}
		c, lived, err := count(out, t.Pkg, eqs, used)
		if err != nil {
			fmt.Printf("%-28s %v\n", t.Pkg, err)
			failed = true
			continue
		}
		eff := c.efficacy()
		verdict := ""
		if eff < t.Min {
			verdict = "  BELOW THRESHOLD"
			failed = true
		}
		fmt.Printf("%-28s %7d %6d %6d %6d %6d %5d %7.2f%% %5.0f%% %9s%s\n",
			t.Pkg, c.total, c.killed, c.lived, c.timedOut, c.equivalent, c.notCovered, eff, t.Min, took, verdict)
		for _, l := range lived {
			fmt.Printf("    lived: %s\n", l)
		}
	}
	fmt.Printf("total time %s\n", total)
	// An equivalent.txt entry whose mutant was run but no longer survives
	// (the code moved, or a test now kills it) is stale.
	for _, e := range eqs {
		if !used[e.key()] && ran(targets, e.File) {
			fmt.Printf("stale entry in %s (no such surviving mutant): %s\n", *equivalents, e.key())
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

// ran reports whether file is in one of the packages run.
func ran(targets []target, file string) bool {
	for _, t := range targets {
		if filepath.Dir(file) == t.Pkg {
			return true
		}
	}
	return false
}

// unleash runs gremlins over the package directory pkg of the module at
// root, writing its JSON results to out, in a process group of its own that
// is killed (everything in it) when gremlins returns or ctx ends.
func unleash(ctx context.Context, root, pkg, out string, workers, coefficient int) ([]byte, error) {
	cmd := exec.Command("go", "tool", "-modfile="+filepath.Join(root, "tools", "go.mod"), "gremlins", "unleash",
		"--workers", strconv.Itoa(workers), "--timeout-coefficient", strconv.Itoa(coefficient),
		"-o", out, filepath.Join(root, pkg))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-count=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var buf strings.Builder
	cmd.Stdout = io.MultiWriter(&buf, os.Stderr)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
		}
		err = errors.Join(ctx.Err(), err)
	}
	// Whatever gremlins left behind in its group (a test binary whose go
	// test was killed at the mutant's timeout) dies now.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil {
		return []byte(buf.String()), err
	}
	return nil, nil
}

// counts are one package's mutants by outcome.
type counts struct {
	total, killed, lived, timedOut, equivalent, notCovered, notViable int
}

// efficacy is killed (timed out included) over killed plus lived, equivalent
// mutants left out, in percent; 100 when nothing was run.
func (c counts) efficacy() float64 {
	k := c.killed + c.timedOut
	if k+c.lived == 0 {
		return 100
	}
	return 100 * float64(k) / float64(k+c.lived)
}

// count reads gremlins' JSON results for pkg and counts the mutants,
// marking the equivalent.txt entries it meets in used; it returns the
// surviving mutants that are not listed there.
func count(path, pkg string, eqs []equivalent, used map[string]bool) (counts, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return counts{}, nil, err
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		return counts{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	known := map[string]bool{}
	for _, e := range eqs {
		known[e.key()] = true
	}
	var c counts
	var lived []string
	for _, f := range r.Files {
		// gremlins names files relative to the directory it ran in.
		file := filepath.Join(pkg, f.Name)
		if strings.HasPrefix(f.Name, pkg+"/") {
			file = f.Name
		}
		for _, m := range f.Mutations {
			c.total++
			k := fmt.Sprintf("%s:%d:%d:%s", file, m.Line, m.Column, m.Type)
			switch m.Status {
			case "KILLED":
				c.killed++
			case "TIMED OUT":
				c.timedOut++
			case "LIVED":
				if known[k] {
					c.equivalent++
					used[k] = true
				} else {
					c.lived++
					lived = append(lived, k)
				}
			case "NOT COVERED":
				c.notCovered++
			case "NOT VIABLE":
				c.notViable++
			}
		}
	}
	slices.Sort(lived)
	return c, lived, nil
}

// readTargets reads thresholds.txt: "directory minimum-percent description"
// per line, # comments.
func readTargets(path string) ([]target, error) {
	var ts []target
	err := eachLine(path, func(n int, fields []string, rest string) error {
		if len(fields) < 2 {
			return errors.New("want: directory minimum-percent description")
		}
		min, err := strconv.ParseFloat(strings.TrimSuffix(fields[1], "%"), 64)
		if err != nil || min < 0 || min > 100 {
			return fmt.Errorf("minimum %q is not a percentage", fields[1])
		}
		ts = append(ts, target{Pkg: strings.TrimPrefix(filepath.Clean(fields[0]), "./"), Min: min, What: rest})
		return nil
	})
	return ts, err
}

// readEquivalents reads equivalent.txt: "file:line:column TYPE reason" per
// line, # comments; the reason is required.
func readEquivalents(path string) ([]equivalent, error) {
	var es []equivalent
	err := eachLine(path, func(n int, fields []string, rest string) error {
		if len(fields) < 3 {
			return errors.New("want: file:line:column MUTANT_TYPE reason")
		}
		parts := strings.Split(fields[0], ":")
		if len(parts) != 3 {
			return fmt.Errorf("%q is not file:line:column", fields[0])
		}
		line, err1 := strconv.Atoi(parts[1])
		col, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil {
			return fmt.Errorf("%q is not file:line:column", fields[0])
		}
		es = append(es, equivalent{File: parts[0], Line: line, Column: col, Type: fields[1], Reason: strings.TrimSpace(strings.TrimPrefix(rest, fields[1]))})
		return nil
	})
	return es, err
}

// eachLine calls fn with the fields of each non-blank, non-comment line of
// path and the text after the first field (trimmed); an error names the
// file and line.
func eachLine(path string, fn func(n int, fields []string, rest string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		rest := strings.TrimSpace(strings.TrimPrefix(line, fields[0]))
		if len(fields) > 1 && strings.HasSuffix(fields[1], "%") {
			rest = strings.TrimSpace(strings.TrimPrefix(rest, fields[1]))
		}
		if err := fn(n, fields, rest); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	return sc.Err()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutation:", err)
	os.Exit(2)
}
