package watch

import (
	"sync/atomic"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// Probe asks the reader loop to prove that it still turns: answer is called
// from Run's goroutine between two batches of events, once the batch being
// read, enriched or handed to the sink (if any) is done. An idle reader,
// blocked in read(2) on the fanotify group, is woken for it (as Do wakes
// it); a reader stuck in enrichment or in the sink never answers. It is the
// daemon watchdog's proof that events still flow.
func (w *Watcher) Probe(answer func()) { w.Do(answer) }

// InSink returns since when the reader has been waiting for the sink to
// take a batch, or the zero time when it is not in the sink.
func (w *Watcher) InSink() time.Time {
	if ns := w.sinkSince.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// sinkClock records when the reader is in the sink, for InSink.
type sinkClock struct{ sinkSince atomic.Int64 }

// timedSink wraps sink so that InSink can tell a reader stuck in the sink
// (committing a batch) from one stuck reading or enriching.
func (w *Watcher) timedSink(sink func([]event.Event) error) func([]event.Event) error {
	return func(evs []event.Event) error {
		w.sinkSince.Store(time.Now().UnixNano())
		defer w.sinkSince.Store(0)
		return sink(evs)
	}
}
