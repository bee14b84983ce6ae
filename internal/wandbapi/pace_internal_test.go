package wandbapi

import (
	"net/http"
	"testing"
	"time"
)

// TestPauseCountedFromSend: a RateLimit-Remaining 0 answer pauses the
// client until its RateLimit-Reset counted from when the request was sent
// (the server's state when it took the request), not from the answer's
// arrival a latency later; a 429's Retry-After counts from the answer.
func TestPauseCountedFromSend(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	latency := 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		want   time.Time
	}{
		{"remaining 0", 200, map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "1"}, t0.Add(time.Second)},
		{"remaining 0, reset 3", 200, map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}, t0.Add(3 * time.Second)},
		{"429 Retry-After", 429, map[string]string{"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"}, t0.Add(latency + time.Second)},
		{"remaining left", 200, map[string]string{"RateLimit-Remaining": "100", "RateLimit-Reset": "1"}, time.Time{}},
	} {
		now := t0.Add(latency) // the answer arrives
		p := &pacer{now: func() time.Time { return now }}
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		for k, v := range tc.header {
			resp.Header.Set(k, v)
		}
		p.observe(resp, t0)
		if !p.until.Equal(tc.want) {
			t.Errorf("%s: paused until %v after the request, want %v", tc.name, p.until.Sub(t0), tc.want.Sub(t0))
		}
	}
}
