// Package smtp delivers alerts by e-mail, through github.com/wneessen/go-mail.
//
// Each alert is one message: a one-line Subject
// ("[fshealth] <severity> <summary> on <host>"), a readable plain-text body
// with everything an admin needs to act (see Body), and the alert's JSON as
// an application/json attachment for machines. The Message-ID is derived from
// the alert id, so a message re-sent after a failure or a restart is
// recognizably the same message; the alert id is also in the
// X-Fshealth-Alert-Id header.
//
// Strings from the kernel or the file system (mount points, labels, paths)
// are escaped before they reach a header or the body: a hostile mount point
// such as "/mnt/x\r\nBcc: someone" can neither inject a header nor forge a
// line of the body.
//
// The message leaves through SMTP (ViaSMTP, the default) or through the
// local mail transfer agent's sendmail program (ViaSendmail, see
// sendmail.go). An SMTP connection is secured according to Config.TLS;
// STARTTLS with a certificate that verifies (against the system's
// authorities, Config.CAFile or Config.TLSFingerprints) is required by
// default. Credentials are never sent over an unencrypted connection to
// anything but the local host, nor over a session whose certificate could
// not be verified unless Config.AllowUnverifiedAuth; the password never
// appears in an error.
package smtp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	netmail "net/mail"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	mail "github.com/wneessen/go-mail"
	gomailsmtp "github.com/wneessen/go-mail/smtp"

	"github.com/fshealth/fshealth/internal/alert"
	"github.com/fshealth/fshealth/internal/event"
	"github.com/fshealth/fshealth/internal/notify"
)

// TLS modes (Config.TLS).
const (
	// TLSStartTLS upgrades the connection with STARTTLS and refuses to
	// send anything if the server does not offer it. It is the default.
	TLSStartTLS = "starttls"
	// TLSStartTLSOpportunistic uses STARTTLS when the server offers it and
	// sends in the clear otherwise (credentials then only to the local host).
	// As between mail servers (RFC 7435), a certificate that cannot be
	// verified does not stop the delivery: the session is encrypted but
	// not authenticated, which is logged once; credentials are then not
	// sent unless Config.AllowUnverifiedAuth says so.
	TLSStartTLSOpportunistic = "starttls-opportunistic"
	// TLSImplicit speaks TLS from the first byte (SMTPS, usually port 465).
	TLSImplicit = "tls"
	// TLSNone never encrypts; credentials are then refused unless the
	// server is on the local host.
	TLSNone = "none"
)

// Defaults and header names.
const (
	// DefaultTimeout bounds one delivery (connect, TLS, auth, transfer).
	DefaultTimeout = 30 * time.Second
	// DefaultSubjectPrefix starts every subject.
	DefaultSubjectPrefix = "[fshealth]"
	// AlertIDHeader carries the alert's id.
	AlertIDHeader = "X-Fshealth-Alert-Id"
	// AlertTypeHeader carries the alert's type (error, digest, ...).
	AlertTypeHeader = "X-Fshealth-Alert-Type"
	// SeverityHeader carries the alert's severity.
	SeverityHeader = "X-Fshealth-Severity"
)

// maxSubject caps the subject, in bytes.
const maxSubject = 250

