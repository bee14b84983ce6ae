package sqldb_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sinksqldb "github.com/runferry/runferry/sinks/sqldb"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/sqldb"
)

// TestConnectionDroppedMidStream: when the server ends the connection
// while a run's metrics are being streamed, the reader gets an error it
// may retry, never a history silently cut short.
func TestConnectionDroppedMidStream(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t, "dropped")
	exp := schema.Ref{System: "memory", ID: "e"}
	run := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: "r"}, Experiment: exp,
		Status: schema.StatusFinished, Start: time.Unix(1, 0).UTC(), End: time.Unix(2, 0).UTC()}}
	run.Metrics = []schema.Metric{{Key: "key/00", Step: 0, Value: 0}}
	d := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "e"}}, Runs: []*dataset.RunData{run}}
	ctx := context.Background()
	dst, err := sinksqldb.Open(ctx, parse(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, memsrc.New(d), dst, transfer.Options{}); err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	dst.Close()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	// Many more points for the run, made by the server (quicker than a copy).
	const n = 100_000
	if _, err := admin.Exec(`INSERT INTO metrics (run_id, name, step, seq, time_ms, value)
		SELECT r.id, 'key/' || lpad((i % 20)::text, 2, '0'), i / 20, i, i, i FROM runs r, generate_series(1, $1 - 1) i`, n); err != nil {
		t.Fatal(err)
	}

	src, err := sqldb.Open(ctx, parse(t, dsn+"&application_name=dropped-reader"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	read, pages := 0, 0
	var streamErr error
	for page, err := range src.Metrics(ctx, run.Run.Origin) {
		if err != nil {
			streamErr = err
			break
		}
		read += len(page)
		if pages++; pages == 1 {
			var killed int
			if err := admin.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'dropped-reader'").Scan(&killed); err != nil || killed == 0 {
				t.Fatalf("terminating the reader's connection: %v (%d terminated)", err, killed)
			}
		}
	}
	if streamErr == nil {
		t.Fatalf("the stream ended without an error after %d of %d points", read, n)
	}
	if read >= n {
		t.Fatalf("all %d points were read before the connection was dropped: the test proves nothing", read)
	}
	if k := fault.KindOf(streamErr); k != fault.KindRetryable {
		t.Errorf("error %v is %v, want retryable", streamErr, k)
	}
	t.Logf("after %d of %d points: %v", read, n, streamErr)
}

// TestMappedConnectionDroppedMidStream: the same through a mapping: the
// server ends the connection while the example's metrics query streams,
// and the reader gets an error it may retry, never a history cut short.
func TestMappedConnectionDroppedMidStream(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t, "mapped_dropped")
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	loadExample(t, admin)
	const n = 100_000
	fillMetrics(t, t.Context(), admin, n)
	src, err := sqldb.Open(t.Context(), parse(t, withMapping(dsn+"&application_name=mapped-dropped-reader", example(t, "mapping.yaml"))))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	base, _, _ := cutQuery(dsn)
	read, pages := 0, 0
	var streamErr error
	for page, err := range src.Metrics(t.Context(), schema.Ref{System: "mytracker", ID: base + "/run/1"}) {
		if err != nil {
			streamErr = err
			break
		}
		read += len(page)
		if pages++; pages == 1 {
			var killed int
			if err := admin.QueryRow("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'mapped-dropped-reader'").Scan(&killed); err != nil || killed == 0 {
				t.Fatalf("terminating the reader's connection: %v (%d terminated)", err, killed)
			}
		}
	}
	if streamErr == nil || read >= n {
		t.Fatalf("the stream ended with %v after %d of %d points", streamErr, read, n)
	}
	if k := fault.KindOf(streamErr); k != fault.KindRetryable {
		t.Errorf("error %v is %v, want retryable", streamErr, k)
	}
	t.Logf("after %d of %d points: %v", read, n, streamErr)
}
