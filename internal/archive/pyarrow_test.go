package archive_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// readerScript reads every table of the archive given as argv[1] with
// pyarrow, an independent Parquet implementation, and prints each table's
// schema and each row as JSON: timestamps as Unix milliseconds (after
// checking they are UTC timestamps), doubles as their IEEE bits in
// little-endian hex ("nan" for NaN). It then checks with DuckDB that a
// plain read_parquet over the documented glob and the views of
// current.sql see the same rows.
const readerScript = `
import datetime, glob, json, math, os, struct, sys
import pyarrow as pa, pyarrow.parquet as pq, duckdb
root = sys.argv[1]
epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
def norm(v):
    if isinstance(v, float):
        return "nan" if math.isnan(v) else struct.pack("<d", v).hex()
    if isinstance(v, datetime.datetime):
        assert v.utcoffset() == datetime.timedelta(0), v
        return (v - epoch) // datetime.timedelta(milliseconds=1)
    return v
out = []
os.chdir(root)
con = duckdb.connect()
con.execute("set enable_progress_bar = false")  # no progress bar on the output this test parses
con.execute(open("current.sql").read())
for table in ["experiments", "runs", "params", "tags", "metrics", "rich_values", "logs", "artifacts"]:
    files = sorted(glob.glob(table + "/*/*.parquet"))
    t = pa.concat_tables([pq.read_table(f) for f in files])
    out.append(json.dumps(["schema", table] + [f.name + ":" + str(f.type) for f in t.schema], separators=(",", ":")))
    for row in t.to_pylist():
        out.append(json.dumps([table] + [norm(row[c]) for c in t.column_names], ensure_ascii=False, separators=(",", ":")))
    n = con.execute("select count(*) from read_parquet('%s/*/*.parquet')" % table).fetchone()[0]
    v = con.execute("select count(*) from %s" % table).fetchone()[0]
    out.append(json.dumps(["duckdb", table, n, v], separators=(",", ":")))
print("\n".join(sorted(out)))
`

// TestIndependentReader writes the canonical dataset and has pyarrow and
// DuckDB read every table back; every row and column type must be what
// the format specifies.
func TestIndependentReader(t *testing.T) {
	testenv.Python(t) // before writing: skipped without the venv
	dir := filepath.Join(t.TempDir(), "archive")
	d := dataset.Canonical()
	write(t, dir, d)
	out := runPython(t, dir, readerScript)
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := expectedRows(d)
	if !slices.Equal(got, want) {
		for _, l := range got {
			if !slices.Contains(want, l) {
				t.Errorf("unexpected: %s", l)
			}
		}
		for _, l := range want {
			if !slices.Contains(got, l) {
				t.Errorf("missing:    %s", l)
			}
		}
		t.FailNow()
	}
}

// expectedRows renders d the way readerScript prints an archive of it.
func expectedRows(d *dataset.Dataset) []string {
	var out []string
	add := func(v ...any) {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		out = append(out, strings.TrimSuffix(b.String(), "\n"))
	}
	f64 := func(v float64) any {
		if math.IsNaN(v) {
			return "nan"
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		return hex.EncodeToString(b[:])
	}
	ms := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	tm := func(v time.Time) any {
		if v.IsZero() {
			return nil
		}
		return v.UnixMilli()
	}
	str := func(s []string) string {
		if s == nil {
			s = []string{}
		}
		b, _ := json.Marshal(s)
		return string(b)
	}
	opt := func(raw []byte) any {
		if len(raw) == 0 {
			return nil
		}
		return string(raw)
	}
	count := map[string]int{}
	schema := func(table string, cols ...string) {
		add(append([]any{"schema", table}, toAny(cols)...)...)
	}
	schema("experiments", "experiment:string", "origin_system:string", "origin_id:string", "name:string", "description:string", "tags:string", "created_at:timestamp[ms, tz=UTC]", "deleted:bool", "snapshot:int64")
	schema("runs", "run:string", "origin_system:string", "origin_id:string", "experiment:string", "name:string", "user:string", "status:string", "start_time:timestamp[ms, tz=UTC]", "end_time:timestamp[ms, tz=UTC]", "labels:string", "notes:string", "parent:string", "group:string", "job_type:string", "host:string", "program:string", "git_commit:string", "git_remote:string", "config:string", "summary:string", "deleted:bool", "damage:string", "fingerprint:string", "snapshot:int64")
	schema("params", "run:string", "key:string", "value:string")
	schema("tags", "run:string", "key:string", "value:string")
	schema("metrics", "run:string", "key:string", "step:int64", "time:timestamp[ms, tz=UTC]", "value:double")
	schema("rich_values", "run:string", "key:string", "step:int64", "time:timestamp[ms, tz=UTC]", "type:string", "json:string", "files:string")
	schema("logs", "run:string", "seq:int64", "time:timestamp[ms, tz=UTC]", "stream:string", "line:string")
	schema("artifacts", "run:string", "path:string", "size:int64", "sha256:string", "problem:string")
	for _, e := range d.Experiments {
		tags := "["
		for i, t := range e.Tags {
			b, _ := json.Marshal(map[string]string{"key": t.Key, "value": t.Value})
			if i > 0 {
				tags += ","
			}
			tags += string(b)
		}
		add("experiments", e.Origin.String(), e.Origin.System, e.Origin.ID, e.Name, e.Description, tags+"]", tm(e.CreatedAt), e.Deleted, 1)
		count["experiments"]++
	}
	for _, rd := range d.Runs {
		r, run := rd.Run, rd.Run.Origin.String()
		fp := "" // the engine's metadata fingerprint, recomputed below
		if r.Status != "RUNNING" {
			b, _ := json.Marshal(r)
			sum := sha256.Sum256(b)
			fp = "meta:" + hex.EncodeToString(sum[:16])
		}
		add("runs", run, r.Origin.System, r.Origin.ID, r.Experiment.String(), r.Name, r.User, string(r.Status), tm(r.Start), tm(r.End),
			str(r.Labels), r.Notes, r.Parent.String(), r.Group, r.JobType, r.Host, r.Program, r.GitCommit, r.GitRemote,
			opt(r.Config), opt(r.Summary), r.Deleted, str(r.Damage), fp, 1)
		count["runs"]++
		for _, p := range r.Params {
			add("params", run, p.Key, p.Value)
			count["params"]++
		}
		for _, p := range r.Tags {
			add("tags", run, p.Key, p.Value)
			count["tags"]++
		}
		for _, m := range rd.Metrics {
			add("metrics", run, m.Key, m.Step, ms(m.Time), f64(m.Value))
			count["metrics"]++
		}
		for _, v := range rd.RichValues {
			add("rich_values", run, v.Key, v.Step, ms(v.Time), v.Type, v.JSON, str(v.Files))
			count["rich_values"]++
		}
		for i, l := range rd.Logs {
			add("logs", run, i, ms(l.Time), l.Stream, l.Line)
			count["logs"]++
		}
		for _, f := range rd.Files {
			sum := sha256.Sum256(f.Content)
			add("artifacts", run, f.Path, len(f.Content), hex.EncodeToString(sum[:]), f.Problem)
			count["artifacts"]++
		}
	}
	for table, n := range count {
		add("duckdb", table, n, n)
	}
	slices.Sort(out)
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
