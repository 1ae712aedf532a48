// Package fanotify is a small, typed Go interface to Linux fanotify: file
// system notification events (create, delete, move, rename, modify, attrib,
// open, close, access), permission events answered by the listener,
// pre-content access events, file system error reports and mount events, on
// inodes, mounts, file systems and mount namespaces, with ignore marks.
//
// It has two halves. The parser (Parse, ParseOne) is pure: it turns the bytes
// read(2) returns from a fanotify descriptor into Event values, decoding every
// info record type (FID, DFID, DFID_NAME, OLD_DFID_NAME, NEW_DFID_NAME,
// PIDFD, ERROR, RANGE, MNT), needs no privileges, runs on any OS and never
// panics on malformed input. The group (Group, Linux only) owns the fanotify
// descriptor: it is created non-blocking and close-on-exec and is driven by
// the Go runtime poller, so a pending Read occupies no thread and Close
// unblocks it.
//
// New creates a group from a typed Config (class, report flags, queue and
// mark limits); Mark, Unmark and Flush manage its marks (Target says what is
// marked, MarkFlags add ignore marks and the rest); Respond answers
// permission events. A feature the running kernel lacks fails with an
// *UnsupportedError naming it and the first Linux version that has it; mark
// failures are *MarkError values whose Reason says why.
//
// A watcher of created, deleted and renamed entries:
//
//	g, err := fanotify.New(fanotify.Config{Report: fanotify.ReportDFIDNameTarget})
//	if err != nil { ... }
//	defer g.Close()
//	mask := fanotify.Create | fanotify.Delete | fanotify.Rename | fanotify.OnDir
//	if err := g.Mark(fanotify.TargetFilesystem, "/srv", mask, 0); err != nil { ... }
//	buf := make([]byte, fanotify.ReadBufferSize)
//	var events []fanotify.Event
//	for {
//		events, err = g.ReadEvents(buf, events[:0])
//		if err != nil { ... }
//		for _, ev := range events { ... } // ev.Mask, ev.DirFID, ev.Name, ev.OldName, ...
//	}
//
// NewErrorGroup and MarkFilesystemErrors are shorthands for file system error
// monitoring (FAN_FS_ERROR, Linux 5.16+); NewMountGroup and
// MarkMountNamespace for mount events (Linux 6.15+).
//
// README.md in the package's directory has the feature and kernel version
// table and explains which records each report flag brings.
package fanotify
