package mlflowapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
)

// closedPort returns an address where nothing listens: connections are refused.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// defaultClient is a client with the product's retry settings.
func defaultClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUnreachableServerFailsFast: a server that refuses connections and has never answered
// fails Ping within the first-contact budget (not the full retry budget of about 30 s), with
// one line naming the address, the reason and the retries that took the time.
func TestUnreachableServerFailsFast(t *testing.T) {
	addr := closedPort(t)
	c := defaultClient(t, "http://"+addr)
	start := time.Now()
	err := c.Ping(context.Background())
	took := time.Since(start)
	if err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
	msg := err.Error()
	want := "mlflow: cannot connect to http://" + addr + ": connection refused ("
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, " attempts in ") ||
		!strings.HasSuffix(msg, "; a server that never answered is retried for 3s); is the server running and the address right?") ||
		strings.Contains(msg, "\n") {
		t.Fatalf("error %q, want one line starting %q naming the attempts and the budget", msg, want)
	}
	if took < DefaultFirstContactBudget || took > DefaultFirstContactBudget+5*time.Second {
		t.Fatalf("Ping took %s, want the first-contact budget (%s) and a little", took, DefaultFirstContactBudget)
	}
	if k := fault.KindOf(err); k != fault.KindRetryable || !fault.Unreachable(err) {
		t.Fatalf("kind %v, unreachable %v", k, fault.Unreachable(err))
	}
}

// TestFirstContactBudgetOnlyBeforeAnAnswer: once the server has answered, a refused
// connection (a restart) is retried with the full retry budget again.
func TestFirstContactBudgetOnlyBeforeAnAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	slow := func(cfg *Config) { cfg.FirstContactBudget = time.Nanosecond; cfg.RetryMax = 4 }

	// Never answered: one attempt only, the budget being spent at once.
	never := testClient(t, "http://"+closedPort(t), slow)
	if err := never.Ping(context.Background()); err == nil || strings.Contains(err.Error(), "attempts") {
		t.Fatalf("never answered: %v, want one attempt", err)
	}

	c := testClient(t, srv.URL, slow)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the server goes away after answering
	err := c.Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), "connection refused (5 attempts in ") || strings.Contains(err.Error(), "never answered") {
		t.Fatalf("after an answer: %v, want 5 attempts (RetryMax 4)", err)
	}
}

// TestNotTheExpectedService: an address answering with something other than MLflow (a
// login page with 200, a proxy's 502 page) gives status, content type and a short excerpt
// on one line with the likely fix, not the page; and does not wait out the retry budget.
func TestNotTheExpectedService(t *testing.T) {
	page := "<!DOCTYPE html>\n<html>\n  <head><title>Sign in · Acme SSO</title></head>\n  <body>\n" +
		strings.Repeat("    <div class=\"filler\">corporate boilerplate</div>\n", 500) +
		"    <form><input name=\"password\" type=\"password\"></form>\n  </body>\n</html>\n"
	proxy := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n" +
		strings.Repeat("<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n", 6) + "</body>\r\n</html>\r\n"
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
		kind   fault.Kind
	}{
		{"login page", 200, page,
			`mlflow: POST /api/2.0/mlflow/experiments/search: 200 OK, text/html; charset=utf-8, not an MLflow answer: "<!DOCTYPE html> <html> <head><title>Sign in · Acme SSO</title></head> <body> <div class=\"filler\">corporate boilerplate</div> <div class=\"filler\">corporate boil…" ` +
				`(this looks like a login page: give the MLflow server's URL directly, or credentials the server accepts (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD))`,
			fault.KindFatal},
		{"proxy error", 502, proxy,
			`mlflow: POST /api/2.0/mlflow/experiments/search: 502 Bad Gateway, text/html, not an MLflow answer: "<html> <head><title>502 Bad Gateway</title></head> <body> <center><h1>502 Bad Gateway</h1></center> <hr><center>nginx/1.25.3</center> <!-- a padding to disable …" ` +
				`(a proxy or gateway answered, not MLflow: the MLflow server behind it is down or unreachable from the proxy)`,
			fault.KindRetryable},
		{"another service's 404", 404, "<html><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>",
			`mlflow: POST /api/2.0/mlflow/experiments/search: 404 Not Found, text/html, not an MLflow answer: "<html><body><h1>Not Found</h1><p>The requested URL was not found on this server.</p></body></html>" ` +
				`(no MLflow API at this address: give the tracking server's URL, with its path prefix if it is served under one)`,
			fault.KindPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.status != 200 {
					w.Header().Set("Content-Type", "text/html")
				} else {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := defaultClient(t, srv.URL)
			start := time.Now()
			err := c.Ping(context.Background())
			if err == nil {
				t.Fatal("Ping succeeded")
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n%s\nwant\n%s", err, tc.want)
			}
			if k := fault.KindOf(err); k != tc.kind {
				t.Fatalf("kind %v, want %v", k, tc.kind)
			}
			if took := time.Since(start); took > DefaultFirstContactBudget+5*time.Second {
				t.Fatalf("took %s", took)
			}
		})
	}
}
