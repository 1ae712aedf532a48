package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/event"
)

// rateString writes a report's rate as "start:errors" items, the start in
// Unix seconds.
func rateString(r *Report) string {
	var s []string
	for _, c := range r.Rate {
		s = append(s, fmt.Sprintf("%d:%d", c.Start.Unix(), c.Errors))
	}
	return strings.Join(s, " ")
}

// errnoErrors returns the errors of the errno group of a report.
func errnoErrors(r *Report, errno string) uint64 {
	for _, g := range r.Groups {
		if g.Dim == DimErrno && g.Value == errno {
			return g.Errors
		}
	}
	return 0
}

// TestReportBeforeEpoch: errors received before 1970 (a clock set far
// back) fall in the hour they were received in, the one that starts at or
// before them, as later ones do; an hour's first instant is in that hour.
func TestReportBeforeEpoch(t *testing.T) {
	s := openTemp(t)
	epoch := time.Unix(0, 0)
	var evs []event.Event
	for i, m := range []time.Duration{-90, -60, -30, 30} {
		evs = append(evs, errEvent(fmt.Sprintf("e%d", i), epoch.Add(m*time.Minute), fs1, "EIO", uint32(1+i)))
	}
	commit(t, s, &Batch{Events: evs})
	until := epoch.Add(time.Hour)
	for _, c := range []struct {
		since  time.Time
		rate   string
		errors uint64
	}{
		{time.Time{}, "-7200:1 -3600:5 0:4", 10},
		{epoch.Add(-75 * time.Minute), "-3600:5 0:4", 9},
		{epoch.Add(-60 * time.Minute), "-3600:5 0:4", 9},
		{epoch.Add(-45 * time.Minute), "-3600:3 0:4", 7},
	} {
		r, err := s.Report(ctx, ReportQuery{Since: c.since, Until: until})
		if err != nil {
			t.Fatal(err)
		}
		if got := rateString(r); got != c.rate || r.Bucket != time.Hour {
			t.Errorf("since %v: rate per %v %s, want per hour %s", c.since, r.Bucket, got, c.rate)
		}
		if got := errnoErrors(r, "EIO"); got != c.errors {
			t.Errorf("since %v: %d EIO errors, want %d", c.since, got, c.errors)
		}
	}
}

// TestReportSinceHourPruned: pruning keeps the hour its cut falls in, so
// a report from the start of that hour still counts its errors from
// before the cut.
func TestReportSinceHourPruned(t *testing.T) {
	s := openTemp(t)
	h := base.Truncate(time.Hour)
	commit(t, s, &Batch{Events: []event.Event{
		errEvent("a", h.Add(10*time.Minute), fs1, "EIO", 2),
		errEvent("b", h.Add(50*time.Minute), fs1, "EIO", 3),
	}})
	if _, err := s.Prune(ctx, h.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, "events"); n != 1 {
		t.Fatalf("%d events after pruning, want 1", n)
	}
	r, err := s.Report(ctx, ReportQuery{Since: h, Until: h.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got := errnoErrors(r, "EIO"); got != 5 {
		t.Errorf("%d EIO errors since the hour pruned, want 5 (the hour is kept whole)", got)
	}
	if got, want := rateString(r), fmt.Sprintf("%d:5", h.Unix()); got != want {
		t.Errorf("rate %s, want %s", got, want)
	}
}

// TestReportBucketAtMaxHourlySpan: a period of exactly MaxHourlySpan has
// its rate per hour, a longer one per day.
func TestReportBucketAtMaxHourlySpan(t *testing.T) {
	s := openTemp(t)
	commit(t, s, &Batch{Events: []event.Event{errEvent("a", base, fs1, "EIO", 1)}})
	since := base.Add(-time.Hour)
	for _, c := range []struct {
		until  time.Time
		bucket time.Duration
	}{
		{since.Add(MaxHourlySpan), time.Hour},
		{since.Add(MaxHourlySpan + time.Nanosecond), 24 * time.Hour},
	} {
		r, err := s.Report(ctx, ReportQuery{Since: since, Until: c.until})
		if err != nil {
			t.Fatal(err)
		}
		if r.Bucket != c.bucket {
			t.Errorf("a period of %v: rate per %v, want per %v", c.until.Sub(since), r.Bucket, c.bucket)
		}
	}
}

// TestReportRateOrder: the rate is oldest first, and by file system key
// within a bucket.
func TestReportRateOrder(t *testing.T) {
	s := openTemp(t)
	h := base.Truncate(time.Hour)
	commit(t, s, &Batch{Events: []event.Event{
		errEvent("a", h.Add(10*time.Minute), fs2, "EIO", 1),
		errEvent("b", h.Add(20*time.Minute), fs1, "EIO", 2),
		errEvent("c", h.Add(70*time.Minute), fs2, "EIO", 3),
	}})
	r, err := s.Report(ctx, ReportQuery{Until: h.Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range r.Rate {
		got = append(got, fmt.Sprintf("%s+%v:%d", c.FSKey[:4], c.Start.Sub(h), c.Errors))
	}
	if w := "1b4e+0s:2 6f1c+0s:1 6f1c+1h0m0s:3"; strings.Join(got, " ") != w {
		t.Errorf("rate %s, want %s", strings.Join(got, " "), w)
	}
}
