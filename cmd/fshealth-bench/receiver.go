package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// alertIDHeader is the header fshealth's webhooks carry the alert id in.
const alertIDHeader = "X-Fshealth-Alert-Id"

// hookAlert is what the bench reads of a webhook body (the alert's JSON).
type hookAlert struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	ErrorKind  string    `json:"error_kind"`
	Count      uint64    `json:"count"`
	Filesystem struct {
		UUID   string `json:"uuid"`
		Device string `json:"device"`
	} `json:"filesystem"`
	Event *struct {
		ID         string    `json:"id"`
		Kind       string    `json:"kind"`
		Time       time.Time `json:"time"`
		Errno      int       `json:"errno"`
		ErrorCount uint64    `json:"error_count"`
		Device     string    `json:"device"`
		Ext4       *struct {
			ErrorsCount uint64 `json:"errors_count"`
		} `json:"ext4"`
	} `json:"event"`
}

// received is one webhook request the receiver accepted.
type received struct {
	at    time.Time // when the whole body had been read
	alert hookAlert
}

// receiver is the in-process webhook receiver: it accepts every POST,
// de-duplicates on the alert id (deliveries are at least once), and hands
// each new alert to onAlert (in the request's goroutine) or to ch.
type receiver struct {
	URL string

	srv *http.Server
	ln  net.Listener
	ch  chan received // if not nil, every new alert is sent here

	mu       sync.Mutex
	seen     map[string]bool
	requests int
	dups     int
	bad      []string // requests that were not an alert (first ones)
	nBad     int
	onAlert  func(received)
}

// newReceiver listens on 127.0.0.1 (a free port) and serves until Close.
func newReceiver(ch chan received, onAlert func(received)) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("webhook receiver: %w", err)
	}
	r := &receiver{URL: "http://" + ln.Addr().String() + "/alert", ln: ln, ch: ch, seen: map[string]bool{}, onAlert: onAlert}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 4<<20))
	at := time.Now()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var a hookAlert
	if req.Method != http.MethodPost {
		r.reject(fmt.Sprintf("%s %s", req.Method, req.URL.Path))
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if err := json.Unmarshal(body, &a); err != nil || a.ID == "" {
		r.reject(fmt.Sprintf("not an alert (%v): %.200q", err, body))
		// 400 is permanent for the daemon? It retries: answer 200 so a
		// bad body does not hold up the channel; the bench fails on it.
		w.WriteHeader(http.StatusOK)
		return
	}
	if h := req.Header.Get(alertIDHeader); h != a.ID {
		r.reject(fmt.Sprintf("alert %s with header %s: %q", a.ID, alertIDHeader, h))
	}
	w.WriteHeader(http.StatusOK)
	r.mu.Lock()
	r.requests++
	if r.seen[a.ID] {
		r.dups++
		r.mu.Unlock()
		return
	}
	r.seen[a.ID] = true
	r.mu.Unlock()
	rc := received{at: at, alert: a}
	if r.onAlert != nil {
		r.onAlert(rc)
	}
	if r.ch != nil {
		select {
		case r.ch <- rc:
		default:
			r.reject("alert " + a.ID + " dropped: the bench's queue is full")
		}
	}
}

func (r *receiver) reject(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nBad++
	if len(r.bad) < maxWarnings {
		r.bad = append(r.bad, why)
	}
}

// counts returns the number of requests, duplicates and bad requests.
func (r *receiver) counts() (requests, dups, bad int, badText []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.dups, r.nBad, append([]string(nil), r.bad...)
}

// Close stops the receiver.
func (r *receiver) Close() {
	r.srv.Close()
}