// Config configures one e-mail channel.
type Config struct {
	// Name is the channel's name from the configuration; "smtp" if empty.
	Name string
	// Host is the SMTP server (a host name or an IP address).
	Host string
	// Port is the server's port; if zero, 465 for TLS "tls", 25 for
	// "none", 587 (submission) otherwise.
	Port int
	// From is the sender, "alerts@example.org" or
	// "fshealth <alerts@example.org>".
	From string
	// To lists the recipients (at least one), in the same forms as From.
	To []string
	// Username and Password, when Username is set, authenticate with SMTP
	// AUTH (SCRAM-SHA-256, SCRAM-SHA-1, PLAIN, LOGIN or CRAM-MD5, the first
	// the server offers).
	Username string
	Password string
	// TLS is one of TLSStartTLS (the default when empty),
	// TLSStartTLSOpportunistic, TLSImplicit or TLSNone.
	TLS string
	// Timeout bounds one delivery attempt; DefaultTimeout if zero.
	Timeout time.Duration
	// SubjectPrefix starts every subject; DefaultSubjectPrefix if empty.
	SubjectPrefix string
	// InsecureSkipVerify accepts any server certificate. It exists for
	// tests against servers with self-signed certificates; it must not be
	// used in production, where it allows anyone on the path to read the
	// alerts and the credentials.
	InsecureSkipVerify bool
	// HeloName is the name sent with EHLO; the machine's host name if
	// empty.
	HeloName string
	// Version is fshealth's version, sent as User-Agent: fshealth/Version;
	// "dev" if empty.
	Version string
	// Via is how messages leave: ViaSMTP (the default when empty) or
	// ViaSendmail, which hands them to the local mail transfer agent.
	Via string
	// Sendmail is the sendmail program for ViaSendmail;
	// DefaultSendmail if empty.
	Sendmail string
	// CAFile is a PEM file of the certificate authorities that the
	// server's certificate must chain to, instead of the system's.
	CAFile string
	// TLSFingerprints are SHA-256 fingerprints (64 hex digits, colons
	// allowed) of server certificates accepted whatever their chain,
	// names and dates: a pinned private relay.
	TLSFingerprints []string
	// AllowUnverifiedAuth lets TLSStartTLSOpportunistic send credentials
	// over a session whose certificate could not be verified.
	AllowUnverifiedAuth bool
	// Logger receives the notice that a session was encrypted but not
	// authenticated; nil discards it.
	Logger *slog.Logger
}

// Notifier is an e-mail channel. It implements alert.Notifier and is safe
// for concurrent use: every Send uses its own connection.
type Notifier struct {
	name      string
	kind      string // "smtp" or "sendmail", for messages
	host      string
	port      int
	from      *netmail.Address
	to        []*netmail.Address
	username  string
	password  string
	tlsMode   string
	timeout   time.Duration
	prefix    string
	insecure  bool
	helo      string
	userAgent string
	secrets   notify.Secrets

	via                 string
	sendmail            string
	roots               *x509.CertPool
	pins                [][sha256.Size]byte
	allowUnverifiedAuth bool
	log                 *slog.Logger
	warnedUnverif       atomic.Bool
}

var _ alert.Notifier = (*Notifier)(nil)

