package event

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fshealth/fshealth/internal/storage"
)

// TestCleanKeepsProseEscapesTheRest: spaces and quotes stay as they are;
// control characters, invalid UTF-8 and backslashes are escaped.
func TestCleanKeepsProseEscapesTheRest(t *testing.T) {
	for in, want := range map[string]string{
		`say "hi" to 'me'`: `say "hi" to 'me'`,
		"ünïcode ✓":        "ünïcode ✓",
		"a\nb":             `a\nb`,
		"tab\there":        `tab\there`,
		"bad \xff byte":    `bad \xff byte`,
		`back\slash`:       `back\\slash`,
		"":                 "",
	} {
		if got := Clean(in); got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStorageTextBounds: an array lacking no member is not called
// degraded; a chain deeper than maxStackDepth is cut there.
func TestStorageTextBounds(t *testing.T) {
	md := []storage.Layer{{Name: "md0", Kind: storage.KindMD, MD: &storage.MD{Level: "raid1"}}}
	if got := StorageText(md); got != "md0 raid1" {
		t.Errorf("a whole array: %q", got)
	}
	var chain []storage.Layer
	for i := 0; i <= maxStackDepth+2; i++ {
		l := storage.Layer{Name: fmt.Sprintf("v%d", i), Kind: storage.KindVirtual}
		if i < maxStackDepth+2 {
			l.On = []string{fmt.Sprintf("v%d", i+1)}
		}
		chain = append(chain, l)
	}
	got := StorageText(chain)
	if n := strings.Count(got, " → ") + 1; n != maxStackDepth+1 {
		t.Errorf("a chain of %d layers is shown with %d: %q", len(chain), n, got)
	}
}
