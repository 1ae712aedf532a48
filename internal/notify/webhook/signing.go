package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The Standard Webhooks (https://www.standardwebhooks.com) headers that a
// channel with a signing secret sends with every request.
const (
	// IDHeader carries the message id: the alert's id, the same on every
	// attempt to deliver that alert, so receivers de-duplicate on it.
	IDHeader = "Webhook-Id"
	// TimestampHeader carries the attempt's time in Unix seconds.
	TimestampHeader = "Webhook-Timestamp"
	// SignatureHeaderV1 carries "v1,<base64 HMAC-SHA256>" of
	// "<id>.<timestamp>.<body>".
	SignatureHeaderV1 = "Webhook-Signature"
)

// SigningSecretPrefix starts a signing secret; the rest is the key in
// standard base64.
const SigningSecretPrefix = "whsec_"

// Key sizes a signing secret must decode to, in bytes.
const (
	MinSigningKey = 24
	MaxSigningKey = 64
)

// ParseSigningSecret returns the HMAC key of a Standard Webhooks signing
// secret, "whsec_" followed by the standard base64 encoding of 24 to 64
// bytes. Its errors never quote the secret.
func ParseSigningSecret(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, SigningSecretPrefix)
	if !ok {
		return nil, fmt.Errorf("a signing secret must start with %q (value not shown)", SigningSecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errors.New("a signing secret is \"whsec_\" followed by standard base64 (value not shown)")
	}
	if len(key) < MinSigningKey || len(key) > MaxSigningKey {
		return nil, fmt.Errorf("a signing secret's key must be %d to %d bytes, not %d: make one with: echo \"whsec_$(head -c 32 /dev/urandom | base64)\"", MinSigningKey, MaxSigningKey, len(key))
	}
	return key, nil
}

// SignV1 returns the Standard Webhooks signature of a request: "v1,"
// followed by the standard base64 HMAC-SHA256, under key, of the id, the
// Unix timestamp and the body joined by dots.
func SignV1(key []byte, id string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// validMessageID reports whether id can be sent as a webhook-id: 1 to 256
// printable ASCII characters without spaces. Alert ids are ULIDs; this is a
// guard, since the id is also part of the signed content.
func validMessageID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return false
		}
	}
	return true
}
