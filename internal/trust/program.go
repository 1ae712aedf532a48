package trust

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// CheckProgram returns why the program at path may not be run with the
// daemon's privileges, or nil: it and every directory above it must belong
// to root (or the daemon's user) and be writable by nobody else (see
// Check). For a script, the interpreter on its "#!" line is checked the
// same way.
func CheckProgram(path string) error {
	if err := Check(path, nil); err != nil {
		return err
	}
	interp, err := interpreter(path)
	if err != nil || interp == "" {
		return err
	}
	if err := Check(interp, nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A missing interpreter is left for exec to report.
		return fmt.Errorf("its interpreter: %w", err)
	}
	return nil
}

// interpreter returns the program on path's "#!" line, or "".
func interpreter(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReaderSize(f, 256).ReadString('\n')
	rest, ok := strings.CutPrefix(line, "#!")
	if !ok {
		return "", nil
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || !strings.HasPrefix(fields[0], "/") {
		return "", nil
	}
	return fields[0], nil
}
