package smtp

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// peerState is what one delivery learned about the server's certificate.
type peerState struct {
	mu        sync.Mutex
	seen      bool  // a TLS handshake got as far as the certificate
	verifyErr error // why it could not be verified; nil if it was
}

func (p *peerState) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen, p.verifyErr = true, err
}

func (p *peerState) get() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen, p.verifyErr
}

// tlsConfig returns the TLS configuration for one delivery. The
// certificate is checked by verify, not by crypto/tls, so that
// opportunistic TLS can go on with a certificate it cannot verify and say
// why, and so that a CA file or a pinned fingerprint can be used.
func (n *Notifier) tlsConfig(peer *peerState) *tls.Config {
	return &tls.Config{
		ServerName: n.host,
		MinVersion: tls.VersionTLS12,
		// Verification is done by VerifyConnection below.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := n.verify(cs)
			peer.set(err)
			switch {
			case err == nil:
				return nil
			case n.tlsMode != TLSStartTLSOpportunistic:
				return err
			case n.username != "" && !n.allowUnverifiedAuth:
				// Better no delivery than credentials to whoever
				// answered: stop before anything is sent.
				return fmt.Errorf("%w; refusing to send the credentials over a session that is encrypted but not authenticated "+
					"(allow_unverified_auth = true allows it)", err)
			}
			return nil
		},
	}
}

// verify checks the server's certificate: against the pinned fingerprints
// if there are any, then against the CA file or the system's authorities,
// for the configured host name or address. Errors name the server and the
// certificate (subject, validity, fingerprint) and say what went wrong.
func (n *Notifier) verify(cs tls.ConnectionState) error {
	if n.insecure {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%s sent no certificate", n.addr())
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.Raw)
	for _, pin := range n.pins {
		if sum == pin {
			return nil
		}
	}
	opts := x509.VerifyOptions{
		DNSName:       n.host,
		Roots:         n.roots,
		Intermediates: x509.NewCertPool(),
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	err := error(nil)
	if len(n.pins) > 0 && n.roots == nil {
		// Only the pins were asked for.
		err = errors.New("its fingerprint is not one of tls_fingerprint")
	} else if _, verr := leaf.Verify(opts); verr != nil {
		err = verr
		if len(n.pins) > 0 {
			err = fmt.Errorf("its fingerprint is not one of tls_fingerprint, and %w", verr)
		}
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("the certificate of %s cannot be verified: %w (certificate %q, valid %s to %s, SHA-256 fingerprint %s)",
		n.addr(), err, leaf.Subject.String(), leaf.NotBefore.UTC().Format("2006-01-02"), leaf.NotAfter.UTC().Format("2006-01-02"),
		FormatFingerprint(sum))
}

// noteUnverified logs, once per channel, that a delivery went over a TLS
// session whose certificate could not be verified.
func (n *Notifier) noteUnverified(peer *peerState) {
	seen, err := peer.get()
	if !seen || err == nil || n.warnedUnverif.Swap(true) {
		return
	}
	n.log.Warn("mail session encrypted but not authenticated: the server's certificate could not be verified "+
		"(tls = \"starttls-opportunistic\"); set ca_file or tls_fingerprint to authenticate it",
		"channel", n.name, "server", n.addr(), "err", oneLine(err.Error()))
}

// LoadCAFile reads a PEM file of certificate authorities.
func LoadCAFile(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate", path)
	}
	return pool, nil
}

// ParseFingerprint parses a SHA-256 certificate fingerprint: 64 hex
// digits, in either case, with or without colons, optionally after
// "sha256:" (as `openssl x509 -fingerprint -sha256` prints it, after the
// "=").
func ParseFingerprint(s string) ([sha256.Size]byte, error) {
	var out [sha256.Size]byte
	h := strings.TrimSpace(s)
	if len(h) > 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	h = strings.ReplaceAll(h, ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return out, fmt.Errorf("TLS fingerprint %q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", s)
	}
	copy(out[:], b)
	return out, nil
}

// FormatFingerprint writes a fingerprint as ParseFingerprint reads it:
// upper-case hex pairs separated by colons.
func FormatFingerprint(sum [sha256.Size]byte) string {
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}
