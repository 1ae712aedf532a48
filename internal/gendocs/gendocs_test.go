package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fshealth/fshealth/internal/cli"
	"github.com/fshealth/fshealth/internal/testutil"
)

// TestManPagesAndCompletions generates everything and checks it against the
// command line it comes from: a page per command naming every one of its
// flags, fshealth.toml(5) with every section of docs/configuration.md,
// pages groff formats without a warning, and completions that name every
// subcommand.
func TestManPagesAndCompletions(t *testing.T) {
	out := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1764979200") // 2025-12-06
	if err := generate(out, "../../docs/configuration.md"); err != nil {
		t.Fatal(err)
	}
	root := cli.NewRoot(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		page := filepath.Join(out, "man", strings.ReplaceAll(c.CommandPath(), " ", "-")+".8")
		b, err := os.ReadFile(page)
		if err != nil {
			t.Errorf("command %q has no man page: %v", c.CommandPath(), err)
			return
		}
		if !bytes.Contains(b, []byte(`.TH "FSHEALTH" "8" "Dec 2025"`)) {
			t.Errorf("%s: header is not section 8 dated by SOURCE_DATE_EPOCH:\n%.200s", page, b)
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", `-`)
		if !bytes.Contains(b, []byte(".SH NAME\n"+name+" - ")) {
			t.Errorf("%s: NAME does not name %s", page, name)
		}
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !bytes.Contains(b, []byte(`\fB--`+f.Name+`\fP`)) {
				t.Errorf("%s: flag --%s is not documented", page, f.Name)
			}
		})
		groffClean(t, page, false)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)

	toml := filepath.Join(out, "man", "fshealth.toml.5")
	b, err := os.ReadFile(toml)
	if err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range regexp.MustCompile("(?m)^## `(\\[[a-z_.\\]\\[]+\\])`").FindAllSubmatch(md, -1) {
		if !bytes.Contains(b, []byte(".SH "+string(h[1]))) && !bytes.Contains(b, []byte(`.SH \fB`+string(h[1]))) {
			t.Errorf("fshealth.toml.5 lacks the section %s of docs/configuration.md", h[1])
		}
	}
	if !bytes.HasPrefix(b, []byte(".nh\n.TH \"FSHEALTH.TOML\" \"5\"")) && !bytes.Contains(b, []byte(".TH FSHEALTH.TOML 5 \"Dec 2025\"")) {
		t.Errorf("fshealth.toml.5: no section 5 header:\n%.200s", b)
	}
	groffClean(t, toml, true)

	cmds := []string{}
	for _, c := range root.Commands() {
		if !c.Hidden {
			cmds = append(cmds, c.Name())
		}
	}
	for _, f := range []string{"fshealth.bash", "_fshealth", "fshealth.fish"} {
		b, err := os.ReadFile(filepath.Join(out, "completions", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("fshealth")) || !bytes.Contains(b, []byte("__complete")) {
			t.Errorf("completion %s does not ask fshealth __complete", f)
		}
	}
	// The completions ask the binary: it must complete every subcommand.
	var o bytes.Buffer
	root = cli.NewRoot(&o, io.Discard)
	root.SetArgs([]string{"__complete", ""})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if !strings.Contains(o.String(), "\n"+c+"\t") && !strings.HasPrefix(o.String(), c+"\t") {
			t.Errorf("__complete does not offer %s:\n%s", c, o.String())
		}
	}
	for _, f := range []string{"fshealth.bash"} {
		if bash, err := exec.LookPath("bash"); err == nil {
			if out, err := exec.Command(bash, "-n", filepath.Join(out, "completions", f)).CombinedOutput(); err != nil {
				t.Errorf("bash -n %s: %v\n%s", f, err, out)
			}
		}
	}
}

// groffClean formats a page with groff, warnings on, and fails on any
// warning (tables apart: tbl's "wider than line width" is allowed where
// tables is set).
func groffClean(t *testing.T, page string, tables bool) {
	t.Helper()
	testutil.RequireCommand(t, "groff", "groff-base")
	cmd := exec.Command("groff", "-t", "-man", "-ww", "-z", "-Tutf8", page)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("groff %s: %v\n%s", page, err, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" || tables && (strings.Contains(l, "table wider than line width") || strings.Contains(l, "cannot adjust line") ||
			strings.HasPrefix(l, "tbl:") || strings.HasPrefix(l, "warning: file")) {
			continue
		}
		t.Errorf("groff %s: %s", filepath.Base(page), l)
	}
}
