package location

import (
	"context"
	"strings"
	"testing"
)

func kinds(s string) (Kind, bool) {
	switch s {
	case "wandb", "parquet", "sqlite":
		return PathKind, true
	case "mlflow+http", "mlflow+https", "postgres":
		return URLKind, true
	}
	return 0, false
}

func TestParse(t *testing.T) {
	tests := []struct {
		raw, scheme, path, host string
		errHas                  string
	}{
		{raw: "wandb:/data/wandb", scheme: "wandb", path: "/data/wandb"},
		{raw: "wandb:./wandb", scheme: "wandb", path: "./wandb"},
		{raw: "parquet:backup", scheme: "parquet", path: "backup"},
		{raw: "parquet:///abs/dir", scheme: "parquet", path: "/abs/dir"},
		{raw: "parquet://localhost/abs", scheme: "parquet", path: "/abs"},
		{raw: "PARQUET:/x?snapshot=3", scheme: "parquet", path: "/x"},
		{raw: "mlflow+http://127.0.0.1:5000", scheme: "mlflow+http", host: "127.0.0.1:5000"},
		{raw: "mlflow+https://u:pw@mlflow.example.com/prefix", scheme: "mlflow+https", host: "mlflow.example.com"},
		{raw: "/data/wandb", errHas: "no scheme: did you mean"},
		{raw: `C:\data\wandb`, errHas: "Windows path"},
		{raw: "c:/data", errHas: "Windows path"},
		{raw: "parquet://backups/x", errHas: `names host "backups"`},
		{raw: "ftp://x", errHas: "unknown scheme"},
		{raw: "mlflow+http:relative", errHas: "needs a URL"},
		{raw: "mlflow+http://", errHas: "no host"},
		{raw: "wandb:", errHas: "empty path"},
		{raw: "", errHas: "empty location"},
	}
	for _, tt := range tests {
		loc, err := Parse(tt.raw, kinds)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Parse(%q) error = %v, want one containing %q", tt.raw, err, tt.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.raw, err)
			continue
		}
		if loc.Scheme != tt.scheme || loc.Path != tt.path || (tt.host != "" && loc.URL.Host != tt.host) {
			t.Errorf("Parse(%q) = scheme %q path %q url %v", tt.raw, loc.Scheme, loc.Path, loc.URL)
		}
	}
	loc, _ := Parse("parquet:/x?snapshot=3", kinds)
	if loc.Query("snapshot") != "3" {
		t.Errorf("query option lost: %v", loc.URL)
	}
}

func TestRedact(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	inputs := []string{
		"mlflow+https://alice:" + secret + "@mlflow.example.com/x",
		"postgres://bob:" + secret + "@db:5432/runs?sslmode=disable",
		"mlflow+http://h/?token=" + secret + "&x=1",
		"wandb+https://api.wandb.ai/acme?api_key=" + secret,
		"sqlite:/tmp/x.db?_auth_pass=" + secret,
		"mlflow+http://h/?Access%5FToken=" + secret,
		"parquet://u:" + secret + "@backups/x",
		"odd //user:" + secret + "@host stays? password=" + secret,
	}
	for _, in := range inputs {
		got := Redact(in)
		if strings.Contains(got, secret) {
			t.Errorf("Redact(%q) = %q still shows the secret", in, got)
		}
		if _, err := Parse(in, kinds); err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("Parse(%q) error shows the secret: %v", in, err)
		}
	}
	if got := Redact("postgres://bob@db/runs?sslmode=disable"); got != "postgres://bob@db/runs?sslmode=disable" {
		t.Errorf("Redact changed a secret-free location: %q", got)
	}
	_, err := Parse("mlflow+http://u:"+secret+"@h:bad port/", kinds)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("parse error leaks the secret or is missing: %v", err)
	}
	if got := RedactValues("denied for token "+secret, secret); strings.Contains(got, secret) {
		t.Errorf("RedactValues = %q", got)
	}
}

func TestRegistryRefusesUnknownOptions(t *testing.T) {
	var r Registry[string]
	r.Add(Factory[string]{
		Description: Description{Scheme: "parquet", Kind: PathKind, Syntax: "parquet:PATH", Options: []Option{{Name: "snapshot", Help: "x"}}},
		Open:        func(context.Context, Location) (string, error) { return "opened", nil },
	})
	if v, _, err := r.Open(context.Background(), "parquet:/x?snapshot=2"); err != nil || v != "opened" {
		t.Fatalf("known option: %q %v", v, err)
	}
	_, _, err := r.Open(context.Background(), "parquet:/x?snapshto=2&tokn=s3cr3t-VALUE")
	if err == nil || !strings.Contains(err.Error(), `unknown option "snapshto"`) || !strings.Contains(err.Error(), "snapshot") ||
		strings.Contains(err.Error(), "s3cr3t-VALUE") {
		t.Fatalf("misspelt option: %v", err)
	}
}

// TestSecretsInLocationRefused: a secret option in the query or a password
// in the user info is refused with the environment variable to use
// instead, and the error never shows the secret; SecretEnvVars lists the
// declared secret variables.
func TestSecretsInLocationRefused(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	d := Description{Scheme: "mlflow+http", Kind: URLKind, Syntax: "mlflow+http://HOST", Options: []Option{
		{Name: "token", EnvVar: "X_TOKEN", Secret: true, Help: "t"},
		{Name: "username", EnvVar: "X_USER", Help: "u"},
		{Name: "password", EnvVar: "X_PASSWORD", Secret: true, Help: "p"},
	}}
	var r Registry[string]
	r.Add(Factory[string]{Description: d, Open: func(context.Context, Location) (string, error) { return "ok", nil }})
	for raw, want := range map[string]string{
		"mlflow+http://h:1/?token=" + secret:                 `option "token" is a secret and is refused in the location (it would stay in shell history and process lists): set X_TOKEN in the environment instead`,
		"mlflow+http://h:1/?username=bob&password=" + secret: `option "password" is a secret and is refused in the location (it would stay in shell history and process lists): set X_PASSWORD in the environment instead`,
		"mlflow+http://h:1/?token=":                          `set X_TOKEN in the environment instead`,
		"mlflow+http://bob:" + secret + "@h:1/":              `a password in the location is refused: secrets are read only from the environment: set X_PASSWORD`,
		"mlflow+http://h:1/?api_key=" + secret:               `unknown option "api_key" (secrets are read only from the environment: X_PASSWORD, X_TOKEN;`,
	} {
		_, _, err := r.Open(context.Background(), raw)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: err %v; want one containing %q and not the secret", Redact(raw), err, want)
		}
	}
	if v, _, err := r.Open(context.Background(), "mlflow+http://bob@h:1/?username=bob"); err != nil || v != "ok" {
		t.Errorf("a user without password is no secret: %v", err)
	}
	other := Description{Options: []Option{{Name: "key", EnvVar: "Y_KEY", Secret: true}, {Name: "x", EnvVar: "Y_X"}, {Name: "token", EnvVar: "X_TOKEN", Secret: true}}}
	if got := strings.Join(SecretEnvVars([]Description{d, other}), ","); got != "X_PASSWORD,X_TOKEN,Y_KEY" {
		t.Errorf("SecretEnvVars = %s", got)
	}
}