// New checks cfg and returns the channel. Every problem is an error naming
// the channel (and the bad address, for addresses): no host, a bad port, a
// From or To address that does not parse, no recipient, an unknown TLS mode,
// a password without a username, credentials over an unencrypted connection
// to another host, an unreadable CA file, a malformed fingerprint; for
// ViaSendmail, a relative program path or credentials (they belong to the
// mail transfer agent's configuration).
func New(cfg Config) (*Notifier, error) {
	kind := "smtp"
	if cfg.Via == ViaSendmail {
		kind = "sendmail"
	}
	if cfg.Name == "" {
		cfg.Name = kind
	}
	fail := func(format string, args ...any) (*Notifier, error) {
		return nil, fmt.Errorf("%s %q: %s", kind, cfg.Name, fmt.Sprintf(format, args...))
	}
	n := &Notifier{
		name:                cfg.Name,
		kind:                kind,
		host:                cfg.Host,
		port:                cfg.Port,
		username:            cfg.Username,
		password:            cfg.Password,
		tlsMode:             cfg.TLS,
		timeout:             cfg.Timeout,
		prefix:              cfg.SubjectPrefix,
		insecure:            cfg.InsecureSkipVerify,
		helo:                cfg.HeloName,
		via:                 cfg.Via,
		sendmail:            cfg.Sendmail,
		allowUnverifiedAuth: cfg.AllowUnverifiedAuth,
		log:                 cfg.Logger,
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	switch n.via {
	case "":
		n.via = ViaSMTP
	case ViaSMTP, ViaSendmail:
	default:
		return fail("via %q is not %q or %q", n.via, ViaSMTP, ViaSendmail)
	}
	if n.via == ViaSendmail {
		if n.sendmail == "" {
			n.sendmail = DefaultSendmail
		}
		if !filepath.IsAbs(n.sendmail) || strings.ContainsFunc(n.sendmail, unicode.IsControl) {
			return fail("sendmail program %q is not an absolute path", n.sendmail)
		}
		if n.username != "" || n.password != "" {
			return fail("a username or password is for via %q: the local mail transfer agent has its own", ViaSMTP)
		}
		if n.host != "" || cfg.CAFile != "" || len(cfg.TLSFingerprints) > 0 {
			return fail("host, CA file and fingerprints are for via %q", ViaSMTP)
		}
	} else if err := n.checkSMTP(cfg); err != nil {
		return fail("%v", err)
	}
	if n.timeout < 0 {
		return fail("timeout must not be negative")
	}
	if n.timeout == 0 {
		n.timeout = DefaultTimeout
	}
	if n.prefix == "" {
		n.prefix = DefaultSubjectPrefix
	}
	if strings.ContainsFunc(n.prefix, unicode.IsControl) || !utf8.ValidString(n.prefix) {
		return fail("subject prefix %q has control characters", n.prefix)
	}
	n.userAgent = notify.UserAgent(cfg.Version)

	// Bare local names ("root") are for the local mail transfer agent,
	// which qualifies them and looks them up in /etc/aliases.
	local := n.via == ViaSendmail
	var err error
	if cfg.From == "" {
		return fail("no From address")
	}
	if n.from, err = parseAddress(cfg.From, local); err != nil {
		return fail("invalid From address %q: %v", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return fail("no To address")
	}
	for _, to := range cfg.To {
		a, err := parseAddress(to, local)
		if err != nil {
			return fail("invalid To address %q: %v", to, err)
		}
		n.to = append(n.to, a)
	}
	return n, nil
}

// checkSMTP checks and completes the settings of an SMTP channel.
func (n *Notifier) checkSMTP(cfg Config) error {
	if n.host == "" {
		return errors.New("no host")
	}
	if !validHost(n.host) {
		return fmt.Errorf("host %q is not a host name or an IP address", n.host)
	}
	switch n.tlsMode {
	case "":
		n.tlsMode = TLSStartTLS
	case TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone:
	default:
		return fmt.Errorf("TLS mode %q is not one of %q, %q, %q, %q", n.tlsMode,
			TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone)
	}
	if n.port == 0 {
		switch n.tlsMode {
		case TLSImplicit:
			n.port = 465
		case TLSNone:
			n.port = 25
		default:
			n.port = 587
		}
	}
	if n.port < 1 || n.port > 65535 {
		return fmt.Errorf("port %d is out of range", n.port)
	}
	if n.helo != "" && !validHost(n.helo) {
		return fmt.Errorf("HELO name %q is not a host name", n.helo)
	}
	if cfg.CAFile != "" {
		roots, err := LoadCAFile(cfg.CAFile)
		if err != nil {
			return err
		}
		n.roots = roots
	}
	for _, f := range cfg.TLSFingerprints {
		pin, err := ParseFingerprint(f)
		if err != nil {
			return err
		}
		n.pins = append(n.pins, pin)
	}
	if n.password != "" && n.username == "" {
		return errors.New("a password is set but no username")
	}
	if n.username != "" && n.tlsMode == TLSNone && !isLoopback(n.host) {
		return fmt.Errorf("refusing to send credentials unencrypted to %s (TLS %q); use %q or %q", n.host, TLSNone, TLSStartTLS, TLSImplicit)
	}
	if n.password != "" {
		// As AUTH PLAIN and LOGIN send it.
		n.secrets.Add(n.password, base64.StdEncoding.EncodeToString([]byte(n.password)),
			base64.StdEncoding.EncodeToString([]byte("\x00"+n.username+"\x00"+n.password)))
		// As the SMTP library quotes a server's reply in its errors.
		if q := strconv.Quote(n.password); q[1:len(q)-1] != n.password {
			n.secrets.Add(q[1 : len(q)-1])
		}
	}
	return nil
}

// parseAddress parses one RFC 5322 address ("a@b" or "Name <a@b>") or,
// if local, a bare local name such as "root".
func parseAddress(s string, local bool) (*netmail.Address, error) {
	if strings.ContainsFunc(s, unicode.IsControl) {
		return nil, errors.New("it has control characters")
	}
	if IsLocalName(s) {
		if !local {
			return nil, fmt.Errorf("a bare local name is only for via %q", ViaSendmail)
		}
		return &netmail.Address{Address: s}, nil
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if strings.ContainsFunc(a.Address, unicode.IsSpace) {
		return nil, errors.New("it has white space")
	}
	return a, nil
}

// validHost reports whether s looks like a host name or an IP address: no
// white space, control characters, slashes or "@".
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// isLoopback reports whether host is the local host.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name returns the channel's name.
func (n *Notifier) Name() string { return n.name }

// AttemptTimeout returns the channel's timeout, plus alert.AttemptMargin.
func (n *Notifier) AttemptTimeout() time.Duration { return n.timeout + alert.AttemptMargin }

// Send e-mails a to every recipient. It returns nil only when the server
// accepted the message (a 250 reply to the end of DATA); a failure to say
// QUIT afterwards does not count. Errors name the channel, the server and
// the step that failed (connecting, TLS, authentication, a recipient or the
// data refused, with the server's reply) and never contain the password.
func (n *Notifier) Send(ctx context.Context, a *alert.Alert) error {
	if a == nil {
		return n.errorf("no alert")
	}
	msg, err := n.message(a)
	if err != nil {
		return n.errorf("building the message for alert %s: %v", event.Clean(a.ID), err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	if n.via == ViaSendmail {
		return n.sendmailSend(ctx, event.Clean(a.ID), msg)
	}

	// Every connection is ours to close: go-mail leaves a connection open
	// when the greeting, STARTTLS or AUTH fails, and it only watches the
	// context while dialing.
	var mu sync.Mutex
	var conns []net.Conn
	closeAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer func() {
		stop()
		closeAll()
	}()
	peer := &peerState{}
	tlsConf := n.tlsConfig(peer)
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var c net.Conn
		var err error
		if n.tlsMode == TLSImplicit {
			// Not wrapped: go-mail recognises a *tls.Conn as encrypted.
			c, err = (&tls.Dialer{NetDialer: d, Config: tlsConf}).DialContext(dctx, network, addr)
		} else {
			c, err = d.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, nil
	}

	opts := []mail.Option{
		mail.WithPort(n.port),
		mail.WithTimeout(n.timeout),
		mail.WithDialContextFunc(dial),
		mail.WithTLSConfig(tlsConf),
	}
	switch n.tlsMode {
	case TLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case TLSStartTLSOpportunistic:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case TLSImplicit:
		opts = append(opts, mail.WithSSL(), mail.WithTLSPolicy(mail.NoTLS))
	case TLSNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if n.helo != "" {
		opts = append(opts, mail.WithHELO(n.helo))
	}
	if n.username != "" {
		// The PLAIN and LOGIN mechanisms refuse by themselves to run over
		// an unencrypted connection to anything but the local host.
		opts = append(opts,
			mail.WithOpportunisticSMTPAuth(mail.SMTPAuthSCRAMSHA256, mail.SMTPAuthSCRAMSHA1,
				mail.SMTPAuthPlain, mail.SMTPAuthLogin, mail.SMTPAuthCramMD5),
			mail.WithUsername(n.username), mail.WithPassword(n.password))
	}
	client, err := mail.NewClient(n.host, opts...)
	if err != nil {
		return n.errorf("setting up the client: %s", n.secrets.Scrub(err.Error()))
	}
	start := time.Now()
	sc, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return n.errorf("alert %s: %s", event.Clean(a.ID), n.failure(ctx, "connecting to "+n.addr(), err, time.Since(start)))
	}
	n.noteUnverified(peer)
	if err := client.SendWithSMTPClient(sc, msg); err != nil {
		return n.errorf("alert %s: %s", event.Clean(a.ID), n.failure(ctx, "sending to "+n.addr(), err, time.Since(start)))
	}
	// The server has accepted the message: a failed QUIT changes nothing.
	_ = client.CloseWithSMTPClient(sc)
	return nil
}

// addr is the server's address for messages.
func (n *Notifier) addr() string {
	return net.JoinHostPort(n.host, strconv.Itoa(n.port))
}

// failure describes a failed step, saying so when it ran out of time or was
// canceled, with secrets scrubbed.
func (n *Notifier) failure(ctx context.Context, step string, err error, took time.Duration) string {
	// Scrubbed before it is cleaned, which escapes backslashes.
	text := oneLine(n.secrets.Scrub(err.Error()))
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("%s: timed out after %s (timeout %s): %s", step, took.Round(time.Millisecond), n.timeout, n.secrets.Scrub(text))
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Sprintf("%s: canceled: %s", step, n.secrets.Scrub(text))
	case strings.Contains(text, "does not support STARTTLS"):
		return fmt.Sprintf("%s: the server does not offer STARTTLS, which TLS mode %q requires (nothing was sent)", step, n.tlsMode)
	case errors.Is(err, gomailsmtp.ErrUnencrypted):
		return fmt.Sprintf("%s: refusing to authenticate over an unencrypted connection: %s", step, n.secrets.Scrub(text))
	case errors.Is(err, io.EOF) || strings.Contains(text, "EOF"):
		return fmt.Sprintf("%s: the server closed the connection: %s", step, n.secrets.Scrub(text))
	}
	var se *mail.SendError
	if errors.As(err, &se) {
		switch code := se.ErrorCode(); {
		case code >= 400 && code < 500:
			return fmt.Sprintf("%s: %s (a temporary failure)", step, n.secrets.Scrub(text))
		case code >= 500 && code < 600:
			return fmt.Sprintf("%s: %s (a permanent failure)", step, n.secrets.Scrub(text))
		}
	}
	return fmt.Sprintf("%s: %s", step, n.secrets.Scrub(text))
}

// errorf returns an error that names the channel.
func (n *Notifier) errorf(format string, args ...any) error {
	return fmt.Errorf("%s %q: %s", n.kind, n.name, fmt.Sprintf(format, args...))
}

// oneLine makes s one printable line.
func oneLine(s string) string {
	return strings.TrimSpace(event.Clean(s))
}

// message builds the e-mail for a.
func (n *Notifier) message(a *alert.Alert) (*mail.Msg, error) {
	m := mail.NewMsg(mail.WithCharset(mail.CharsetUTF8), mail.WithNoDefaultUserAgent())
	if IsLocalName(n.from.Address) || slices.ContainsFunc(n.to, func(a *netmail.Address) bool { return IsLocalName(a.Address) }) {
		// For the local mail transfer agent, which qualifies bare names:
		// go-mail would write "<root@>".
		m.SetGenHeaderPreformatted(mail.Header(mail.HeaderFrom), formatAddresses([]*netmail.Address{n.from}))
		m.SetGenHeaderPreformatted(mail.Header(mail.HeaderTo), formatAddresses(n.to))
	} else {
		m.FromMailAddress(n.from)
		m.ToMailAddress(n.to...)
	}
	// Encoded here (RFC 2047) rather than by go-mail, which folds a long
	// encoded subject after "Subject:", leaving decoders a leading space.
	m.SetGenHeaderPreformatted(mail.HeaderSubject, encodeHeader(n.Subject(a)))
	m.SetMessageIDWithValue(MessageID(a))
	date := a.Time
	if date.IsZero() {
		date = time.Now()
	}
	m.SetDateWithValue(date)
	id := token(a.ID)
	m.SetGenHeader(mail.Header(AlertIDHeader), id)
	m.SetGenHeader(mail.Header(AlertTypeHeader), token(a.Type))
	m.SetGenHeader(mail.Header(SeverityHeader), token(a.Severity))
	// RFC 3834: an automatic message; no vacation replies, please.
	m.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	m.SetGenHeader(mail.HeaderXAutoResponseSuppress, "All")
	m.SetUserAgent(n.userAgent)
	if a.Severity == alert.SeverityCritical && a.Type != alert.TypeResolved && !a.IsTest() {
		m.SetImportance(mail.ImportanceHigh)
	}
	m.SetBodyString(mail.TypeTextPlain, Body(a))
	j, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the alert: %v", err)
	}
	j = append(j, '\n')
	if err := m.AttachReader(AttachmentName(a), bytes.NewReader(j),
		mail.WithFileContentType(mail.ContentType("application/json"))); err != nil {
		return nil, fmt.Errorf("attaching the alert: %v", err)
	}
	return m, nil
}

// encodeHeader encodes an unstructured header value as RFC 2047 encoded
// words if it is not ASCII, one per line.
func encodeHeader(s string) string {
	return strings.ReplaceAll(mime.QEncoding.Encode("UTF-8", s), "?= =?", "?=\r\n =?")
}

// AttachmentName is the name of the JSON attachment of a's message.
func AttachmentName(a *alert.Alert) string {
	return "fshealth-alert-" + token(a.ID) + ".json"
}

// MessageID returns the Message-ID (without angle brackets) of a's message:
// the alert id and the host, so that every delivery of the same alert has
// the same Message-ID.
func MessageID(a *alert.Alert) string {
	return token(a.ID) + ".fshealth@" + domain(a.Host)
}

// token keeps only the characters safe anywhere in a header: letters,
// digits, '.', '_' and '-'; anything else becomes '_'. An empty result is
// "unknown".
func token(s string) string {
	b := []byte(s)
	if len(b) > 128 {
		b = b[:128]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "unknown"
	}
	return string(b)
}

// domain makes host a dot-atom for the right side of a Message-ID.
func domain(host string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	d := strings.Trim(b.String(), ".")
	for strings.Contains(d, "..") {
		d = strings.ReplaceAll(d, "..", ".")
	}
	if d == "" {
		return "localhost"
	}
	if len(d) > 200 {
		d = d[:200]
	}
	return d
}

// Subject returns the message's subject:
// "<prefix> <severity> [<TYPE> ]<summary> on <host>", where TYPE marks
// anything but a first alert (TEST, DIGEST, REMINDER, RESOLVED). It is one
// line: control characters in any part are escaped, so no header can be
// injected through it.
func (n *Notifier) Subject(a *alert.Alert) string {
	parts := []string{n.prefix}
	if a.Severity != "" {
		parts = append(parts, event.Clean(a.Severity))
	}
	switch {
	case a.IsTest():
		parts = append(parts, "TEST")
	case a.Type == alert.TypeDigest, a.Type == alert.TypeReminder, a.Type == alert.TypeResolved:
		parts = append(parts, strings.ToUpper(a.Type))
	}
	parts = append(parts, event.Clean(a.Headline()))
	if a.Host != "" {
		parts = append(parts, "on", event.Clean(a.Host))
	}
	subj := strings.Join(parts, " ")
	// Belt and braces: nothing below a space, no DEL, no line separators.
	subj = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, subj)
	return notify.Truncate(subj, maxSubject)
}

// Body returns the plain-text body of a's message: what happened, the file
// system (device, type, UUID, label, mount points), the error (errno, count
// and since when, inode and path, process, ext4's recorded error state), the
// alert's identity (id, type, severity, rule, event id) and the event as one
// line. Every string from the kernel or the file system is escaped, so none
// can forge a line.
func Body(a *alert.Alert) string {
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	field := func(name, value string) {
		if value != "" {
			line("  %-14s %s", name+":", value)
		}
	}
	fs := a.Filesystem
	since := ""
	if !a.Since.IsZero() {
		since = " since " + a.Since.UTC().Format(time.RFC3339)
	}
	kind := event.Safe(a.ErrorKind)
	if a.ErrorKind == "" {
		kind = "file system"
	}
	host := event.Clean(a.Host)
	if host == "" {
		host = "this host"
	}
	line("fshealth on %s: %s", host, event.Clean(a.Headline()))
	line("")
	switch {
	case a.IsTest():
		line("This is a TEST alert sent by `fshealth test-alert`. Nothing is wrong:")
		line("it shows that e-mail alerts from %s arrive.", host)
	case a.Type == alert.TypeResolved:
		line("RESOLVED: the %s incident on this file system has ended.", kind)
		if a.Count > 0 {
			line("It counted %d error(s)%s.", a.Count, since)
		}
	case a.Type == alert.TypeDigest:
		line("%d more %s error(s)%s on this file system.", a.Count, kind, since)
		line("They were folded into this digest so as not to flood you; fshealth's")
		line("history (`fshealth events`) has every one of them.")
	case a.Type == alert.TypeReminder:
		line("REMINDER: this file system is still unhealthy: %d %s error(s)%s.", a.Count, kind, since)
	default:
		line("The file system reported %d %s error(s)%s.", a.Count, kind, since)
		line("Check it (fsck) as soon as possible; `fshealth status` shows its health.")
	}
	line("")

	line("File system")
	field("Device", event.Safe(fs.Device))
	field("Type", safeOrEmpty(fs.FSType))
	field("UUID", safeOrEmpty(fs.UUID))
	field("Label", safeOrEmpty(fs.Label))
	if len(fs.Mountpoints) > 0 {
		mps := make([]string, len(fs.Mountpoints))
		for i, m := range fs.Mountpoints {
			mps[i] = event.Safe(m)
		}
		field("Mount points", strings.Join(mps, ", "))
	}
	line("")

	if e := a.Event; e != nil {
		line("Error")
		if e.Kind == event.KindOverflow {
			field("Kind", "event queue overflow: errors were lost")
		}
		if e.Error != "" {
			field("Error", fmt.Sprintf("%s (%s), errno %d", event.Safe(e.Error), event.Clean(e.ErrorText), e.Errno))
		}
		if a.Count > 0 {
			field("Count", fmt.Sprintf("%d%s", a.Count, since))
		}
		if e.ErrorCount > 1 {
			field("In this event", fmt.Sprintf("%d errors folded by the kernel", e.ErrorCount))
		}
		if e.Inode != nil {
			v := strconv.FormatUint(*e.Inode, 10)
			if e.Generation != nil {
				v += fmt.Sprintf(" (generation %d)", *e.Generation)
			}
			field("Inode", v)
		} else if e.Kind == event.KindError && e.Handle == nil {
			field("Inode", "none (the error is about the whole file system)")
		}
		switch {
		case e.Path != "":
			field("Path", event.Safe(e.Path))
		case e.PathError != "":
			field("Path", "unknown ("+event.Clean(e.PathError)+")")
		}
		if e.PID != 0 {
			field("Process", "pid "+strconv.Itoa(e.PID))
		}
		if !e.Time.IsZero() {
			field("Reported", e.Time.UTC().Format(time.RFC3339Nano))
		}
		if e.Message != "" {
			field("Note", event.Clean(e.Message))
		}
		if st := e.Ext4; st != nil {
			field("ext4 state", fmt.Sprintf("%d error(s) recorded since the last fsck", st.ErrorsCount))
			if st.FirstError != nil {
				field("  first", ext4Error(st.FirstError.Time, st.FirstError.Function, st.FirstError.Line, st.FirstError.Inode, st.FirstError.Block, st.FirstError.Error))
			}
			if st.LastError != nil {
				field("  last", ext4Error(st.LastError.Time, st.LastError.Function, st.LastError.Line, st.LastError.Inode, st.LastError.Block, st.LastError.Error))
			}
		}
		line("")
	} else if a.Count > 0 && !a.IsTest() {
		line("Error")
		field("Error", kind)
		field("Count", fmt.Sprintf("%d%s", a.Count, since))
		line("")
	}

	line("Alert")
	field("Alert id", event.Safe(a.ID))
	field("Type", event.Safe(a.Type))
	field("Severity", safeOrEmpty(a.Severity))
	field("Rule", safeOrEmpty(a.Rule))
	field("Host", safeOrEmpty(a.Host))
	if !a.Time.IsZero() {
		field("Raised", a.Time.UTC().Format(time.RFC3339))
	}
	if a.Event != nil && a.Event.ID != "" {
		field("Event id", event.Safe(a.Event.ID))
	}
	if a.Event != nil {
		line("")
		line("Event:")
		line("  %s", strings.TrimSuffix(string(event.AppendText(nil, a.Event)), "\n"))
	}
	line("")
	line("The alert is attached as JSON (%s).", AttachmentName(a))
	return b.String()
}

// safeOrEmpty is event.Safe, but "" for an empty string.
func safeOrEmpty(s string) string {
	if s == "" {
		return ""
	}
	return event.Safe(s)
}

// ext4Error describes one of ext4's recorded errors.
func ext4Error(t time.Time, fn string, ln uint32, ino, block uint64, errName string) string {
	s := fmt.Sprintf("%s in %s:%d", t.UTC().Format(time.RFC3339), event.Safe(fn), ln)
	if ino != 0 {
		s += fmt.Sprintf(" inode %d", ino)
	}
	if block != 0 {
		s += fmt.Sprintf(" block %d", block)
	}
	if errName != "" {
		s += " " + event.Safe(errName)
	}
	return s
}
