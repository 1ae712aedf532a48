package smtp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serverConfig says how the test SMTP server behaves.
type serverConfig struct {
	// startTLS advertises STARTTLS (before the upgrade only).
	startTLS bool
	// implicitTLS speaks TLS from the first byte.
	implicitTLS bool
	// authMechs is the AUTH extension's list, e.g. "PLAIN LOGIN"; empty
	// means no AUTH. When startTLS is set, AUTH is only offered after it.
	authMechs string
	// user and pass are the accepted credentials; when user is set, MAIL
	// requires authentication.
	user, pass string
	// rejectAuth refuses every AUTH attempt.
	rejectAuth bool
	// rcptReply and dataReply replace the 250 reply to RCPT and to the
	// end of DATA, e.g. "450 4.2.1 mailbox busy".
	rcptReply, dataReply string
	// drop closes the connection: "greeting" at once, "rcpt" on RCPT,
	// "mid-data" after a few lines of the message, "data" after the
	// message was received but before replying.
	drop string
	// hang accepts but never greets.
	hang bool
	// cert replaces the server's certificate (for 127.0.0.1 and
	// localhost, self-signed).
	cert *tls.Certificate
}

// session is what the server saw on one connection.
type session struct {
	helo      string
	tls       bool // the session was encrypted when the message came
	startTLS  bool // STARTTLS was used
	authTried bool
	authMech  string
	authUser  string
	from      string
	rcpts     []string
	data      []byte
	accepted  bool
}

// testServer is an in-process SMTP server on 127.0.0.1 for the tests.
type testServer struct {
	cfg  serverConfig
	ln   net.Listener
	tls  *tls.Config
	cert *x509.Certificate
	addr string
	port int

	mu       sync.Mutex
	sessions []*session
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
	closed   chan struct{}
}

// newTestServer starts a server, stopped when the test ends.
func newTestServer(t *testing.T, cfg serverConfig) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, leaf := selfSignedCert(t)
	if cfg.cert != nil {
		cert, leaf = *cfg.cert, cfg.cert.Leaf
	}
	s := &testServer{
		cfg:    cfg,
		ln:     ln,
		tls:    &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		cert:   leaf,
		addr:   ln.Addr().String(),
		port:   ln.Addr().(*net.TCPAddr).Port,
		conns:  make(map[net.Conn]bool),
		closed: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

// selfSignedCert makes a certificate for 127.0.0.1 and localhost.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fshealth test SMTP server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

func (s *testServer) close() {
	close(s.closed)
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *testServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(c)
		}()
	}
}

// messages returns the accepted messages' sessions.
func (s *testServer) messages() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		if ss.accepted {
			out = append(out, ss)
		}
	}
	return out
}

// allSessions returns every session.
func (s *testServer) allSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*session(nil), s.sessions...)
}

