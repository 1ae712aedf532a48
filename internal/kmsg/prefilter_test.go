package kmsg

import (
	"regexp/syntax"
	"strings"
	"testing"
)

// mandatoryLiterals returns the literal texts every match of the
// expression contains, in order: the literals of its top-level
// concatenation, with what is between two of them replaced by "\x00" (a
// byte no literal of the table holds), so that a literal spanning two of
// them cannot be found. The first is the text the match starts with when
// the expression begins with "^" and a literal, else "\x00" first.
func mandatoryLiterals(t *testing.T, expr string) string {
	t.Helper()
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var b strings.Builder
	for i, s := range subs {
		switch {
		case i == 0 && s.Op == syntax.OpBeginText:
		case s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0:
			b.WriteString(string(s.Rune))
		default:
			b.WriteByte(0)
		}
	}
	return b.String()
}

// spacedLiterals are contains literals that start with a space the
// expression writes at the end of each of the alternatives before the rest
// (": " after the line number, the inode or the block), which
// mandatoryLiterals cannot see: the rest must be a mandatory literal.
var spacedLiterals = map[string]string{
	" comm ": "comm ",
}

// TestPrefiltersAreImplied: the prefix and contains literals Classify
// checks before a rule's expression only save time, they never decide: the
// expression itself requires the record to start with the prefix and to
// contain the other literal. (So a rule whose expression drops its "^"
// cannot lean on its prefix to stay anchored.)
func TestPrefiltersAreImplied(t *testing.T) {
	for i, ru := range rules {
		lits := mandatoryLiterals(t, ru.re.get().String())
		if !strings.HasPrefix(ru.re.get().String(), "^") {
			t.Errorf("rule %d (%s) does not begin with ^", i, ru.re.get())
		}
		if !strings.HasPrefix(lits, ru.prefix) {
			t.Errorf("rule %d (%s): its expression does not start with the literal %q of its prefix", i, ru.re.get(), ru.prefix)
		}
		spaced, ok := spacedLiterals[ru.contains]
		if !strings.Contains(lits, ru.contains) && !(ok && strings.Contains(lits, spaced)) {
			t.Errorf("rule %d (%s): its expression does not require the literal %q of contains", i, ru.re.get(), ru.contains)
		}
	}
}

// TestSpacedLiteralsExist: each entry of spacedLiterals is the contains
// literal of a rule, so that none exempts a literal no rule has.
func TestSpacedLiteralsExist(t *testing.T) {
	for c := range spacedLiterals {
		n := 0
		for _, ru := range rules {
			if ru.contains == c {
				n++
			}
		}
		if n == 0 {
			t.Errorf("spacedLiterals entry %q is no rule's contains", c)
		}
	}
}
