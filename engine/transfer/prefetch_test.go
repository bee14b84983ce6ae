package transfer

import (
	"context"
	"errors"
	"iter"
	"runtime"
	"testing"
	"time"
)

func counting(n int, failAt int) func(context.Context) iter.Seq2[int, error] {
	return func(ctx context.Context) iter.Seq2[int, error] {
		return func(yield func(int, error) bool) {
			for i := range n {
				if ctx.Err() != nil {
					yield(0, ctx.Err())
					return
				}
				if i == failAt {
					yield(0, errors.New("boom"))
					return
				}
				if !yield(i, nil) {
					return
				}
			}
		}
	}
}

func TestPrefetch(t *testing.T) {
	before := runtime.NumGoroutine()
	var got []int
	for v, err := range prefetch(context.Background(), 2, counting(100, -1)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 100 || got[99] != 99 {
		t.Fatalf("got %d values", len(got))
	}
	// An error is passed on once and ends the sequence.
	n := 0
	var last error
	for _, err := range prefetch(context.Background(), 2, counting(100, 10)) {
		n++
		last = err
	}
	if n != 11 || last == nil || last.Error() != "boom" {
		t.Fatalf("error case: %d elements, last error %v", n, last)
	}
	// A canceled context always ends in an error, never in a short
	// sequence that looks complete.
	for range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		n, last = 0, nil
		for _, err := range prefetch(ctx, 2, counting(1000, -1)) {
			if n++; n == 3 {
				cancel()
			}
			last = err
		}
		cancel()
		if !errors.Is(last, context.Canceled) {
			t.Fatalf("canceled after 3 elements: %d elements, last error %v", n, last)
		}
	}
	// Breaking early stops the producer.
	for v := range prefetch(context.Background(), 2, counting(1_000_000, -1)) {
		if v == 5 {
			break
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines left running (had %d)", g, before)
	}
}
