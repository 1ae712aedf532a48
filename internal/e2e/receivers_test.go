package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fshealth/fshealth/internal/loopfs"
	"github.com/fshealth/fshealth/internal/testutil"
)

// request is one request a webhook receiver got.
type request struct {
	Header http.Header
	Body   []byte
	// Status is what the receiver answered.
	Status int
}

// alertBody is the part of an alert's JSON these tests look at.
type alertBody struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Severity   string `json:"severity"`
	Rule       string `json:"rule"`
	Host       string `json:"host"`
	Summary    string `json:"summary"`
	ErrorKind  string `json:"error_kind"`
	Count      uint64 `json:"count"`
	Test       bool   `json:"test"`
	Filesystem struct {
		UUID        string   `json:"uuid"`
		Device      string   `json:"device"`
		FSType      string   `json:"fstype"`
		Mountpoints []string `json:"mountpoints"`
	} `json:"filesystem"`
	Event *event `json:"event"`
}

// receiver is a webhook receiver: an HTTP server recording every request.
type receiver struct {
	srv *httptest.Server
	// status is what it answers (200 unless set).
	status atomic.Int32
	// inspect, if set, is called with each request's body before it is
	// answered.
	inspect func(body []byte)
	mu      sync.Mutex
	reqs    []request
}

// newReceiver starts a receiver on a free loopback port, closed with the
// test.
func newReceiver(t *testing.T) *receiver {
	t.Helper()
	return newInspectingReceiver(t, nil)
}

