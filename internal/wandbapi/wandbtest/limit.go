package wandbtest

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// SetLimit makes the server rate-limit its GraphQL requests (export
// downloads are storage's, not limited) as a token bucket of perSecond tokens refilled at
// perSecond a second: a request without a token is answered 429 with
// Retry-After (whole seconds, rounded up) and nothing else done. Every
// answer carries W&B's headers: RateLimit-Limit and RateLimit-Remaining
// scaled 0–1000 (Remaining 0 once no whole token is left) and
// RateLimit-Reset, the whole seconds until the bucket is full again.
// perSecond 0 removes the limit. latency delays every answer, downloads
// included.
func (s *Server) SetLimit(perSecond float64, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rate, s.latency = perSecond, latency
	s.tokens, s.refilled = perSecond, time.Now()
}

// limit applies SetLimit to one request (api: a GraphQL request, which
// the bucket counts); true means it answered 429.
func (s *Server) limit(w http.ResponseWriter, api bool) bool {
	s.mu.Lock()
	rate, latency := s.rate, s.latency
	if !api {
		rate = 0
	}
	var limited bool
	var retry, reset time.Duration
	var remaining int
	if rate > 0 {
		now := time.Now()
		s.tokens = math.Min(rate, s.tokens+now.Sub(s.refilled).Seconds()*rate)
		s.refilled = now
		if s.tokens < 1 {
			limited = true
			retry = time.Duration((1 - s.tokens) / rate * float64(time.Second))
		} else {
			s.tokens--
		}
		remaining = int(math.Floor(s.tokens)) * 1000 / int(math.Max(rate, 1))
		reset = time.Duration((rate - s.tokens) / rate * float64(time.Second))
	}
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
	if rate <= 0 {
		return false
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(math.Ceil(d.Seconds()))) }
	w.Header().Set("RateLimit-Limit", "1000")
	w.Header().Set("RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("RateLimit-Reset", secs(reset))
	if !limited {
		return false
	}
	s.Limited.Add(1)
	w.Header().Set("Retry-After", secs(retry))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprint(w, `{"errors":[{"message":"rate limit exceeded"}]}`)
	return true
}
