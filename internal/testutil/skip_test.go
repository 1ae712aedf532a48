package testutil

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// moduleRoot returns the directory of the go.mod above the test's
// directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestSkipsGoThroughSkip: no Go file of the module calls Skip, Skipf or
// SkipNow on a test other than through this package's Skip (skip.go),
// which makes a skip fail under CI=true unless it is declared as one no
// machine setting can avoid.
func TestSkipsGoThroughSkip(t *testing.T) {
	root := moduleRoot(t)
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "build", "bin", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == filepath.Join("internal", "testutil", "skip.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Skip", "Skipf", "SkipNow":
			default:
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "testutil" {
				return true
			}
			t.Errorf("%s: %s.%s called directly: use testutil.Skip (missing, kernel lacks it, not applicable), which fails under CI=true unless the reason is one no machine setting can avoid",
				fset.Position(call.Pos()), exprString(sel.X), sel.Sel.Name)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d Go files under %s: is it the module?", files, root)
	}
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	}
	return "?"
}

// TestSkipUnderCI: a Missing reason fails under CI=true and skips
// otherwise; the declared reasons skip either way.
func TestSkipUnderCI(t *testing.T) {
	for _, c := range []struct {
		why        Why
		ci         string
		skip, fail bool
	}{
		{Missing, "true", false, true},
		{Missing, "", true, false},
		{Missing, "false", true, false},
		{KernelLacks, "true", true, false},
		{KernelLacks, "", true, false},
		{NotApplicable, "1", true, false},
	} {
		t.Setenv("CI", c.ci)
		ft := &skipRecorder{}
		Skip(ft, c.why, "reason %d", 7)
		if ft.skipped != c.skip || ft.failed != c.fail {
			t.Errorf("%s with CI=%q: skipped %v, failed %v; want %v, %v", c.why, c.ci, ft.skipped, ft.failed, c.skip, c.fail)
		}
		if !strings.Contains(ft.msg, "reason 7") {
			t.Errorf("%s with CI=%q: message %q lacks the reason", c.why, c.ci, ft.msg)
		}
	}
}

// skipRecorder records what Skip makes of a test (without stopping the
// goroutine, as testing.T would).
type skipRecorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *skipRecorder) Helper()           {}
func (f *skipRecorder) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *skipRecorder) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...) }
func (f *skipRecorder) Skipf(format string, args ...any) {
	f.skipped, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *skipRecorder) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func TestTestTimeout(t *testing.T) {
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-test.v", "-test.timeout=10m0s"}, 10 * time.Minute},
		{[]string{"-test.timeout", "90s", "-test.run=x"}, 90 * time.Second},
		{[]string{"-test.timeout=0s"}, 0},
		{[]string{"-test.run=x"}, 0},
		{[]string{"-test.timeout=bad"}, 0},
	} {
		if got := testTimeout(c.args); got != c.want {
			t.Errorf("testTimeout(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

// TestHelperCommandKillsItsGroup: a helper that never ends, and what it
// started, are killed when the command's time is up.
func TestHelperCommandKillsItsGroup(t *testing.T) {
	cmd := HelperCommand(t, time.Second, "/bin/sh", "-c", "sleep 1000 & exec sleep 1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil {
		t.Fatal("a helper that never ends ended well")
	}
	pgid := cmd.Process.Pid
	// The group may take a moment to go once its members are killed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members after the helper was killed", pgid)
		}
	}
}
