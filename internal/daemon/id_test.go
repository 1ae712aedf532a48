package daemon

import (
	"sort"
	"testing"
	"time"
)

func TestNewIDUniqueAndOrdered(t *testing.T) {
	seen := map[string]bool{}
	var ids []string
	base := time.Unix(1795470877, 0)
	for i := 0; i < 10000; i++ {
		id := NewID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 || seen[id] {
			t.Fatalf("bad or duplicate id %q", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if !sort.StringsAreSorted(ids) {
		t.Error("ids of increasing times do not sort in order")
	}
	if NewID(time.Unix(0, 0))[:10] != "0000000000" {
		t.Error("the time prefix is not the leading digits")
	}
}
