package main

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"

	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// TestRawLinesThroughPostgres: an archive whose run's console output
// holds NUL bytes and bytes that are not UTF-8 (as W&B's output.log of a
// program printing binary progress bars does), and so do a param and a
// tag value, is copied into PostgreSQL,
// from there into a second archive, and into MariaDB, through the CLI:
// every copy exits 0, check is clean at every hop, and the second
// archive's lines, params and tags equal the first's byte for byte (read
// by the archive source). Before schema version 3 the run failed (exit 3) and never
// arrived in PostgreSQL.
func TestRawLinesThroughPostgres(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first"), filepath.Join(dir, "second")
	exp := schema.Ref{System: "memory", ID: "e"}
	run := schema.Ref{System: "memory", ID: "raw"}
	var lines []schema.LogLine
	for i, l := range []string{"epoch 1", "\r 10%|\x00\x00\x1b[2K\xe2\x96\x88", "bad \xff latin1", "caf\xc3", "\x00", "", "한국어 done"} {
		lines = append(lines, schema.LogLine{Time: int64(1000 + i), Stream: []string{schema.Stdout, schema.Stderr}[i%2], Line: l})
	}
	d := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "e"}}, Runs: []*dataset.RunData{{
		Run: schema.Run{Origin: run, Experiment: exp, Name: "raw", Status: schema.StatusFinished,
			Start: time.Unix(1, 0).UTC(), End: time.Unix(2, 0).UTC(),
			Params: []schema.Param{{Key: "plain", Value: "1"}, {Key: "raw", Value: "a\x00b\xffc"}},
			Tags:   []schema.Tag{{Key: "raw", Value: "\xfe\x00"}}},
		Metrics: []schema.Metric{{Key: "loss", Step: 0, Value: 1, Time: 1000}},
		Logs:    lines,
	}}}
	sink, err := sinkparquet.New(first)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, memsrc.New(d), sink, transfer.Options{}); err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("making the archive: %v %+v", err, rep.Totals)
	}
	sink.Close()

	pg := testenv.SharedPostgres(t).CreateDatabase(t, "cli_rawlines")
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	maria := m.CreateDatabase(t, "cli_rawlines")
	for _, hop := range [][2]string{{"parquet:" + first, pg}, {pg, "parquet:" + second}, {"parquet:" + second, maria}} {
		code, out, errOut := runCLI(t, "copy", hop[0], hop[1], "--state", filepath.Join(dir, "ledger.db"))
		if code != 0 || !strings.Contains(out, "copied 1 run") {
			t.Fatalf("copy %s -> %s: exit %d\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
		code, out, errOut = runCLI(t, "check", hop[0], hop[1])
		if code != 0 || !strings.Contains(out, "1 match, 0 differences") {
			t.Fatalf("check %s %s: exit %d\n%s\n%s", hop[0], hop[1], code, out, errOut)
		}
	}
	read := func(path string) []schema.LogLine {
		src, err := srcparquet.New(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var got []schema.LogLine
		for page, err := range sources.Source(src).(sources.LogReader).Logs(ctx, run) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
		}
		return got
	}
	if got := read(first); !slices.Equal(got, lines) {
		t.Fatalf("the first archive holds %#v, want %#v", got, lines)
	}
	if got := read(second); !slices.Equal(got, lines) {
		t.Errorf("after PostgreSQL the archive holds\n%#v\nwant\n%#v", got, lines)
	}
	src, err := srcparquet.New(second, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want := d.Runs[0].Run
	n := 0
	for got, err := range src.Runs(ctx, exp) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !slices.Equal(got.Params, want.Params) || !slices.Equal(got.Tags, want.Tags) {
			t.Errorf("after PostgreSQL the archive holds params %#v, tags %#v; want %#v, %#v", got.Params, got.Tags, want.Params, want.Tags)
		}
	}
	if n != 1 {
		t.Errorf("%d runs in the second archive", n)
	}
}
