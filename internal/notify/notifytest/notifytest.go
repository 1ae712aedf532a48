// Package notifytest is the test scaffolding fshealth's channels share: a
// complete sample alert, and a real HTTP server on the loopback that records
// what it receives. Only tests import it.
package notifytest

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/ext4"
)

// Alert returns an alert of type typ (one of the alert.Type* constants)
// with every field set: an EUCLEAN incident on /dev/loop7 mounted at
// /mnt/data and /srv/data on host web1.example.org, three errors, its
// event with inode, path, process and ext4's recorded errors. Its id is
// "01JTESTALERT" and the type in upper case; a test alert has Test set.
func Alert(typ string) *alert.Alert {
	ino := uint64(12)
	gen := uint32(7)
	since := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	return &alert.Alert{
		ID:       "01JTESTALERT" + strings.ToUpper(typ),
		Type:     typ,
		Severity: alert.SeverityCritical,
		Rule:     "default",
		Host:     "web1.example.org",
		Time:     since.Add(time.Minute),
		Summary:  "EUCLEAN on /dev/loop7 (/mnt/data)",
		Filesystem: alert.Filesystem{
			UUID:        "0b1c2d3e-1111-2222-3333-444455556666",
			Device:      "/dev/loop7",
			FSType:      "ext4",
			Mountpoints: []string{"/mnt/data", "/srv/data"},
			Label:       "data",
		},
		ErrorKind: "EUCLEAN",
		Count:     3,
		Since:     since,
		Test:      typ == alert.TypeTest,
		Event: &event.Event{
			ID:          "01JTESTEVENT",
			Kind:        event.KindError,
			Time:        event.Time{Time: since},
			Source:      event.SourceFanotify,
			Errno:       117,
			Error:       "EUCLEAN",
			ErrorText:   "structure needs cleaning",
			ErrorCount:  1,
			PID:         4242,
			FSID:        "1234:5678",
			Device:      "/dev/loop7",
			FSType:      "ext4",
			UUID:        "0b1c2d3e-1111-2222-3333-444455556666",
			Mountpoints: []string{"/mnt/data", "/srv/data"},
			Inode:       &ino,
			Generation:  &gen,
			Path:        "/mnt/data/dir/bad",
			Ext4: &ext4.State{ErrorsCount: 4,
				FirstError: &ext4.ErrorInfo{Time: since.Add(-time.Hour), Function: "ext4_iget", Line: 5000, Inode: 11, Code: 5, Error: "EUCLEAN"},
				LastError:  &ext4.ErrorInfo{Time: since, Function: "ext4_lookup", Line: 1812, Inode: 12, Block: 99, Code: 5, Error: "EUCLEAN"},
			},
		},
	}
}

// Request is one request a Receiver got.
type Request struct {
	Method string
	// Path is the request URI: path and query.
	Path   string
	Header http.Header
	Body   []byte
}

// Receiver is a real HTTP server on the loopback that records every
// request and answers each with the status, body and headers last set. It
// is closed when the test ends.
type Receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []Request
	status int
	body   string
	header map[string]string
}

// NewReceiver starts a Receiver answering status and body.
func NewReceiver(t testing.TB, status int, body string) *Receiver {
	t.Helper()
	r := &Receiver{status: status, body: body}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, Request{req.Method, req.URL.RequestURI(), req.Header.Clone(), b})
		status, body, header := r.status, r.body, r.header
		r.mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(r.Close)
	return r
}

// Answer sets the status, body and response headers of the next answers.
func (r *Receiver) Answer(status int, body string, header map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status, r.body, r.header = status, body, header
}

// Requests returns the requests received so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// DeadURL returns an http URL on the loopback that nothing listens on.
func DeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// RawServer answers every connection with reply, verbatim, after reading
// the request head, and returns its base URL: for responses net/http would
// not write (malformed status lines, secrets echoed in the status text).
func RawServer(t testing.TB, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadString('\n')
				if err != nil || l == "\r\n" {
					break
				}
			}
			io.WriteString(c, reply)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "http://" + ln.Addr().String()
}
