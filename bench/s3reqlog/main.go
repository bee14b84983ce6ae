// Command s3reqlog is a logging reverse proxy for one S3-compatible server,
// for measuring how many requests a runferry command sends and when
// (docs/BENCHMARKS.md, session 15): every request passes through unchanged
// (path-style addressing keeps SigV4 signatures valid, as the Host header is
// kept), and one line per request is written to -log: the milliseconds since
// the Unix epoch at which it arrived and was answered, the S3 operation
// (method and query markers such as ?list-type or ?uploads), the status
// and the path. On SIGINT or SIGTERM it prints the count by operation.
//
//	s3reqlog -listen 127.0.0.1:9001 -to http://127.0.0.1:9000 -log /tmp/req.log
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Op names the S3 operation of r from its method and query.
func Op(r *http.Request) string {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && q.Has("list-type"):
		return "LIST"
	case r.Method == http.MethodPost && q.Has("delete"):
		return "DELETE-MANY"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "MULTIPART-START"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "MULTIPART-PART"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "MULTIPART-END"
	case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
		return "COPY"
	}
	return r.Method
}

func ms(t time.Time) float64 { return float64(t.UnixMicro()) / 1000 }

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	to := flag.String("to", "", "the S3 server's endpoint URL")
	logPath := flag.String("log", "", "file to write one line per request to")
	flag.Parse()
	target, err := url.Parse(*to)
	if err != nil || target.Host == "" {
		log.Fatalf("-to: want the server's URL, got %q", *to)
	}
	out, err := os.Create(*logPath)
	if err != nil {
		log.Fatal(err)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // signed (SigV4)
	}}
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, p := Op(r), r.URL.Path
		t0 := time.Now()
		rec := &recorder{ResponseWriter: w, status: 200}
		proxy.ServeHTTP(rec, r)
		t1 := time.Now()
		mu.Lock()
		counts[op]++
		fmt.Fprintf(out, "%.1f %.1f %s %d %s\n", ms(t0), ms(t1), op, rec.status, p)
		mu.Unlock()
	})}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		mu.Lock()
		ops := make([]string, 0, len(counts))
		total := 0
		for k, n := range counts {
			ops = append(ops, k)
			total += n
		}
		sort.Strings(ops)
		parts := make([]string, len(ops))
		for i, k := range ops {
			parts[i] = fmt.Sprintf("%s %d", k, counts[k])
		}
		fmt.Printf("%d requests: %s\n", total, strings.Join(parts, ", "))
		out.Close()
		os.Exit(0)
	}()
	log.Fatal(srv.ListenAndServe())
}
