package fault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestKindOf(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want Kind
	}{
		{"plain", base, KindRetryable},
		{"fatal", Fatal(base), KindFatal},
		{"permanent", Permanent(base), KindPermanent},
		{"retryable", Retryable(base, time.Second), KindRetryable},
		{"wrapped fatal", fmt.Errorf("ctx: %w", Fatal(base)), KindFatal},
		{"outermost wins", Permanent(Retryable(base, 0)), KindPermanent},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), KindCanceled},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf = %v, want %v", tt.name, got, tt.want)
		}
	}
	if Fatal(nil) != nil || Permanent(nil) != nil || Retryable(nil, 0) != nil {
		t.Error("wrapping nil must give nil")
	}
	if got := RetryAfter(fmt.Errorf("w: %w", Retryable(base, 3*time.Second))); got != 3*time.Second {
		t.Errorf("RetryAfter = %v", got)
	}
	if !errors.Is(Fatal(base), base) || Fatal(base).Error() != "boom" {
		t.Error("classification must keep the error's identity and text")
	}
}

func TestFullDiskIsFatalWhateverItsClass(t *testing.T) {
	full := &os.PathError{Op: "write", Path: "/archive/x.parquet", Err: syscall.ENOSPC}
	for _, err := range []error{full, Retryable(full, 0), Permanent(fmt.Errorf("writing run: %w", full))} {
		if k := KindOf(err); k != KindFatal {
			t.Errorf("KindOf(%v) = %v, want fatal", err, k)
		}
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/health")
	if err == nil || !Unreachable(Retryable(fmt.Errorf("mlflow: %w", err), 0)) {
		t.Fatalf("a refused connection is not unreachable: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if Unreachable(fmt.Errorf("status %d", resp.StatusCode)) || Unreachable(nil) {
		t.Error("an answering server is unreachable")
	}
}
