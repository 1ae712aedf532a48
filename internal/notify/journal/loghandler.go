package journal

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
)

// LogHandler is a slog.Handler that sends each record to the journal with
// its native protocol: MESSAGE (the message, then the attributes as
// key=value text, so that a plain `journalctl` shows them), PRIORITY from
// the level (debug 7, info 6, warning 4, error 3), SYSLOG_IDENTIFIER=fshealth
// and one FSHEALTH_<KEY> field per attribute (groups joined by "_"), so that
// `journalctl -p warning` shows the warnings and `journalctl FSHEALTH_ERR=...`
// matches. A record the journal does not take goes to the fallback handler.
type LogHandler struct {
	w        *Writer
	level    slog.Leveler
	fallback slog.Handler
	// text formats the attributes for MESSAGE.
	text     slog.Handler
	textBuf  *lockedBuffer
	fields   []Field // from WithAttrs
	prefix   string  // FSHEALTH_ plus the open groups
	groupKey string  // the open groups, dot-joined, for text
}

// lockedBuffer is the text handler's output, one record at a time.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) { return b.buf.Write(p) }

// NewLogHandler returns a LogHandler sending to journald's socket at
// socketPath (DefaultSocketPath if empty), or an error if it does not
// accept datagrams. Records below level are dropped; fallback receives
// what the journal refuses.
func NewLogHandler(socketPath string, level slog.Leveler, fallback slog.Handler) (*LogHandler, error) {
	if socketPath == "" {
		socketPath = DefaultSocketPath
	}
	w := &Writer{addr: &net.UnixAddr{Name: socketPath, Net: "unixgram"}, mode: ModeJournal}
	if err := w.dial(); err != nil {
		return nil, fmt.Errorf("journal: %s: %v", socketPath, unwrapOp(err))
	}
	if level == nil {
		level = slog.LevelInfo
	}
	buf := &lockedBuffer{}
	text := slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		}})
	return &LogHandler{w: w, level: level, fallback: fallback, text: text, textBuf: buf, prefix: "FSHEALTH_"}, nil
}

// Enabled reports whether records at l are logged.
func (h *LogHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle sends r to the journal.
func (h *LogHandler) Handle(ctx context.Context, r slog.Record) error {
	h.textBuf.mu.Lock()
	h.textBuf.buf.Reset()
	err := h.text.Handle(ctx, r)
	attrsText := strings.TrimSuffix(h.textBuf.buf.String(), "\n")
	h.textBuf.mu.Unlock()
	if err != nil {
		return err
	}
	msg := r.Message
	if attrsText != "" {
		msg += " " + attrsText
	}
	fields := make([]Field, 0, 4+len(h.fields)+r.NumAttrs())
	fields = append(fields, Field{"MESSAGE", msg}, Field{"PRIORITY", logPriority(r.Level)},
		Field{"SYSLOG_IDENTIFIER", "fshealth"})
	fields = append(fields, h.fields...)
	r.Attrs(func(a slog.Attr) bool {
		fields = appendAttr(fields, h.prefix, a)
		return true
	})
	if jerr := h.w.sendJournal(AppendNative(nil, fields)); jerr != nil && h.fallback != nil {
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

// WithAttrs returns a handler whose records carry as too.
func (h *LogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.text = h.text.WithAttrs(as)
	n.fields = append([]Field(nil), h.fields...)
	for _, a := range as {
		n.fields = appendAttr(n.fields, h.prefix, a)
	}
	if h.fallback != nil {
		n.fallback = h.fallback.WithAttrs(as)
	}
	return &n
}

// WithGroup returns a handler whose later attributes are in group name.
func (h *LogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.text = h.text.WithGroup(name)
	n.prefix = h.prefix + fieldName(name) + "_"
	if h.fallback != nil {
		n.fallback = h.fallback.WithGroup(name)
	}
	return &n
}

// appendAttr appends a as journal fields named prefix+KEY; a group's
// attributes are named prefix+GROUP_KEY.
func appendAttr(f []Field, prefix string, a slog.Attr) []Field {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldName(a.Key) + "_"
		}
		for _, g := range v.Group() {
			f = appendAttr(f, p, g)
		}
		return f
	}
	if a.Key == "" {
		return f
	}
	name := prefix + fieldName(a.Key)
	if len(name) > 64 { // journald's limit on field names
		name = name[:64]
	}
	return append(f, Field{name, v.String()})
}

// fieldName turns a log key into the upper-case letters, digits and
// underscores a journal field name is made of.
func fieldName(key string) string {
	b := make([]byte, 0, len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// logPriority is the syslog priority of a log level.
func logPriority(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "7"
	case l < slog.LevelWarn:
		return priInfo
	case l < slog.LevelError:
		return priWarning
	}
	return priErr
}
