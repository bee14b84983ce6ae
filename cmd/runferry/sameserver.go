package main

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// sameMLflowServer reports whether copy's SRC and DST, as typed, name one
// MLflow tracking server (mlflow+http:// or mlflow+https://, the same host,
// port and path; localhost, 127.0.0.1 and ::1 taken as one host) with no
// experiment prefix for DST (the location's ?experiment-prefix= or
// --experiment-prefix, given as prefix). Such a copy reads every run of
// the server and writes it again beside itself: a native MLflow run
// carries no runferry origin there, so each becomes two. It returns the
// server, redacted, for the message. Other stores copied into themselves
// write no run twice (their runs keep their first origins) and are not
// looked at; a server named by two host names or reached through its own
// store (mlflow+sqlite:) is not recognised.
func sameMLflowServer(src, dst, prefix string) (string, bool) {
	s, ok := mlflowServerKey(src)
	if !ok {
		return "", false
	}
	d, ok := mlflowServerKey(dst)
	if !ok || s != d || prefix != "" {
		return "", false
	}
	u, _ := url.Parse(dst)
	if u.Query().Get("experiment-prefix") != "" {
		return "", false
	}
	return u.Host, true
}

// mlflowServerKey gives an mlflow+http(s) location as host:port/path, the
// loopback names as one; false for any other location.
func mlflowServerKey(raw string) (string, bool) {
	if !strings.HasPrefix(raw, "mlflow+http://") && !strings.HasPrefix(raw, "mlflow+https://") {
		return "", false
	}
	u, err := url.Parse(strings.TrimPrefix(raw, "mlflow+"))
	if err != nil || u.Host == "" {
		return "", false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		host = "loopback"
	}
	return fmt.Sprintf("%s:%s/%s", host, port, strings.Trim(u.Path, "/")), true
}
