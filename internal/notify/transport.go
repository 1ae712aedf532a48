// Package notify holds what fshealth's HTTP-based channels share.
package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// TransportError describes a failed HTTP round trip without the request
// URL (which net/http's errors show unredacted, secrets included). A
// timeout or cancellation is described here; for any other failure it
// returns the underlying error's text and raw = true, for the caller to
// scrub of secrets.
func TransportError(ctx context.Context, err error, took, timeout time.Duration) (msg string, raw bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %s (timeout %s)", took.Round(time.Millisecond), timeout), false
	}
	if errors.Is(err, context.Canceled) {
		return "canceled", false
	}
	return err.Error(), true
}