func (s *testServer) handle(c net.Conn) {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	sess := &session{}
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()
	update := func(f func()) {
		s.mu.Lock()
		defer s.mu.Unlock()
		f()
	}

	if s.cfg.hang {
		<-s.closed
		return
	}
	if s.cfg.drop == "greeting" {
		return
	}
	if s.cfg.implicitTLS {
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		c = tc
		update(func() { sess.tls = true })
	}
	tp := textproto.NewConn(c)
	reply := func(lines ...string) {
		for _, l := range lines {
			if err := tp.PrintfLine("%s", l); err != nil {
				return
			}
		}
	}
	reply("220 localhost ESMTP fshealth-test")
	encrypted := s.cfg.implicitTLS
	authed := ""
	var from string
	var rcpts []string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			update(func() { sess.helo = arg })
			ext := []string{"localhost greets " + arg, "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 10485760"}
			if s.cfg.startTLS && !encrypted {
				ext = append(ext, "STARTTLS")
			}
			if s.cfg.authMechs != "" && (encrypted || !s.cfg.startTLS) {
				ext = append(ext, "AUTH "+s.cfg.authMechs)
			}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				reply("250" + sep + e)
			}
		case "STARTTLS":
			if !s.cfg.startTLS || encrypted {
				reply("502 5.5.1 STARTTLS not available")
				continue
			}
			reply("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			tp = textproto.NewConn(c)
			encrypted = true
			authed, from, rcpts = "", "", nil
			update(func() { sess.tls, sess.startTLS = true, true })
		case "AUTH":
			update(func() { sess.authTried = true })
			mech, initial, _ := strings.Cut(arg, " ")
			mech = strings.ToUpper(mech)
			if s.cfg.authMechs == "" || !strings.Contains(" "+s.cfg.authMechs+" ", " "+mech+" ") {
				reply("504 5.5.4 Unrecognized authentication type")
				continue
			}
			var user, pass string
			ok := true
			switch mech {
			case "PLAIN":
				if initial == "" {
					reply("334 ")
					if initial, err = tp.ReadLine(); err != nil {
						return
					}
				}
				raw, err := base64.StdEncoding.DecodeString(initial)
				f := strings.Split(string(raw), "\x00")
				if err != nil || len(f) != 3 {
					ok = false
				} else {
					user, pass = f[1], f[2]
				}
			case "LOGIN":
				u := initial
				if u == "" {
					reply("334 VXNlcm5hbWU6")
					if u, err = tp.ReadLine(); err != nil {
						return
					}
				}
				reply("334 UGFzc3dvcmQ6")
				p, err := tp.ReadLine()
				if err != nil {
					return
				}
				ub, err1 := base64.StdEncoding.DecodeString(u)
				pb, err2 := base64.StdEncoding.DecodeString(p)
				ok = err1 == nil && err2 == nil
				user, pass = string(ub), string(pb)
			}
			if !ok || s.cfg.rejectAuth || user != s.cfg.user || pass != s.cfg.pass {
				reply("535 5.7.8 Authentication credentials invalid")
				continue
			}
			authed = user
			update(func() { sess.authMech, sess.authUser = mech, user })
			reply("235 2.7.0 Authentication successful")
		case "MAIL":
			if s.cfg.user != "" && authed == "" {
				reply("530 5.7.0 Authentication required")
				continue
			}
			from = angle(arg)
			rcpts = nil
			reply("250 2.1.0 Sender OK")
		case "RCPT":
			if s.cfg.drop == "rcpt" {
				return
			}
			if from == "" {
				reply("503 5.5.1 MAIL first")
				continue
			}
			if s.cfg.rcptReply != "" {
				reply(s.cfg.rcptReply)
				continue
			}
			rcpts = append(rcpts, angle(arg))
			reply("250 2.1.5 Recipient OK")
		case "DATA":
			if len(rcpts) == 0 {
				reply("554 5.5.1 No valid recipients")
				continue
			}
			reply("354 End data with <CR><LF>.<CR><LF>")
			if s.cfg.drop == "mid-data" {
				// Read a few lines of the message, then hang up.
				for range 5 {
					if _, err := tp.ReadLine(); err != nil {
						return
					}
				}
				return
			}
			data, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			if s.cfg.drop == "data" {
				return
			}
			if s.cfg.dataReply != "" {
				reply(s.cfg.dataReply)
				continue
			}
			f, r := from, append([]string(nil), rcpts...)
			update(func() {
				sess.tls = encrypted
				sess.from, sess.rcpts, sess.data, sess.accepted = f, r, data, true
			})
			from, rcpts = "", nil
			reply("250 2.0.0 Ok: queued as " + strconv.Itoa(len(data)))
		case "RSET":
			from, rcpts = "", nil
			reply("250 2.0.0 Ok")
		case "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("500 5.5.2 Unrecognized command")
		}
	}
}

// angle returns the address in "FROM:<a@b> PARAMS" or "TO:<a@b>".
func angle(arg string) string {
	i := strings.IndexByte(arg, '<')
	j := strings.IndexByte(arg, '>')
	if i < 0 || j < i {
		return ""
	}
	return arg[i+1 : j]
}
