package kmsg

import (
	"regexp"
	"sync"
)

// pattern is a rule's regular expression, compiled the first time a rule
// is tried: compiling the whole table at package init cost every fshealth
// command about 10 ms of its start (`fshealth events`, `status`, `check`
// never classify a record). TestEveryRuleIsAnchored compiles them all.
type pattern struct {
	expr string
	once sync.Once
	re   *regexp.Regexp
}

// compile returns the pattern of expr, compiled on first use (and
// panicking then if expr is not a valid expression, like
// regexp.MustCompile).
func compile(expr string) *pattern { return &pattern{expr: expr} }

// get returns the compiled expression.
func (p *pattern) get() *regexp.Regexp {
	p.once.Do(func() { p.re = regexp.MustCompile(p.expr) })
	return p.re
}
