package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUnreachableOrWrongServer runs the verbs against an MLflow location where nothing
// listens, where a login page answers and where a proxy answers 502: each exits 1 within a
// few seconds (the test allows 15) with one line on stderr naming the location, says nothing
// about runs copied, and never shows the whole page.
func TestUnreachableOrWrongServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"+
			strings.Repeat("<p>filler</p>", 40)+strings.Repeat("<p>THE-REST-OF-THE-PAGE</p>", 2000)+"</body></html>")
	}))
	t.Cleanup(login.Close)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"+
			strings.Repeat("<!-- padding -->", 40)+strings.Repeat("<!-- THE-REST-OF-THE-PAGE -->", 100)+"</body></html>")
	}))
	t.Cleanup(proxy.Close)
	refused := "mlflow: cannot connect to http://" + closed + ": connection refused ("
	loc := map[string]string{
		"closed": "mlflow+http://" + closed,
		"login":  "mlflow+" + login.URL,
		"proxy":  "mlflow+" + proxy.URL,
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the one line, in order
	}{
		{"copy to a closed port", []string{"copy", "--accept-gaps", fixtures, loc["closed"], "--no-state"},
			[]string{"runferry: destination " + loc["closed"] + ": ", refused, "is the server running and the address right?"}},
		{"copy from a closed port", []string{"copy", "--accept-gaps", loc["closed"], "parquet:" + t.TempDir(), "--no-state"},
			[]string{"runferry: source " + loc["closed"] + ": ", refused}},
		{"ls of a closed port", []string{"ls", loc["closed"]}, []string{"runferry: ", refused}},
		{"check against a closed port", []string{"check", fixtures, loc["closed"]}, []string{"runferry: destination " + loc["closed"] + ": ", refused}},
		{"copy to a login page", []string{"copy", "--accept-gaps", fixtures, loc["login"], "--no-state"},
			[]string{"runferry: destination " + loc["login"] + ": ", "200 OK, text/html; charset=utf-8, not an MLflow answer: \"<!DOCTYPE html>", "this looks like a login page"}},
		{"copy to a proxy's 502", []string{"copy", "--accept-gaps", fixtures, loc["proxy"], "--no-state"},
			[]string{"runferry: destination " + loc["proxy"] + ": ", "502 Bad Gateway, text/html, not an MLflow answer", "the MLflow server behind it is down"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			code, out, errOut := runCLI(t, tc.args...)
			took := time.Since(start)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if took > 15*time.Second {
				t.Errorf("took %s, want a few seconds", took)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing before the location answered", out)
			}
			line, rest, _ := strings.Cut(errOut, "\n")
			if rest != "" {
				t.Errorf("stderr has more than one line:\n%s", errOut)
			}
			i := 0
			for _, w := range tc.want {
				j := strings.Index(line[i:], w)
				if j < 0 {
					t.Fatalf("stderr line %q lacks %q (after byte %d)", line, w, i)
				}
				i += j + len(w)
			}
			if !strings.HasPrefix(line, tc.want[0]) || strings.Contains(line, "THE-REST-OF-THE-PAGE") || len(line) > 600 {
				t.Errorf("stderr line (%d bytes) %q", len(line), line)
			}
		})
	}
}
