package fanotify_test

import (
	"fmt"
	"log"
	"os"

	"github.com/fshealth/fshealth/fanotify"
)

// ExampleParse decodes what one read(2) returned from a group reporting
// directory handles, names and target handles
// (fanotify.ReportDFIDNameTarget) when a/old was renamed to b/new: the
// kernel's own bytes, captured on Linux 6.18 (x86_64).
func ExampleParse() {
	buf, err := os.ReadFile("testdata/captured/rename.bin")
	if err != nil {
		log.Fatal(err)
	}
	events, err := fanotify.Parse(nil, buf)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		switch {
		case ev.Records&fanotify.HasOldName != 0:
			fmt.Printf("%v: %q in dir %x -> %q in dir %x\n", ev.Mask,
				ev.OldName, ev.OldDirFID.Handle.Bytes[:4], ev.NewName, ev.NewDirFID.Handle.Bytes[:4])
		case ev.Records&fanotify.HasDirFID != 0:
			fmt.Printf("%v: %q in dir %x\n", ev.Mask, ev.Name, ev.DirFID.Handle.Bytes[:4])
		}
		// The handle is opaque: compare it with name_to_handle_at(2)'s, or
		// open it with open_by_handle_at(2).
		fmt.Printf("  file on %v, handle type %d %x\n", ev.FID.FSID, ev.FID.Handle.Type, ev.FID.Handle.Bytes)
	}
	// Output:
	// rename: "old" in dir 7549e6db -> "new" in dir 24edae80
	//   file on bd4def81:60ada38c, handle type 1 705fdce80400000000000000
	// moved_from: "old" in dir 7549e6db
	//   file on bd4def81:60ada38c, handle type 1 705fdce80400000000000000
	// moved_to: "new" in dir 24edae80
	//   file on bd4def81:60ada38c, handle type 1 705fdce80400000000000000
}

// ExampleMask_String shows how masks print.
func ExampleMask_String() {
	fmt.Println(fanotify.Create | fanotify.OnDir)
	fmt.Println(fanotify.Close)
	fmt.Println(fanotify.PreAccess | 0x80000000)
	fmt.Println(fanotify.Mask(0))
	// Output:
	// create|ondir
	// close_write|close_nowrite
	// pre_access|0x80000000
	// 0
}