// newInspectingReceiver is newReceiver, calling inspect with each request's
// body before answering it.
func newInspectingReceiver(t *testing.T, inspect func(body []byte)) *receiver {
	t.Helper()
	r := &receiver{inspect: inspect}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

// newReceiverAt starts a receiver on addr, which was free a moment ago
// (the port of a receiver that was down).
func newReceiverAt(t *testing.T, addr string) *receiver {
	t.Helper()
	r := &receiver{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("bringing the receiver up again on %s: %v", addr, err)
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	return r
}

// deadAddr returns a loopback address nothing listens on: a receiver that
// is down.
func deadAddr(t *testing.T) string { return freeAddr(t) }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.inspect != nil {
		r.inspect(body)
	}
	code := int(r.status.Load())
	if code == 0 {
		code = http.StatusOK
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, request{Header: req.Header.Clone(), Body: body, Status: code})
	r.mu.Unlock()
	w.WriteHeader(code)
}

// URL is the receiver's base URL.
func (r *receiver) URL() string { return r.srv.URL }

// requests returns a copy of the requests so far.
func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

// accepted returns the alerts the receiver accepted (answered 2xx), decoded
// from JSON bodies, in arrival order.
func (r *receiver) accepted(t *testing.T) []alertBody {
	t.Helper()
	var out []alertBody
	for _, q := range r.requests() {
		if q.Status/100 != 2 {
			continue
		}
		var a alertBody
		if err := json.Unmarshal(q.Body, &a); err != nil {
			t.Fatalf("webhook body is not an alert's JSON: %v: %q", err, q.Body)
		}
		out = append(out, a)
	}
	return out
}

// waitAccepted waits until the receiver has accepted at least n requests
// and returns them.
func (r *receiver) waitAccepted(t *testing.T, n int) []request {
	t.Helper()
	var got []request
	eventually(t, func() string { return fmt.Sprintf("receiver %s accepted %d requests, want %d", r.URL(), len(got), n) },
		func() bool {
			got = got[:0]
			for _, q := range r.requests() {
				if q.Status/100 == 2 {
					got = append(got, q)
				}
			}
			return len(got) >= n
		})
	return got
}

// hookRecorder is a hooks directory with one #!/bin/sh hook that records,
// for each alert, its stdin and some FSHEALTH_* variables in files.
type hookRecorder struct {
	Dir string // the hooks directory
	Out string // where the hook writes
}

// hookVars are the variables the hook records.
var hookVars = []string{"FSHEALTH_ALERT_ID", "FSHEALTH_ALERT_TYPE", "FSHEALTH_SEVERITY", "FSHEALTH_EVENT_ID",
	"FSHEALTH_ERROR", "FSHEALTH_ERRNO", "FSHEALTH_DEVICE", "FSHEALTH_FSTYPE", "FSHEALTH_UUID", "FSHEALTH_MOUNTPOINT",
	"FSHEALTH_PATH", "FSHEALTH_INODE", "FSHEALTH_TEST", "FSHEALTH_HOST"}

// newHookRecorder writes the hook. It quotes every variable, as hooks must:
// the values are file system data, verbatim.
func newHookRecorder(t *testing.T) *hookRecorder {
	t.Helper()
	base := t.TempDir()
	h := &hookRecorder{Dir: filepath.Join(base, "hooks.d"), Out: filepath.Join(base, "out")}
	for _, d := range []string{h.Dir, h.Out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	var script strings.Builder
	script.WriteString("#!/bin/sh\n# Records one alert: stdin and FSHEALTH_* variables, NUL-separated.\nset -eu\n")
	fmt.Fprintf(&script, "out='%s'\n", h.Out) // a t.TempDir path: no quote in it
	script.WriteString(`id="$FSHEALTH_ALERT_ID"
cat > "$out/$id.stdin.tmp"
printf '%s\0' \
`)
	for _, v := range hookVars {
		fmt.Fprintf(&script, "  \"%s=${%s-}\" \\\n", v, v)
	}
	script.WriteString(`  > "$out/$id.env.tmp"
echo "hook recorded alert $id"
mv "$out/$id.stdin.tmp" "$out/$id.stdin"
mv "$out/$id.env.tmp" "$out/$id.env"
`)
	writeFile(t, filepath.Join(h.Dir, "10-record"), script.String(), 0o755)
	return h
}

// hookRun is what the hook recorded for one alert.
type hookRun struct {
	Stdin []byte
	Env   map[string]string
}

// runs returns what the hook recorded so far, by alert id.
func (h *hookRecorder) runs(t *testing.T) map[string]hookRun {
	t.Helper()
	out := map[string]hookRun{}
	entries, err := os.ReadDir(h.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".env")
		if !ok {
			continue
		}
		envb, err := os.ReadFile(filepath.Join(h.Out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := os.ReadFile(filepath.Join(h.Out, id+".stdin"))
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(string(envb), "\x00"), "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		out[id] = hookRun{Stdin: stdin, Env: env}
	}
	return out
}

// waitRuns waits until the hook has recorded at least n alerts.
func (h *hookRecorder) waitRuns(t *testing.T, n int) map[string]hookRun {
	t.Helper()
	var runs map[string]hookRun
	eventually(t, func() string { return fmt.Sprintf("the hook recorded %d alerts, want %d", len(runs), n) },
		func() bool {
			runs = h.runs(t)
			return len(runs) >= n
		})
	return runs
}

// smtpServer is a minimal in-process SMTP server on 127.0.0.1: no TLS, no
// AUTH, it accepts every message and records it.
type smtpServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	msgs []smtpMessage
}

// smtpMessage is one message the server accepted.
type smtpMessage struct {
	From string
	To   []string
	Data []byte
}

// newSMTPServer starts the server, stopped when the test ends.
func newSMTPServer(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// port is the server's port.
func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(wait))
			s.session(c)
		}()
	}
}

// session speaks SMTP (RFC 5321) on one connection.
func (s *smtpServer) session(c net.Conn) {
	r := bufio.NewReader(c)
	reply := func(format string, args ...any) bool {
		_, err := fmt.Fprintf(c, format+"\r\n", args...)
		return err == nil
	}
	if !reply("220 e2e.test ESMTP fshealth test server") {
		return
	}
	var m smtpMessage
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-e2e.test greets %s", arg)
			reply("250-8BITMIME")
			reply("250 SMTPUTF8")
		case "HELO":
			reply("250 e2e.test")
		case "MAIL":
			m = smtpMessage{From: arg}
			reply("250 2.1.0 OK")
		case "RCPT":
			m.To = append(m.To, arg)
			reply("250 2.1.5 OK")
		case "DATA":
			if !reply("354 end with <CRLF>.<CRLF>") {
				return
			}
			var data bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".")) // dot-unstuffing
			}
			m.Data = data.Bytes()
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			reply("250 2.0.0 queued")
		case "RSET":
			m = smtpMessage{}
			reply("250 2.0.0 OK")
		case "NOOP":
			reply("250 2.0.0 OK")
		case "QUIT":
			reply("221 2.0.0 bye")
			return
		default:
			reply("502 5.5.2 command not implemented")
		}
	}
}

