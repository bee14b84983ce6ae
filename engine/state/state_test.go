package state

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLedgerRoundTripAndScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out", Options: "include=a"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Get("wandb:x"); ok || err != nil {
		t.Fatalf("empty ledger: ok=%v err=%v", ok, err)
	}
	l.Scrub = func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Put(Entry{Origin: "wandb:r" + string(rune('a'+i)), Status: "committed", Attempts: 1, Fingerprint: "fp"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := l.Put(Entry{Origin: "wandb:bad", Status: "failed", Attempts: 3, LastError: "token hunter2 rejected"}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l, err = Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := l.Entries()
	if err != nil || len(entries) != 21 {
		t.Fatalf("reopened: %d entries, err %v", len(entries), err)
	}
	e, ok, _ := l.Get("wandb:bad")
	if !ok || e.Status != "failed" || e.Attempts != 3 || e.LastError != "token *** rejected" {
		t.Fatalf("entry = %+v", e)
	}
	l.Close()

	other, err := Open(path, Job{Source: "wandb:/data", Sink: "parquet:/out", Options: "include=b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := other.Entries(); len(es) != 0 {
		t.Fatalf("a job with other options sees %d entries of another job", len(es))
	}
	other.Close()

	l, _ = Open(path, job, true)
	if es, _ := l.Entries(); len(es) != 0 {
		t.Fatalf("restart kept %d entries", len(es))
	}
	l.Close()
}
