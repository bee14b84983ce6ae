package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/url"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/location"
)

// secretEnv lists the environment variables whose values runferry never
// prints.
var secretEnv = []string{
	"WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD",
	"PGPASSWORD", "DATABASE_PASSWORD", "RUNFERRY_PASSWORD",
}

// secretValues collects the secrets runferry could see: secret environment
// variables and passwords or secret query values inside the arguments.
func secretValues(environ, args []string) []string {
	var out []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		for _, name := range secretEnv {
			if k == name && len(v) >= 4 {
				out = append(out, v)
			}
		}
	}
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if pw := env["MLFLOW_TRACKING_PASSWORD"]; pw != "" {
		// What an echoed basic-auth header would show.
		out = append(out, base64.StdEncoding.EncodeToString([]byte(env["MLFLOW_TRACKING_USERNAME"]+":"+pw)))
	}
	for _, arg := range args {
		red := location.Redact(arg)
		if red == arg {
			continue
		}
		if u, err := url.Parse(arg); err == nil {
			if p, ok := u.User.Password(); ok && len(p) >= 4 {
				out = append(out, p, url.QueryEscape(p))
			}
			for k, vs := range u.Query() {
				if location.Redact("x:?"+k+"=v") != "x:?"+k+"=v" {
					for _, v := range vs {
						if len(v) >= 4 {
							out = append(out, v, url.QueryEscape(v))
						}
					}
				}
			}
		}
	}
	return out
}

// scrubWriter replaces every secret with *** in what passes through it.
// Each Write is scrubbed on its own, so callers write whole lines (slog,
// fmt.Fprintf of a full line), never a secret split across two writes.
type scrubWriter struct {
	mu      sync.Mutex
	w       io.Writer
	secrets []string
}

func (s *scrubWriter) Write(p []byte) (int, error) {
	if len(s.secrets) == 0 {
		return s.w.Write(p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := p
	for _, sec := range s.secrets {
		if bytes.Contains(q, []byte(sec)) {
			q = bytes.ReplaceAll(q, []byte(sec), []byte(location.Redacted))
		}
	}
	if _, err := s.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// scrub applies the same replacement to a string.
func scrub(s string, secrets []string) string { return location.RedactValues(s, secrets...) }
