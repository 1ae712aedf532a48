package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// StrictMessage is a message as Python's email package, with its strict
// policy, read it.
type StrictMessage struct {
	// Headers are the decoded header fields, in order, as [name, value].
	Headers [][2]string `json:"headers"`
	// Subject is the decoded subject.
	Subject string `json:"subject"`
	// ContentType is the message's content type.
	ContentType string `json:"content_type"`
	// Parts are the leaf parts, decoded.
	Parts []StrictPart `json:"parts"`
}

// StrictPart is one leaf MIME part.
type StrictPart struct {
	ContentType string `json:"content_type"`
	Charset     string `json:"charset"`
	Encoding    string `json:"encoding"`
	Filename    string `json:"filename"`
	// Text is the decoded content of a text part, Data of any other.
	Text string `json:"text"`
	Data []byte `json:"data"`
}

// strictCheck parses a message from stdin with email.policy.strict
// (raise_on_defect) and also fails on any defect recorded on a header or
// a part, on a raw header line longer than 998 bytes or with bytes that
// are not 7-bit ASCII, then prints what it read as JSON.
const strictCheck = `
import email, email.policy, json, sys, base64
raw = sys.stdin.buffer.read()
head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
for line in raw.splitlines():
    if len(line) > 998:
        sys.exit("line longer than 998 bytes: %r" % line[:80])
for line in head.splitlines():
    if any(b > 127 for b in line):
        sys.exit("8-bit header line: %r" % line)
msg = email.message_from_bytes(raw, policy=email.policy.strict)
def check(part, where):
    if part.defects:
        sys.exit("%s: defects %r" % (where, part.defects))
    for k, v in part.items():
        if getattr(v, "defects", None):
            sys.exit("%s: header %s: defects %r" % (where, k, v.defects))
out = {"headers": [], "subject": str(msg["subject"]), "content_type": msg.get_content_type(), "parts": []}
check(msg, "message")
for k, v in msg.items():
    out["headers"].append([k, str(v)])
for i, part in enumerate(msg.walk()):
    check(part, "part %d" % i)
    if part.is_multipart():
        continue
    p = {"content_type": part.get_content_type(), "charset": part.get_content_charset() or "",
         "encoding": part.get("content-transfer-encoding", ""), "filename": part.get_filename() or "", "text": "", "data": None}
    content = part.get_content()
    if isinstance(content, str):
        p["text"] = content
    else:
        p["data"] = base64.b64encode(content).decode()
    out["parts"].append(p)
json.dump(out, sys.stdout)
`

// CheckMessageStrict runs Python's email parser with its strict policy on
// msg (as a subprocess: python3 -c, no shell) and returns what it read. It
// fails the test on any defect. It skips the test when python3 is missing
// (under CI=true it fails instead).
func CheckMessageStrict(t testing.TB, msg []byte) StrictMessage {
	t.Helper()
	// Debian's python3 (what `make deps` installs) first: a python3 earlier
	// in $PATH may be a slow wrapper (pyenv's shims).
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		RequireCommand(t, "python3", "python3")
		python = "python3"
	}
	cmd := exec.Command(python, "-c", strictCheck)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("Python's strict email parser rejects the message: %v: %s\n%s", err, stderr.String(), msg)
	}
	var m StrictMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("reading the checker's output: %v\n%s", err, out)
	}
	return m
}
