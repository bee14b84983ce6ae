package main

import (
	"os"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	sinksall "github.com/runferry/runferry/sinks/all"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// TestBackendsListsEveryAdapter: `runferry backends` shows every scheme with
// its options, every adapter is fully described, and the README's
// locations table names every scheme.
func TestBackendsListsEveryAdapter(t *testing.T) {
	descs := append(sourcesall.Sources().All(), sinksall.Sinks().All()...)
	if len(descs) == 0 {
		t.Skip("no adapter is registered yet")
	}
	code, out, _ := runCLI(t, "backends")
	if code != 0 {
		t.Fatalf("backends: exit %d", code)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range descs {
		checkDescription(t, d)
		if !strings.Contains(out, d.Syntax) {
			t.Errorf("backends does not show %s", d.Syntax)
		}
		for _, o := range d.Options {
			if !strings.Contains(out, o.Name) || !strings.Contains(out, o.Help) {
				t.Errorf("backends does not show option %s of %s", o.Name, d.Scheme)
			}
		}
		if !strings.Contains(string(readme), "`"+d.Scheme+":") {
			t.Errorf("README's locations table lacks %s", d.Scheme)
		}
	}
}

func checkDescription(t *testing.T, d location.Description) {
	if d.Scheme == "" || d.Syntax == "" || d.Summary == "" || d.Help == "" || d.Example == "" {
		t.Errorf("adapter %q is not fully described: %+v", d.Scheme, d)
	}
	for _, o := range d.Options {
		if o.Name == "" || o.Help == "" {
			t.Errorf("adapter %s has an undescribed option %+v", d.Scheme, o)
		}
	}
}
