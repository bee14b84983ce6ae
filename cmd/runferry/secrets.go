package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/location"
)

// secretValues collects the secrets runferry could see, so that no output
// shows them: the values of the environment variables that the adapters'
// options declare secret (descs; no hand-kept list), what an echoed
// basic-auth header would show for them, and passwords or secret-looking
// query values inside the arguments (which the registries refuse, but an
// error could still quote).
func secretValues(descs []location.Description, environ, args []string) []string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var out []string
	for _, name := range location.SecretEnvVars(descs) {
		if v := env[name]; len(v) >= 4 {
			out = append(out, v)
		}
	}
	// Users that may be paired with a secret password in basic auth: the
	// adapters' user variable, and users named in the arguments.
	var users []string
	for _, arg := range args {
		if u, err := url.Parse(arg); err == nil {
			if u.User != nil {
				users = append(users, u.User.Username())
			}
			users = append(users, u.Query()["username"]...)
		}
	}
	for _, d := range descs {
		pw, ok := d.Option("password")
		if !ok || !pw.Secret || env[pw.EnvVar] == "" {
			continue
		}
		cands := append([]string{""}, users...)
		if u, ok := d.Option("username"); ok && u.EnvVar != "" {
			cands = append(cands, env[u.EnvVar])
		}
		for _, user := range cands {
			out = append(out, base64.StdEncoding.EncodeToString([]byte(user+":"+env[pw.EnvVar])))
		}
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
	slices.Sort(out)
	return slices.Compact(out)
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

// secretValues is the package function for this app's adapters and the
// process environment.
func (a *app) secretValues(args []string) []string {
	return secretValues(append(a.sources.All(), a.sinks.All()...), os.Environ(), args)
}
