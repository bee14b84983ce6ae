package location

import (
	"strings"
	"testing"
)

// FuzzParseAndRedact: any string a user types either parses or gives an
// error, and neither the error nor the redacted form shows a password that
// was given in URL user info.
func FuzzParseAndRedact(f *testing.F) {
	for _, s := range []string{"wandb:/data", "parquet:///x?snapshot=1", "mlflow+https://u:pw@h:1/p?token=t",
		`C:\x`, "postgres://a:b@c/d", "", ":", "mlflow+http://[::1]:5000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		const secret = "Zq9-planted-pw"
		in := strings.Replace(raw, "pw", secret, 1)
		_, err := Parse(in, kinds)
		red := Redact(in)
		if strings.Contains(in, "//u:"+secret+"@") && strings.Contains(red, secret) {
			t.Fatalf("Redact(%q) = %q shows the password", in, red)
		}
		if err != nil && strings.Contains(in, "//u:"+secret+"@") && strings.Contains(err.Error(), secret) {
			t.Fatalf("Parse(%q) error shows the password: %v", in, err)
		}
	})
}
