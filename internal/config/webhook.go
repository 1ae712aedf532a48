package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

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
