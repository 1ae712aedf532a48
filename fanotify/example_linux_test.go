package fanotify_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/fshealth/fshealth/fanotify"
)

// ExampleNew watches a directory tree's file system for created, deleted
// and renamed entries, by directory handle and name. It needs CAP_SYS_ADMIN
// and Linux 5.17 (FAN_REPORT_TARGET_FID, FAN_RENAME).
func ExampleNew() {
	g, err := fanotify.New(fanotify.Config{Report: fanotify.ReportDFIDNameTarget})
	var unsupported *fanotify.UnsupportedError
	if errors.As(err, &unsupported) {
		log.Fatalf("this kernel is too old: %s needs Linux %s", unsupported.Feature, unsupported.MinVersion)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	mask := fanotify.Create | fanotify.Delete | fanotify.Rename | fanotify.OnDir
	if err := g.Mark(fanotify.TargetFilesystem, "/srv", mask, 0); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, fanotify.ReadBufferSize)
	var events []fanotify.Event
	for {
		events, err = g.ReadEvents(buf, events[:0])
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range events {
			switch {
			case ev.IsOverflow():
				fmt.Println("events were lost")
			case ev.Mask.Has(fanotify.Rename):
				fmt.Printf("%q renamed to %q\n", ev.OldName, ev.NewName)
			default:
				fmt.Printf("%v %q\n", ev.Mask, ev.Name)
			}
		}
	}
}

// ExampleGroup_Respond denies every open of one file by anyone but the
// listener itself: a permission event waits for its answer.
func ExampleGroup_Respond() {
	g, err := fanotify.New(fanotify.Config{Class: fanotify.ClassContent})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	if err := g.Mark(fanotify.TargetInode, "/srv/secret", fanotify.OpenPerm, 0); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, fanotify.ReadBufferSize)
	for {
		events, err := g.ReadEvents(buf, nil)
		if err != nil {
			log.Fatal(err)
		}
		for i := range events {
			ev := &events[i]
			if err := g.Respond(ev, fanotify.Deny); err != nil {
				log.Print(err)
			}
			ev.Close() // the event's descriptor of the file
		}
	}
}

// ExampleGroup_Mark_ignore reports modifications on a whole file system
// except below one directory, with an ignore mark (Linux 6.0).
func ExampleGroup_Mark_ignore() {
	g, err := fanotify.New(fanotify.Config{Report: fanotify.ReportDFIDName})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	if err := g.Mark(fanotify.TargetFilesystem, "/srv", fanotify.Modify, 0); err != nil {
		log.Fatal(err)
	}
	// Ignore marks on directories must survive modification; EventOnChild
	// makes the ignore mask cover the directory's children.
	err = g.Mark(fanotify.TargetInode, "/srv/cache", fanotify.Modify|fanotify.EventOnChild,
		fanotify.Ignore|fanotify.IgnoredSurviveModify)
	if err != nil {
		log.Fatal(err)
	}
}

// ExampleNewMountGroup reports mounts attached and detached in this
// process's mount namespace (Linux 6.15).
func ExampleNewMountGroup() {
	g, err := fanotify.New(fanotify.Config{Report: fanotify.ReportMount})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	err = g.Mark(fanotify.TargetMountNamespace, "/proc/self/ns/mnt", fanotify.MountAttach|fanotify.MountDetach, 0)
	if err != nil {
		log.Fatal(err)
	}
	events, err := g.ReadEvents(make([]byte, fanotify.ReadBufferSize), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, ev := range events {
		fmt.Printf("%v mount %#x\n", ev.Mask, ev.MountID)
	}
}
