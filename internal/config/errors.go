package config

import (
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration: where it is and what.
type Problem struct {
	// File is the configuration file's name as given to Load or Parse.
	File string
	// Line is the 1-based line of the offending key; 0 when unknown (for
	// example for problems with command line flags).
	Line int
	// Column is the 1-based column, for syntax errors; 0 otherwise.
	Column int
	// Key names the offending setting, e.g. "webhook[1].url" (array
	// elements are numbered from 1); empty for syntax errors and unknown
	// keys, whose message names the key.
	Key string
	// Message says what is wrong. It never contains a secret.
	Message string
}

// String formats p as "file:line: key: message" ("file:line:column: ..."
// for syntax errors), leaving out the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
			if p.Column > 0 {
				b.WriteByte(':')
				b.WriteString(strconv.Itoa(p.Column))
			}
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is the error Load, Parse and ApplyOverrides return for a bad
// configuration. It lists every problem found, in file order.
type Error struct {
	// Problems holds at least one problem.
	Problems []Problem
}

// Error returns the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
