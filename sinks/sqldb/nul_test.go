package sqldb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// rawLines are console lines a text column may refuse: a NUL byte (W&B's
// output.log of a program printing binary), bytes that are not UTF-8
// (Latin-1, a cut multi-byte character, a lone continuation byte), both,
// and plain lines around them.
var rawLines = []string{"fine", "bad \x00 nul", "bad \xff latin1", "caf\xc3", "\x80", "\x00", "both \x00 and \xfe\xff", "", "한국어 fine", "last"}

// logsOf reads every console line of run from src.
func logsOf(t *testing.T, src sources.Source, run schema.Ref) []schema.LogLine {
	t.Helper()
	var got []schema.LogLine
	for page, err := range src.(sources.LogReader).Logs(context.Background(), run) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
	}
	return got
}

// TestRawConsoleLinesStored: console lines holding NUL bytes or bytes
// that are not UTF-8 are committed to every database and read back byte
// for byte, in order, with their times and streams.
func TestRawConsoleLinesStored(t *testing.T) {
	for name, fresh := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "runs.db") },
		"postgres": freshPostgres,
		"mariadb":  freshMariaDB,
	} {
		t.Run(name, func(t *testing.T) {
			loc := fresh(t)
			d := oneRun("raw", 3)
			var want []schema.LogLine
			for i, l := range rawLines {
				want = append(want, schema.LogLine{Time: int64(i + 1), Stream: []string{schema.Stdout, schema.Stderr}[i%2], Line: l})
			}
			d.Runs[0].Logs = want
			dst := openSink(t, loc)
			rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{Attempts: 1})
			dst.Close()
			if err != nil {
				t.Fatal(err)
			}
			if rep.Totals.Committed != 1 || rep.Totals.Failed != 0 {
				t.Fatalf("totals %+v (%+v), want 1 committed", rep.Totals, rep.Runs)
			}
			src := openSource(t, loc)
			defer src.Close()
			if got := logsOf(t, src, d.Runs[0].Run.Origin); !slices.Equal(got, want) {
				t.Errorf("lines read back\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestRawValuesStored: param and tag values holding NUL bytes or bytes
// that are not UTF-8 are committed to every database and read back byte
// for byte, beside plain ones.
func TestRawValuesStored(t *testing.T) {
	for name, fresh := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "runs.db") },
		"postgres": freshPostgres,
		"mariadb":  freshMariaDB,
	} {
		t.Run(name, func(t *testing.T) {
			loc := fresh(t)
			d := oneRun("raw", 3)
			r := &d.Runs[0].Run
			for i, v := range rawLines {
				r.Params = append(r.Params, schema.Param{Key: fmt.Sprintf("p%d", i), Value: v})
				r.Tags = append(r.Tags, schema.Tag{Key: fmt.Sprintf("t%d", i), Value: v})
			}
			dst := openSink(t, loc)
			rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{Attempts: 1})
			dst.Close()
			if err != nil {
				t.Fatal(err)
			}
			if rep.Totals.Committed != 1 || rep.Totals.Failed != 0 {
				t.Fatalf("totals %+v (%+v), want 1 committed", rep.Totals, rep.Runs)
			}
			src := openSource(t, loc)
			defer src.Close()
			n := 0
			for got, err := range src.Runs(context.Background(), r.Experiment) {
				if err != nil {
					t.Fatal(err)
				}
				n++
				if !slices.Equal(got.Params, r.Params) || !slices.Equal(got.Tags, r.Tags) {
					t.Errorf("read back\nparams %#v\ntags %#v\nwant\nparams %#v\ntags %#v", got.Params, got.Tags, r.Params, r.Tags)
				}
			}
			if n != 1 {
				t.Errorf("%d runs read back", n)
			}
		})
	}
}
