package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fshealth/fshealth/internal/notify/webhook"
)

// checkSigningSecret checks a Standard Webhooks signing secret without
// quoting it. Redacted's placeholder is let through, so that a dump reads
// back (the channel refuses it).
func checkSigningSecret(s string) string {
	if s == redactedValue {
		return ""
	}
	if _, err := webhook.ParseSigningSecret(s); err != nil {
		return err.Error()
	}
	return ""
}

// isStandardWebhooksHeader reports whether name is one of the headers a
// signing secret makes fshealth send.
func isStandardWebhooksHeader(name string) bool {
	for _, h := range []string{webhook.IDHeader, webhook.TimestampHeader, webhook.SignatureHeaderV1} {
		if strings.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// credentialName reports whether a header or query parameter name looks
// like it carries a credential.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	if n == "cookie" {
		return true
	}
	for _, w := range []string{"auth", "token", "key", "secret", "password", "passwd", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// plainHTTPCredentials returns a warning if credentials would be sent to
// the http:// URL u in clear: its user information, credential-like query
// parameters or headers, or HTTP basic auth (basicAuth). Credentials for
// localhost and loopback addresses never leave the machine and draw no
// warning. The warning names what would be sent, never its value.
func plainHTTPCredentials(u string, headers map[string]string, basicAuth bool) string {
	p, err := url.Parse(u)
	if err != nil || !strings.EqualFold(p.Scheme, "http") {
		return ""
	}
	host := p.Hostname()
	if strings.EqualFold(host, "localhost") {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return ""
	}
	var what []string
	if p.User != nil {
		what = append(what, "the URL's user information")
	}
	if basicAuth {
		what = append(what, "username and password")
	}
	if q, err := url.ParseQuery(p.RawQuery); err == nil {
		for _, k := range sortedKeys(q) {
			if credentialName(k) {
				what = append(what, "query parameter "+strconv.Quote(k))
			}
		}
	}
	for _, k := range sortedKeys(headers) {
		if credentialName(k) {
			what = append(what, "header "+strconv.Quote(k))
		}
	}
	if len(what) == 0 {
		return ""
	}
	return fmt.Sprintf("credentials (%s) would be sent unencrypted over http:// to %s: use https://", strings.Join(what, ", "), p.Host)
}

// webhook checks a [[webhook]] table.
func (r *reader) webhook(t at, f *fileWebhook, names map[string]string) Webhook {
	w := Webhook{
		Name:            r.channelName(t, f.Name, names),
		URL:             f.URL,
		Template:        f.Template,
		ContentType:     DefaultContentType,
		SignatureHeader: DefaultSignatureHeader,
		Timeout:         DefaultWebhookTimeout,
	}
	if t.required("url") {
		if msg := checkHTTPURL(w.URL); msg != "" {
			t.errorf("url", "%s", msg)
		} else if warn := r.readableURL(w.URL); warn != "" {
			t.warnf("url", "%s", warn)
		}
	}
	w.Headers = r.headers(t, f.Headers)
	goodType := true
	if t.has("content_type") {
		w.ContentType = f.ContentType
		if msg := checkMediaType(w.ContentType); msg != "" {
			t.errorf("content_type", "%s", msg)
			goodType = false
		}
	}
	if t.has("format") {
		w.Format = f.Format
		ct, msg := checkFormat(w.Format)
		switch {
		case msg != "":
			t.errorf("format", "%s", msg)
		case w.Template != "":
			t.errorf("format", "set either format or template, not both")
		case t.has("content_type") && w.ContentType != ct:
			t.errorf("content_type", "format %s sets the content type (%s)", w.Format, ct)
		default:
			w.ContentType = ct
		}
	}
	if w.Template != "" && goodType {
		t.check("template", checkTemplate(w.Template, w.ContentType))
	}
	hasSecret := r.secret(t, "secret", f.Secret, f.SecretFile, f.SecretCredential, &w.Secret)
	hasSigning := r.secret(t, "signing_secret", f.SigningSecret, f.SigningSecretFile, f.SigningSecretCredential, &w.SigningSecret)
	if w.SigningSecret != "" {
		signingKey := "signing_secret"
		for _, k := range []string{"signing_secret_file", "signing_secret_credential"} {
			if t.has(k) {
				signingKey = k
			}
		}
		t.check(signingKey, checkSigningSecret(w.SigningSecret))
	}
	if hasSecret && !hasSigning {
		t.warnf("secret", "signs the body alone: a captured request can be replayed; set signing_secret (Standard Webhooks) for signatures that cover the alert id and the time")
	}
	r.secretHeaders(t, f.fileHeaders, &w.Headers)
	if t.has("signature_header") {
		w.SignatureHeader = f.SignatureHeader
		t.check("signature_header", checkHeaderName(w.SignatureHeader))
	}
	t.duration("timeout", f.Timeout, 100*time.Millisecond, &w.Timeout)
	for _, k := range sortedKeys(w.Headers) {
		if strings.EqualFold(k, w.SignatureHeader) && hasSecret {
			t.errorf("headers", "header %q is the signature header", k)
		}
		if hasSigning && isStandardWebhooksHeader(k) {
			t.errorf("headers", "header %q is set by fshealth with signing_secret", k)
		}
		if strings.EqualFold(k, "Content-Type") {
			t.errorf("headers", "set the body's type with content_type, not a %q header", k)
		}
	}
	if warn := plainHTTPCredentials(w.URL, w.Headers, false); warn != "" {
		t.warnf("url", "%s", warn)
	}
	return w
}
