package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestKernelHasSymbol(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "kallsyms")
	if err := os.WriteFile(table, []byte("ffffffff81000000 T _stext\n"+
		"0000000000000000 t fserror_report.cold\n"+
		"0000000000000000 t xfs_fs_report_error\t[xfs]\n"+
		"0000000000000000 T schedule\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := KallsymsPath
	t.Cleanup(func() { KallsymsPath = old })

	KallsymsPath = table
	for name, want := range map[string]bool{
		"schedule":            true,
		"xfs_fs_report_error": true,  // in a module
		"fserror_report":      false, // only a compiler-split part of it
		"schedul":             false,
		"xfs":                 false,
		"[xfs]":               false,
	} {
		got, err := KernelHasSymbol(name)
		if err != nil || got != want {
			t.Errorf("KernelHasSymbol(%q) = %v, %v; want %v", name, got, err, want)
		}
	}

	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{empty, filepath.Join(dir, "missing")} {
		KallsymsPath = p
		if got, err := KernelHasSymbol("schedule"); err == nil || got {
			t.Errorf("%s: got %v, %v; want an error", p, got, err)
		}
	}
}

// TestKernelHasSymbolRunningKernel asks the running kernel about a function
// every kernel has and one none has.
func TestKernelHasSymbolRunningKernel(t *testing.T) {
	if _, err := os.Stat(KallsymsPath); err != nil {
		Skip(t, KernelLacks, "this kernel has no symbol table to read: %v", err)
	}
	if ok, err := KernelHasSymbol("schedule"); !ok || err != nil {
		t.Errorf("schedule: %v, %v; want true", ok, err)
	}
	if ok, err := KernelHasSymbol("fshealth_no_such_symbol"); ok || err != nil {
		t.Errorf("fshealth_no_such_symbol: %v, %v; want false", ok, err)
	}
}
