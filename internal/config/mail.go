package config

import (
	"crypto/x509"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// smtpOnlyKeys are the keys of an e-mail channel that only mean something
// with via = "smtp".
var smtpOnlyKeys = []string{"host", "port", "tls", "username", "password", "ca_file", "tls_fingerprint", "allow_unverified_auth"}

// smtp checks an [[smtp]] or [[mail]] table.
func (r *reader) smtp(t at, f *fileSMTP, names map[string]string, checkFS bool) SMTP {
	s := SMTP{
		Name: r.channelName(t, f.Name, names),
		TLS:  TLSStartTLS, Timeout: DefaultSMTPTimeout, SubjectPrefix: DefaultSubjectPrefix,
	}
	mailVia(t, f, &s)
	if s.Via != ViaSendmail && t.required("host") {
		s.Host = f.Host
		t.check("host", checkMailHost(s.Host))
	}
	if t.has("tls") {
		s.TLS = f.TLS
		t.oneOf("tls", s.TLS, TLSStartTLS, TLSStartTLSOpportunistic, TLSImplicit, TLSNone)
	}
	if t.integer("port", f.Port, 1, 65535) {
		s.Port = int(f.Port)
	} else if !t.has("port") {
		switch s.TLS {
		case TLSImplicit:
			s.Port = 465
		case TLSStartTLS:
			s.Port = 587
		default:
			s.Port = 25
		}
	}
	if t.required("from") {
		s.From = f.From
		t.check("from", checkMailAddress(s.From, s.Via))
	}
	if t.required("to") {
		s.To = f.To
		if len(s.To) == 0 {
			t.errorf("to", "needs at least one address")
		}
		for i, a := range s.To {
			t.item("to", i).check("", checkMailAddress(a, s.Via))
		}
	}
	mailTLS(t, f, &s, checkFS)
	s.Username = f.Username
	hasPassword := r.secret(t, "password", f.Password, f.PasswordFile, f.PasswordCredential, &s.Password)
	r.credentials(t, s.Username, hasPassword)
	if hasPassword {
		switch s.TLS {
		case TLSNone:
			t.errorf("password", "would be sent unencrypted: set tls to %q or %q", TLSStartTLS, TLSImplicit)
		case TLSStartTLSOpportunistic:
			if !s.AllowUnverifiedAuth && s.CAFile == "" && len(s.TLSFingerprints) == 0 {
				t.warnf("password", "may be sent unencrypted if the server does not offer STARTTLS, and is not sent (the delivery fails) "+
					"if its certificate cannot be verified: consider tls = %q, or ca_file or tls_fingerprint for a private relay", TLSStartTLS)
			} else {
				t.warnf("password", "may be sent unencrypted if the server does not offer STARTTLS: consider tls = %q", TLSStartTLS)
			}
		}
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &s.Timeout)
	if t.has("subject_prefix") {
		s.SubjectPrefix = f.SubjectPrefix
		t.check("subject_prefix", checkOneLine(s.SubjectPrefix))
	}
	return s
}

// mailVia reads via (and sendmail) of an e-mail channel, before the other
// keys: it decides which are allowed and which are required.
func mailVia(t at, f *fileSMTP, s *SMTP) {
	s.Via = ViaSMTP
	if t.has("via") {
		t.oneOf("via", f.Via, ViaSMTP, ViaSendmail)
		if f.Via == ViaSendmail {
			s.Via = ViaSendmail
		}
	}
	if s.Via != ViaSendmail {
		if t.given("sendmail") {
			s.Sendmail = f.Sendmail
			t.errorf("sendmail", "is for via = %q", ViaSendmail)
		}
		return
	}
	for _, k := range smtpOnlyKeys {
		if t.given(k) {
			t.errorf(k, "is for via = %q: with via = %q the local mail transfer agent has its own configuration", ViaSMTP, ViaSendmail)
		}
	}
	s.Sendmail = DefaultSendmail
	if t.has("sendmail") {
		s.Sendmail = f.Sendmail
		t.check("sendmail", checkAbsPath(s.Sendmail))
	}
}

// mailTLS reads the keys that authenticate the server (ca_file,
// tls_fingerprint, allow_unverified_auth) and, with checkFS, checks the
// CA file and the sendmail program.
func mailTLS(t at, f *fileSMTP, s *SMTP, checkFS bool) {
	if s.Via == ViaSendmail {
		s.Host, s.Port, s.TLS = "", 0, ""
		if checkFS && checkAbsPath(s.Sendmail) == "" {
			t.check("sendmail", checkSendmail(s.Sendmail))
		}
		return
	}
	s.CAFile, s.TLSFingerprints, s.AllowUnverifiedAuth = f.CAFile, f.TLSFingerprints, f.AllowUnverifiedAuth
	if t.has("ca_file") {
		if msg := checkAbsPath(s.CAFile); msg != "" {
			t.errorf("ca_file", "%s", msg)
		} else if checkFS {
			t.check("ca_file", checkCAFile(s.CAFile))
		}
	}
	for i, fp := range s.TLSFingerprints {
		if !fingerprintRE().MatchString(strings.TrimSpace(fp)) {
			t.item("tls_fingerprint", i).errorf("", "not a SHA-256 fingerprint (64 hex digits, colons allowed: what follows \"=\" in the output of `openssl x509 -noout -fingerprint -sha256`): %q", fp)
		}
	}
	if s.TLS == TLSNone {
		for _, k := range []string{"ca_file", "tls_fingerprint"} {
			if t.given(k) {
				t.errorf(k, "means nothing with tls = %q", TLSNone)
			}
		}
	}
	if s.AllowUnverifiedAuth && s.TLS != TLSStartTLSOpportunistic {
		t.errorf("allow_unverified_auth", "is for tls = %q (other modes never send credentials to an unverified server)", TLSStartTLSOpportunistic)
	}
}

// fingerprintRE matches a SHA-256 fingerprint, as
// smtp.ParseFingerprint reads it; compiled when first used.
var fingerprintRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?i:sha256:)?(?:[0-9A-Fa-f]{64}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31})$`)
})

// localNameRE matches a bare local name ("root"), which only the local
// mail transfer agent can deliver to.
var localNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+-]{0,63}$`)

// checkMailAddress checks an address of an e-mail channel: bare local
// names are only for via = "sendmail".
func checkMailAddress(a, via string) string {
	if localNameRE.MatchString(a) {
		if via == ViaSendmail {
			return ""
		}
		return fmt.Sprintf("not an e-mail address: %q (a bare local name is only for via = %q)", a, ViaSendmail)
	}
	return checkAddress(a)
}

// checkSendmail checks that path is a program the daemon can run, and,
// as root, that only root can change it (trust.CheckProgram).
func checkSendmail(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return fmt.Sprintf("%q does not exist (is a mail transfer agent such as exim4 or postfix installed?)", path)
		}
		return fmt.Sprintf("cannot use %q: %v", path, err.(*os.PathError).Err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Sprintf("%q is not a regular file", path)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Sprintf("%q is not executable: %v", path, err)
	}
	if msg, _ := checkProgram(path); msg != "" {
		return msg
	}
	return ""
}

// checkCAFile checks that path holds PEM certificates.
func checkCAFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("cannot read %q: %v", path, err.(*os.PathError).Err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return fmt.Sprintf("%q holds no PEM certificate", path)
	}
	return ""
}
