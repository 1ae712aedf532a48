package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// journalStream reports whether w is the stream systemd connected to the
// journal: $JOURNAL_STREAM names its device and inode ("dev:ino"), which
// the file w writes to must have. A variable inherited by a process whose
// stderr was redirected elsewhere does not match.
func journalStream(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	devS, inoS, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	dev, err := strconv.ParseUint(devS, 10, 64)
	if err != nil {
		return false
	}
	ino, err := strconv.ParseUint(inoS, 10, 64)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// syslogPrefixes are the "<N>" prefixes journald reads as a line's
// priority, for debug, info, warning and error records.
var syslogPrefixes = [4]string{"<7>", "<6>", "<4>", "<3>"}

// priorityIndex maps a level to its index in syslogPrefixes.
func priorityIndex(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 0
	case l < slog.LevelWarn:
		return 1
	case l < slog.LevelError:
		return 2
	}
	return 3
}

// priorityHandler writes text records, each line prefixed with the syslog
// priority of its level, so that journald files a warning as a warning.
type priorityHandler struct{ byPriority [4]slog.Handler }

// newPriorityHandler is a slog.TextHandler on w whose lines carry their
// priority for journald.
func newPriorityHandler(w io.Writer, opts *slog.HandlerOptions) slog.Handler {
	mu := &sync.Mutex{}
	var h priorityHandler
	for i, p := range syslogPrefixes {
		h.byPriority[i] = slog.NewTextHandler(&prefixWriter{w: w, mu: mu, prefix: []byte(p)}, opts)
	}
	return &h
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.byPriority[0].Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.byPriority[priorityIndex(r.Level)].Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	for i := range n.byPriority {
		n.byPriority[i] = n.byPriority[i].WithAttrs(as)
	}
	return &n
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	n := *h
	for i := range n.byPriority {
		n.byPriority[i] = n.byPriority[i].WithGroup(name)
	}
	return &n
}

// prefixWriter writes each record (one Write from slog's text handler, one
// line) to w behind prefix, in one write.
type prefixWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.w.Write(append(append([]byte(nil), p.prefix...), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// prefixLines puts prefix before every line of s.
func prefixLines(prefix, s string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}
