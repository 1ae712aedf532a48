// Package fanotify is a small, typed Go interface to Linux fanotify, made for
// file system error monitoring (FAN_FS_ERROR, Linux 5.16+).
//
// It has two halves. The parser (Parse, ParseOne) is pure: it turns the bytes
// read(2) returns from a fanotify descriptor into Event values, needs no
// privileges, runs on any OS and never panics on malformed input. The group
// (Group, Linux only) owns the fanotify descriptor: it is created non-blocking
// and close-on-exec and is driven by the Go runtime poller, so a pending Read
// occupies no thread and Close unblocks it.
//
// A minimal error monitor:
//
//	g, err := fanotify.NewErrorGroup()
//	if err != nil { ... }
//	defer g.Close()
//	if err := g.MarkFilesystemErrors("/srv"); err != nil { ... }
//	buf := make([]byte, fanotify.ReadBufferSize)
//	var events []fanotify.Event
//	for {
//		events, err = g.ReadEvents(buf, events[:0])
//		if err != nil { ... }
//		for _, ev := range events { ... }
//	}
package fanotify
