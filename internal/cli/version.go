package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Commit and Date are the source commit and the build date, set at build
// time like Version (the Makefile stamps all three with -ldflags -X). Left
// empty, they are taken from the binary's build information when the Go
// toolchain recorded them (a build with VCS stamping), else "unknown".
var (
	Commit = ""
	Date   = ""
)

func init() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version // go install github.com/fshealth/fshealth/cmd/fshealth@vX.Y.Z
	}
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && Commit == "":
			Commit = s.Value
		case s.Key == "vcs.time" && Date == "":
			Date = s.Value
		case s.Key == "vcs.modified" && s.Value == "true" && Commit != "" && Version == "dev":
			Commit += "-dirty"
		}
	}
}

// versionText is what `fshealth --version` prints.
func versionText() string {
	or := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("fshealth %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n", Version, or(Commit), or(Date),
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
