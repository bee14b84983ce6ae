package fault

import (
	"context"
	"errors"
	"fmt"
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
