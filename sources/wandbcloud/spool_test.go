package wandbcloud

import (
	"fmt"
	"os"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestSpool: rich values kept aside come back whole and in order, past
// the in-memory part (in a temporary file, removed once read) and across
// pages.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	sp := &spool{}
	var want []schema.RichValue
	for i := range PageSize + spoolInMemory + 7 {
		v := schema.RichValue{Key: fmt.Sprintf("k%d", i%3), Step: int64(i), Time: int64(i) * 10, Type: "string", JSON: fmt.Sprintf("%q", fmt.Sprint(i))}
		want = append(want, v)
		if err := sp.add(dir, v); err != nil {
			t.Fatal(err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("%d spool files", len(ents))
	}
	var got []schema.RichValue
	pages := 0
	for page, err := range sp.values() {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 2 {
		t.Fatalf("got %d values in %d pages, want %d in 2", len(got), pages, len(want))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("%d spool files left", len(ents))
	}
}
