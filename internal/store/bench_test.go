package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
)

// benchCommit commits b.N batches of events events each and two deliveries,
// as the daemon's sink does, and reports commits/s and events/s.
func benchCommit(b *testing.B, events int) {
	s := openTemp(b)
	if err := s.SetWatched(ctx, []alert.Filesystem{fs1}); err != nil {
		b.Fatal(err)
	}
	proto := fullEvent("", base)
	batch := &Batch{Events: make([]event.Event, events), Deliveries: make([]Delivery, 2)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now := time.Now()
		for j := range batch.Events {
			e := proto
			e.ID = fmt.Sprintf("b%d-%d", i, j)
			e.Time = event.Time{Time: now}
			batch.Events[j] = e
		}
		for j, ch := range []string{"webhook", "hooks"} {
			batch.Deliveries[j] = Delivery{Channel: ch, Alert: alert.Alert{
				ID: batch.Events[0].ID, Type: alert.TypeError, Severity: alert.SeverityCritical, Time: now,
				Filesystem: fs1, ErrorKind: "EUCLEAN", Count: 1, Since: now, Event: &batch.Events[len(batch.Events)-1],
			}}
		}
		if err := s.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/sec, "commits/s")
	b.ReportMetric(float64(b.N*events)/sec, "events/s")
}

// BenchmarkCommit1Event2Deliveries is the commit of one error: the latency
// every alert waits for.
func BenchmarkCommit1Event2Deliveries(b *testing.B) { benchCommit(b, 1) }

// BenchmarkCommit64Events is the commit of a burst.
func BenchmarkCommit64Events(b *testing.B) { benchCommit(b, 64) }
