package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
)

// KallsymsPath is the kernel's symbol table; a variable so that tests can
// point it elsewhere.
var KallsymsPath = "/proc/kallsyms"

// KernelHasSymbol reports whether the running kernel (with the modules
// loaded now) has a function or variable called name, as listed in
// /proc/kallsyms.
//
// It is for kernel features that user space cannot ask about: a test that
// sees nothing happen can tell "the kernel lacks the code" (skip) from "the
// code is there and did not work" (fail). Names are compared exactly
// (compiler suffixes such as ".cold" or ".part.0" are other symbols). An
// error means the question cannot be answered: no /proc/kallsyms (a kernel
// built without CONFIG_KALLSYMS) or an empty one.
func KernelHasSymbol(name string) (bool, error) {
	f, err := os.Open(KallsymsPath)
	if err != nil {
		return false, fmt.Errorf("reading the kernel's symbols: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	want := []byte(name)
	lines := 0
	for sc.Scan() {
		lines++
		// "address type name" or "address type name\t[module]"
		fields := bytes.Fields(sc.Bytes())
		if len(fields) >= 3 && bytes.Equal(fields[2], want) {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("reading the kernel's symbols from %s: %w", KallsymsPath, err)
	}
	if lines == 0 {
		return false, errors.New("reading the kernel's symbols: " + KallsymsPath + " is empty")
	}
	return false, nil
}
