package kmsg

import (
	"regexp"
	"strings"
	"testing"
)

// freeTailRules are the rules whose format ends in kernel text no fixed
// pattern can spell out (a btrfs tree checker's reason, the path scrub
// prints, btrfs_handle_fs_error's message, the text after an ext4 error's
// process name), keyed by a literal of the rule's expression: for them a
// suffix on the same line is still that message, so only a suffix on a new
// line (which no kernel message of one line has) must be refused.
var freeTailRules = []string{
	`comm (?P<rest>.+)$`,
	`bad tree block level,? .+`,
	`corrupt (?:leaf|node)[:,] (?:root|block)=.+$`,
	`checksum error at logical`,
	`i/o error at logical`,
	`errno=(?P<errno>-?\d+) [A-Za-z /]+`,
}

// isFreeTail reports whether re is one of freeTailRules.
func isFreeTail(re *regexp.Regexp) bool {
	for _, s := range freeTailRules {
		if strings.Contains(re.String(), s) {
			return true
		}
	}
	return false
}

// forgedPrefixes are put in front of a real message: what a process whose
// name the user chose makes the kernel print before text it also chose.
var forgedPrefixes = []string{"x", " ", "bash[4242]: ", "a\n"}

// forgedSuffixes are put after a real message (" x" only for rules without
// a free tail).
var forgedSuffixes = []string{"\nx", " x", " in bash[4242]"}

// TestEveryRuleIsAnchored checks every rule of the pattern table on its
// own, without the literal prefix Classify checks first: each rule must
// recognise at least one record of testdata/messages.txt (so a new rule
// without a fixture fails here), and refuse that record with text forged in
// front of it or after it. Deleting a rule's "^" or "$" fails this test.
func TestEveryRuleIsAnchored(t *testing.T) {
	var msgs []Record
	for _, fx := range readFixtures(t) {
		if fx.want == nil {
			continue
		}
		r, err := ParseRecord([]byte(fx.record))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, r)
	}
	if len(rules) < 50 {
		t.Fatalf("only %d rules: is the table read whole (storageRules included)?", len(rules))
	}
	for i, ru := range rules {
		var cases []string
		for _, r := range msgs {
			if ru.levels.has(r.Level) && ru.re.get().MatchString(r.Message) {
				cases = append(cases, r.Message)
			}
		}
		if len(cases) == 0 {
			t.Errorf("rule %d (%s) recognises no record of testdata/messages.txt: add one (the forged-prefix and forged-suffix cases are made from it)", i, ru.re.get())
			continue
		}
		free := isFreeTail(ru.re.get())
		for _, msg := range cases {
			if !strings.HasPrefix(msg, ru.prefix) {
				t.Errorf("rule %d: its record %q does not start with the rule's prefix %q", i, msg, ru.prefix)
			}
			dev := device(ru.re.get(), msg)
			for _, pre := range forgedPrefixes {
				// A message that starts with its device name ("loop0: lost
				// ...") with text in front names another device, which no
				// file system is on.
				if ru.re.get().MatchString(pre+msg) && device(ru.re.get(), pre+msg) == dev {
					t.Errorf("rule %d (%s) matches %q with %q forged in front", i, ru.re.get(), msg, pre)
				}
			}
			for _, suf := range forgedSuffixes {
				if free && !strings.HasPrefix(suf, "\n") {
					continue
				}
				if ru.re.get().MatchString(msg+suf) && device(ru.re.get(), msg+suf) == dev {
					t.Errorf("rule %d (%s) matches %q with %q forged after it", i, ru.re.get(), msg, suf)
				}
			}
		}
	}
}

// TestFreeTailRulesExist keeps freeTailRules honest: each entry names a
// rule of the table, so that a renamed rule does not leave an entry that
// exempts nothing (or something else).
func TestFreeTailRulesExist(t *testing.T) {
	for _, s := range freeTailRules {
		n := 0
		for _, ru := range rules {
			if strings.Contains(ru.re.get().String(), s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("freeTailRules entry %q names %d rules, want 1", s, n)
		}
	}
}

// device returns the device a rule's expression finds in msg (the dev,
// jdev or path group), "" if it does not match.
func device(re *regexp.Regexp, msg string) string {
	sub := re.FindStringSubmatch(msg)
	if sub == nil {
		return ""
	}
	for _, g := range []string{"dev", "jdev", "path"} {
		if i := re.SubexpIndex(g); i > 0 && sub[i] != "" {
			return sub[i]
		}
	}
	return "(no device)"
}
