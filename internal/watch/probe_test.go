package watch

import (
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/testutil"
)

// TestProbeAnsweredBetweenBatches: an idle reader, blocked in read(2),
// answers a probe; a reader held in the sink does not, and InSink says so,
// until the sink returns.
func TestProbeAnsweredBetweenBatches(t *testing.T) {
	testutil.CheckNoLeaks(t)
	im := testutil.NewExt4(t, 0)
	c := start(t, []string{im.Mountpoint}, true)
	probe := func() chan struct{} {
		ch := make(chan struct{})
		c.w.Probe(func() { close(ch) })
		return ch
	}
	answered := func(ch chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(waitTimeout):
			t.Fatalf("%s: no answer within %v", what, waitTimeout)
		}
	}
	for i := 0; i < 3; i++ {
		answered(probe(), "an idle reader")
	}
	if s := c.w.InSink(); !s.IsZero() {
		t.Errorf("an idle reader: InSink = %v, want zero", s)
	}

	// The error's event is read at once and held in the gated sink.
	if err := im.TriggerError("fshealth probe test"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitTimeout)
	for c.w.InSink().IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not enter the sink within %v", waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	held := probe()
	// Answers come only from the reader's goroutine, which waits in the
	// sink until the gate opens.
	select {
	case <-held:
		t.Fatal("a probe was answered while the reader was held in the sink")
	default:
	}
	c.gate <- struct{}{}
	close(c.gate)
	c.gate = nil
	answered(held, "the reader once the sink returned")
	checkErr(t, c.next(), syscall.EUCLEAN, "EUCLEAN", 1)
	if s := c.w.InSink(); !s.IsZero() {
		t.Errorf("after the sink returned: InSink = %v, want zero", s)
	}
}
