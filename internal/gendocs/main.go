// Command gendocs writes fshealth's man pages and shell completions, all
// generated from the command line itself (and docs/configuration.md), so
// they cannot drift from it:
//
//	go run ./internal/gendocs -out build/docs
//
// writes build/docs/man/fshealth.8, one fshealth-SUBCOMMAND.8 per
// subcommand, fshealth.toml.5 (from docs/configuration.md), and
// build/docs/completions/fshealth.bash, _fshealth (zsh) and fshealth.fish.
// SOURCE_DATE_EPOCH, if set, dates the pages (reproducible builds).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra/doc"

	"github.com/fshealth/fshealth/internal/cli"
)

func main() {
	out := flag.String("out", "", "directory to write man/ and completions/ into")
	configDoc := flag.String("config-doc", "docs/configuration.md", "the configuration file's documentation (Markdown)")
	flag.Parse()
	if *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gendocs -out DIR [-config-doc docs/configuration.md]")
		os.Exit(2)
	}
	if err := generate(*out, *configDoc); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

// generate writes the pages and completions into out.
func generate(out, configDoc string) error {
	date, err := buildDate()
	if err != nil {
		return err
	}
	root := cli.NewRoot(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	man := filepath.Join(out, "man")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{Title: "FSHEALTH", Section: "8", Date: &date, Source: "fshealth " + cli.Version,
		Manual: "System Administration"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	md, err := os.ReadFile(configDoc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(man, "fshealth.toml.5"), ConfigPage(md, date), 0o644); err != nil {
		return err
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.[58]"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p, asciiRoff(b), 0o644); err != nil {
			return err
		}
	}
	comp := filepath.Join(out, "completions")
	if err := os.MkdirAll(comp, 0o755); err != nil {
		return err
	}
	for name, gen := range map[string]func(io.Writer) error{
		"fshealth.bash": func(w io.Writer) error { return root.GenBashCompletionV2(w, true) },
		"_fshealth":     root.GenZshCompletion,
		"fshealth.fish": func(w io.Writer) error { return root.GenFishCompletion(w, true) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(comp, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// asciiRoff replaces every non-ASCII character of a page by its roff
// escape (\[u2014] for an em dash), so that the page needs no input
// encoding.
func asciiRoff(b []byte) []byte {
	var out bytes.Buffer
	for _, r := range string(b) {
		if r < 0x80 {
			out.WriteRune(r)
		} else {
			fmt.Fprintf(&out, "\\[u%04X]", r)
		}
	}
	return out.Bytes()
}

// buildDate is SOURCE_DATE_EPOCH, else now.
func buildDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Now().UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
	}
	return time.Unix(n, 0).UTC(), nil
}

// mdLink is a Markdown link to another document of the repository.
var mdLink = regexp.MustCompile(`\[([^\]]+)\]\(([a-z][a-z0-9.-]*\.(?:md|toml))(#[^)]*)?\)`)

// ConfigPage renders docs/configuration.md as the man page fshealth.toml(5):
// its first heading becomes the page's NAME, links to other documents of the
// repository become their names in italics.
func ConfigPage(md []byte, date time.Time) []byte {
	text := string(md)
	if _, rest, ok := strings.Cut(text, "\n"); ok && strings.HasPrefix(text, "# ") {
		text = rest
	}
	text = mdLink.ReplaceAllString(text, "$1 (*$2* in fshealth's documentation)")
	text = fmt.Sprintf("%% FSHEALTH.TOML 5 %q \"fshealth %s\" \"File Formats\"\n\n# NAME\n\nfshealth.toml - configuration of fshealth daemon\n\n# DESCRIPTION\n%s",
		date.Format("Jan 2006"), cli.Version, text)
	return md2man.Render([]byte(text))
}