// messages returns the messages accepted so far.
func (s *smtpServer) messages() []smtpMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMessage(nil), s.msgs...)
}

// parsedMail is a received message, decoded.
type parsedMail struct {
	Header  mail.Header
	Subject string
	// Text is the decoded text/plain part.
	Text string
	// JSON is the decoded application/json attachment.
	JSON []byte
}

// parseMail decodes a message: its subject, text body and JSON attachment.
func parseMail(t *testing.T, data []byte) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("the message does not parse: %v\n%s", err, data)
	}
	var p parsedMail
	p.Header = msg.Header
	dec := new(mime.WordDecoder)
	if p.Subject, err = dec.DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	var walk func(h map[string][]string, body io.Reader)
	walk = func(h map[string][]string, body io.Reader) {
		hdr := mail.Header(h)
		ct, params, err := mime.ParseMediaType(hdr.Get("Content-Type"))
		if err != nil {
			ct = "text/plain"
		}
		if strings.HasPrefix(ct, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				part, err := mr.NextRawPart()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatalf("multipart: %v\n%s", err, data)
				}
				walk(part.Header, part)
			}
		}
		var r io.Reader = body
		switch strings.ToLower(hdr.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("decoding a %s part: %v\n%s", ct, err, data)
		}
		switch ct {
		case "text/plain":
			p.Text += string(b)
		case "application/json":
			p.JSON = b
		}
	}
	walk(msg.Header, msg.Body)
	return p
}

// alertmanagerYAML routes every alert to a receiver that notifies nobody.
const alertmanagerYAML = `route:
  receiver: "null"
  group_wait: 0s
receivers:
  - name: "null"
`

// startAlertmanager runs a real single-node Alertmanager (Debian package
// prometheus-alertmanager) on a free loopback port, with its storage in a
// temporary directory, and returns its base URL once it is ready. It is
// killed when the test ends.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	testutil.RequireCommand(t, "prometheus-alertmanager", "prometheus-alertmanager")
	bin, err := loopfs.FindTool("prometheus-alertmanager")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, alertmanagerYAML, 0o600)
	for attempt := 1; ; attempt++ {
		addr := deadAddr(t)
		var log syncBuffer
		cmd := exec.Command(bin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		stop := func() { cmd.Process.Kill(); <-exited }
		base := "http://" + addr
		err := waitHTTPReady(base+"/-/ready", exited)
		if err == nil {
			t.Cleanup(stop)
			return base
		}
		stop()
		if attempt == 3 {
			t.Fatalf("Alertmanager did not become ready: %v\n%s", err, log.String())
		}
		t.Logf("Alertmanager attempt %d: %v; retrying on another port", attempt, err)
	}
}

// waitHTTPReady polls url until it answers 200, the process exits or the
// deadline passes.
func waitHTTPReady(url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(wait)
	for {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for " + url)
		}
	}
}

// amAlert is an alert as Alertmanager's GET /api/v2/alerts returns it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// amAlerts returns Alertmanager's active alerts.
func amAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?active=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/alerts: %s: %s", resp.Status, body)
	}
	var as []amAlert
	if err := json.Unmarshal(body, &as); err != nil {
		t.Fatalf("GET /api/v2/alerts: %v: %s", err, body)
	}
	return as
}

// amFiring reports whether Alertmanager at base has an active alert for
// device.
func amFiring(t *testing.T, base, device string) bool {
	t.Helper()
	for _, a := range amAlerts(t, base) {
		if a.Labels["device"] == device {
			return true
		}
	}
	return false
}
