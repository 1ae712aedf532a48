package webhook

import (
	"embed"
	"sort"
	"strings"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

// templateFiles maps example template names to their files and content
// types.
var templateFiles = map[string]struct{ file, contentType string }{
	"slack":      {"templates/slack.json.tmpl", "application/json"},
	"mattermost": {"templates/mattermost.json.tmpl", "application/json"},
	"teams":      {"templates/teams.json.tmpl", "application/json"},
	"ntfy":       {"templates/ntfy.txt.tmpl", "text/plain; charset=utf-8"},
}

// ExampleTemplate returns the example body template called name ("slack",
// "mattermost", "teams" or "ntfy") and the content type to send it with;
// ok is false for an unknown name. The templates show how to write bodies
// that stay valid and harmless whatever a file name holds.
func ExampleTemplate(name string) (tmpl, contentType string, ok bool) {
	f, ok := templateFiles[strings.ToLower(name)]
	if !ok {
		return "", "", false
	}
	b, err := templateFS.ReadFile(f.file)
	if err != nil {
		return "", "", false
	}
	return string(b), f.contentType, true
}

// ExampleTemplates returns the names ExampleTemplate knows, sorted.
func ExampleTemplates() []string {
	names := make([]string, 0, len(templateFiles))
	for n := range templateFiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
