package fault

import (
	"context"
	"testing"
)

func TestOverloadSignal(t *testing.T) {
	ctx, overloaded := WithOverloadSignal(context.Background())
	SignalOverload(context.Background()) // no signal: nothing happens
	if overloaded() {
		t.Fatal("overloaded before any signal")
	}
	child, cancel := context.WithCancel(ctx)
	defer cancel()
	SignalOverload(child)
	if !overloaded() {
		t.Fatal("a signal on a derived context was lost")
	}
}
