// Command fshealth monitors Linux file systems for errors.
package main

import (
	"os"

	"github.com/fshealth/fshealth/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
