package webhook

import (
	"embed"
	"sort"
	"strconv"
	"strings"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// builtins maps the names of the built-in body templates (Config.Format)
// to their files and content types.
var builtins = map[string]struct{ file, contentType string }{
	"slack":      {"templates/slack.json.tmpl", "application/json"},
	"mattermost": {"templates/mattermost.json.tmpl", "application/json"},
	"teams":      {"templates/teams.json.tmpl", "application/json"},
	"discord":    {"templates/discord.json.tmpl", "application/json"},
	"ntfy":       {"templates/ntfy.txt.tmpl", "text/plain; charset=utf-8"},
}

// Builtin returns the built-in body template called name (see Builtins)
// and the content type it is sent with; ok is false for an unknown name.
// Each keeps to its service's documented message format and limits, and
// stays valid and harmless whatever a file name holds.
func Builtin(name string) (tmpl, contentType string, ok bool) {
	f, ok := builtins[name]
	if !ok {
		return "", "", false
	}
	b, err := templateFS.ReadFile(f.file)
	if err != nil {
		return "", "", false
	}
	return string(b), f.contentType, true
}

// Builtins returns the names of the built-in body templates, sorted.
func Builtins() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FormatError is an unknown built-in template name.
type FormatError struct{ Name string }

// Error names the unknown format and the known ones.
func (e *FormatError) Error() string {
	return "unknown format " + strconv.Quote(e.Name) + ": want one of " + strings.Join(Builtins(), ", ")
}
