package notifytest

import (
	"bytes"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// AlertSchemaFile is the path of docs/alert.schema.json in the source tree.
func AlertSchemaFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "docs", "alert.schema.json")
}

// AlertSchema compiles docs/alert.schema.json, with formats (date-time)
// asserted.
func AlertSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(AlertSchemaFile())
	if err != nil {
		t.Fatalf("compiling the alert schema: %v", err)
	}
	return s
}

// CheckAlertJSON fails t unless body, an alert's JSON as a channel sent
// it, is valid against s; what names the channel in the message.
func CheckAlertJSON(t testing.TB, s *jsonschema.Schema, what string, body []byte) {
	t.Helper()
	if err := ValidateAlertJSON(s, body); err != nil {
		if len(body) > 2000 {
			body = append(body[:2000:2000], "…"...)
		}
		t.Errorf("%s: the alert does not match docs/alert.schema.json: %v\n%s", what, err, body)
	}
}

// ValidateAlertJSON returns why body is not an alert as s describes it,
// or nil.
func ValidateAlertJSON(s *jsonschema.Schema, body []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return err
	}
	return s.Validate(v)
}
