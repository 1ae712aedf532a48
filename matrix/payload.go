package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// guestPackage is one test binary of the plan: a Go package and the tests
// of the in-guest set that it holds.
type guestPackage struct {
	Pkg    string   // ./internal/watch
	Binary string   // internal_watch.test
	Tests  []string // in set order
}

// Runs returns the -test.run pattern selecting exactly the package's tests.
func (p guestPackage) Runs() string {
	return "^(" + strings.Join(p.Tests, "|") + ")$"
}

// planPackages groups tests by package, in the order they first appear.
func planPackages(tests []guestTest) []guestPackage {
	var pkgs []guestPackage
	index := map[string]int{}
	for _, t := range tests {
		i, ok := index[t.Pkg]
		if !ok {
			i = len(pkgs)
			index[t.Pkg] = i
			bin := strings.ReplaceAll(strings.TrimPrefix(t.Pkg, "./"), "/", "_") + ".test"
			pkgs = append(pkgs, guestPackage{Pkg: t.Pkg, Binary: bin})
		}
		pkgs[i].Tests = append(pkgs[i].Tests, t.Name)
	}
	return pkgs
}

// payloadPiece builds the static fshealth binary and test binaries into a
// cpio piece in work: /matrix/bin/fshealth, /matrix/tests/*.test, the plan
// the guest's /init follows, and its settings.
func payloadPiece(ctx context.Context, repoDir, work string, pkgs []guestPackage, testTimeout time.Duration) (string, error) {
	dir := filepath.Join(work, "payload")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	fshealth := filepath.Join(dir, "fshealth")
	if err := goBuild(ctx, repoDir, "build", "-o", fshealth, "./cmd/fshealth"); err != nil {
		return "", err
	}
	var plan strings.Builder
	for _, p := range pkgs {
		bin := filepath.Join(dir, p.Binary)
		if err := goBuild(ctx, repoDir, "test", "-c", "-o", bin, p.Pkg); err != nil {
			return "", err
		}
		if err := checkTestsExist(ctx, bin, fshealth, p); err != nil {
			return "", err
		}
		fmt.Fprintf(&plan, "%s %s %s\n", strings.TrimPrefix(p.Pkg, "./"), p.Binary, p.Runs())
	}
	path := filepath.Join(work, "payload.cpio")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	w := newCPIO(f)
	w.CopyFile("matrix/bin/fshealth", 0o755, fshealth)
	for _, p := range pkgs {
		w.CopyFile("matrix/tests/"+p.Binary, 0o755, filepath.Join(dir, p.Binary))
	}
	w.File("matrix/plan", 0o644, []byte(plan.String()))
	w.File("matrix/env", 0o644, []byte(fmt.Sprintf("TEST_TIMEOUT=%s\n", testTimeout)))
	err = w.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return path, err
}

// goBuild runs a static (CGO_ENABLED=0) go build or go test -c in repoDir.
func goBuild(ctx context.Context, repoDir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// checkTestsExist lists the tests of a test binary (on the host, with
// -test.list) and fails when a test of the set is missing, so that a
// renamed test is caught before any guest boots.
func checkTestsExist(ctx context.Context, bin, fshealth string, p guestPackage) error {
	cmd := exec.CommandContext(ctx, bin, "-test.list", p.Runs())
	cmd.Env = append(os.Environ(), "FSHEALTH_BINARY="+fshealth)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -test.list: %v\n%s", bin, err, out)
	}
	found := map[string]bool{}
	for _, name := range strings.Fields(string(out)) {
		found[name] = true
	}
	var missing []string
	for _, t := range p.Tests {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("the in-guest set names tests that %s does not have: %s (see matrix/testset.go)", p.Pkg, strings.Join(missing, ", "))
	}
	return nil
}

// validTestName matches a Go test function name.
var validTestName = regexp.MustCompile(`^Test[A-Za-z0-9_]*$`)
