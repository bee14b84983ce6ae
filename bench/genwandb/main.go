// Command genwandb writes a synthetic, realistic W&B run folder for
// benchmarks: DIR/wandb/run-YYYYMMDD_HHMMSS-ID/run-ID.wandb plus a files/
// folder, shaped the way wandb-core (SDK 0.17.5+) writes them.
//
// The .wandb file holds a header, telemetry and run record (with config),
// then -rows history rows of -keys metrics each (one nested_key item per
// leaf, plus _timestamp, _runtime and _step, and HistoryRecord.step), a
// stats record (system metrics, flat keys) every -stats-every rows, a line
// of console output every 1000 rows, a summary record and an exit record.
// Every value is a number, so every history metric and every stats item is
// one metric point.
//
// Output is deterministic for given flags. On success genwandb prints one
// JSON object describing what it wrote, including the point count and the
// sum of all point values that a reader must reproduce:
//
//	{"run_dir":..., "wandb_file":..., "bytes":N, "rows":N, "points":N, "sum":X, ...}
//
// Usage:
//
//	go run ./bench/genwandb -out /tmp/runferry-bench/w1m -rows 1000000 -keys 20
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
)

// options are the command-line flags.
type options struct {
	out        string
	id         string
	rows       int
	keys       int
	statsEvery int
	seed       uint64
	entity     string
	project    string
	runs       int // with more than 1, runs run folders with ids ID-00000, ID-00001, ...
}

// result is what genwandb prints.
type result struct {
	RunDir        string  `json:"run_dir"`
	WandbFile     string  `json:"wandb_file"`
	Bytes         int64   `json:"bytes"`
	Rows          int     `json:"rows"`
	Keys          int     `json:"keys"`
	StatsRecords  int     `json:"stats_records"`
	HistoryPoints int64   `json:"history_points"`
	StatsPoints   int64   `json:"stats_points"`
	Points        int64   `json:"points"`
	Sum           float64 `json:"sum"`
}

func main() {
	var o options
	flag.StringVar(&o.out, "out", "", "folder to write into (the run folder goes under OUT/wandb/); required")
	flag.StringVar(&o.id, "id", "bench0001", "run id")
	flag.IntVar(&o.rows, "rows", 1_000_000, "history rows")
	flag.IntVar(&o.keys, "keys", 20, "metric keys per history row")
	flag.IntVar(&o.statsEvery, "stats-every", 100, "write a stats record every N rows (0: none)")
	flag.Uint64Var(&o.seed, "seed", 1, "random seed for the values")
	flag.StringVar(&o.entity, "entity", "", "the run's entity (none by default, as offline runs often have none; with one the run's origin is entity/project/id, else the folder's path)")
	flag.StringVar(&o.project, "project", "runferry-bench", "the runs' project")
	flag.IntVar(&o.runs, "runs", 1, "number of run folders (ids ID-00000...; each with the same flags and its own seed); the JSON sums them")
	flag.Parse()
	if o.out == "" || o.rows < 0 || o.keys < 1 || o.statsEvery < 0 || o.runs < 1 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	res, err := generateMany(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genwandb:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "genwandb:", err)
		os.Exit(1)
	}
}

// startTime is the run's fixed start, so output is deterministic.
var startTime = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// baseKeys are realistic metric names; more keys than these are named
// extra/metric_NNN.
var baseKeys = []string{
	"train/loss", "train/accuracy", "train/lr", "train/grad_norm", "train/tokens_per_sec",
	"train/epoch", "val/loss", "val/accuracy", "val/perplexity", "val/f1",
	"layer_00/weight_norm", "layer_01/weight_norm", "layer_02/weight_norm", "layer_03/weight_norm",
	"gpu_mem_allocated_gb", "throughput/samples_per_sec", "loss_scale", "momentum",
	"global_step", "tokens_seen",
}

// statsKeys are the system metrics of one stats record, as wandb-core
// names them.
var statsKeys = []string{
	"cpu", "memory_percent", "proc.memory.rssMB", "proc.memory.percent", "proc.memory.availableMB",
	"proc.cpu.threads", "disk./.usagePercent", "disk./.usageGB", "disk.in", "disk.out",
	"network.sent", "network.recv", "gpu.0.gpu", "gpu.0.memory", "gpu.0.temp",
	"gpu.0.powerWatts", "gpu.0.memoryAllocated",
}

// metricKeys returns the n metric names of a row.
func metricKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		if i < len(baseKeys) {
			keys[i] = baseKeys[i]
		} else {
			keys[i] = fmt.Sprintf("extra/metric_%03d", i)
		}
	}
	return keys
}

// generateMany writes o.runs run folders (one as generate does when
// o.runs is 1) and returns their totals (RunDir and WandbFile: the last).
func generateMany(o options) (*result, error) {
	if o.runs == 1 {
		return generate(o)
	}
	total := &result{}
	base, seed := o.id, o.seed
	for i := range o.runs {
		o.id, o.seed = fmt.Sprintf("%s-%05d", base, i), seed+uint64(i)
		r, err := generate(o)
		if err != nil {
			return nil, err
		}
		total.RunDir, total.WandbFile = r.RunDir, r.WandbFile
		total.Bytes += r.Bytes
		total.Rows += r.Rows
		total.Keys = r.Keys
		total.StatsRecords += r.StatsRecords
		total.HistoryPoints += r.HistoryPoints
		total.StatsPoints += r.StatsPoints
		total.Points += r.Points
		total.Sum += r.Sum
	}
	return total, nil
}

// generate writes the run folder and returns what it wrote.
func generate(o options) (*result, error) {
	runDir := filepath.Join(o.out, "wandb", "run-"+startTime.Format("20060102_150405")+"-"+o.id)
	if err := os.MkdirAll(filepath.Join(runDir, "files"), 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(runDir, "run-"+o.id+".wandb")
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp) // a no-op after the rename
	bw := bufio.NewWriterSize(f, 1<<20)
	g := &gen{o: o, w: wandbfile.NewWriter(bw), rng: rand.New(rand.NewPCG(o.seed, 0x6e6e))}
	g.res.Rows, g.res.Keys = o.rows, o.keys
	err = g.writeRun()
	if err == nil {
		err = g.w.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return nil, err
	}
	if err := writeFiles(filepath.Join(runDir, "files"), o, g.last); err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	res := g.res
	res.RunDir, res.WandbFile, res.Bytes = runDir, path, st.Size()
	res.Points = res.HistoryPoints + res.StatsPoints
	return &res, nil
}

// gen holds the state of one generation.
type gen struct {
	o    options
	w    *wandbfile.Writer
	rng  *rand.Rand
	num  int64
	buf  []byte
	res  result
	last map[string]string // last value_json of each metric, for the summary
}

// write appends one record.
func (g *gen) write(rec *wandbfile.Record) error {
	g.num++
	rec.Num = g.num
	var err error
	g.buf, err = wandbfile.AppendRecord(g.buf[:0], rec)
	if err != nil {
		return err
	}
	_, err = g.w.WriteRecord(g.buf)
	return err
}

// writeRun writes every record of the file.
func (g *gen) writeRun() error {
	o := g.o
	head := []*wandbfile.Record{
		{Kind: wandbfile.KindHeader, Header: &wandbfile.Header{Producer: "0.31.0+runferry-genwandb", MinConsumer: "0.1.0"}},
		{Kind: wandbfile.KindRun, Run: &wandbfile.Run{
			RunID: o.id, Entity: o.entity, Project: o.project, DisplayName: "bench-" + o.id, JobType: "train",
			Host: "bench-host", StartTime: startTime, Tags: []string{"bench"},
			Config: &wandbfile.Config{Update: []wandbfile.Item{
				wandbfile.HistoryItem(`{"value":0.0003}`, "lr"),
				wandbfile.HistoryItem(`{"value":256}`, "batch_size"),
				wandbfile.HistoryItem(`{"value":"adamw"}`, "optimizer"),
			}},
		}},
		{Kind: wandbfile.KindTelemetry, Telemetry: &wandbfile.Telemetry{PythonVersion: "3.11.9", CLIVersion: "0.31.0", CoreVersion: "0.31.0", Platform: "linux-x86_64"}},
	}
	for _, rec := range head {
		if err := g.write(rec); err != nil {
			return err
		}
	}
	keys := metricKeys(o.keys)
	g.last = make(map[string]string, len(keys))
	items := make([]wandbfile.Item, 0, len(keys)+3)
	paths := make([][]string, len(keys))
	for i, k := range keys {
		paths[i] = []string{k}
	}
	for row := range o.rows {
		step := int64(row)
		items = items[:0]
		for i := range keys {
			v := g.value(i, row)
			g.res.HistoryPoints++
			g.res.Sum += v.f
			items = append(items, wandbfile.Item{NestedKey: paths[i], ValueJSON: v.json})
		}
		ts := float64(startTime.Unix()) + float64(row)*0.05 + 0.0123
		runtime := float64(row)*0.05 + 1.5
		items = append(items,
			wandbfile.HistoryItem(strconv.FormatFloat(ts, 'g', -1, 64), "_timestamp"),
			wandbfile.HistoryItem(strconv.FormatFloat(runtime, 'f', 9, 64), "_runtime"),
			wandbfile.HistoryItem(strconv.FormatInt(step, 10), "_step"))
		if err := g.write(&wandbfile.Record{Kind: wandbfile.KindHistory, History: &wandbfile.History{Items: items, Step: &step}}); err != nil {
			return err
		}
		if o.statsEvery > 0 && (row+1)%o.statsEvery == 0 {
			if err := g.writeStats(row); err != nil {
				return err
			}
		}
		if (row+1)%1000 == 0 {
			line := fmt.Sprintf("step %d\n", step)
			out := &wandbfile.Output{Timestamp: startTime.Add(time.Duration(row) * 50 * time.Millisecond), Line: line}
			if err := g.write(&wandbfile.Record{Kind: wandbfile.KindOutputRaw, Output: out}); err != nil {
				return err
			}
		}
	}
	if o.rows > 0 {
		for i, k := range keys {
			g.last[k] = items[i].ValueJSON
		}
	}
	summary := &wandbfile.Summary{}
	for _, k := range keys {
		if v, ok := g.last[k]; ok {
			summary.Update = append(summary.Update, wandbfile.HistoryItem(v, k))
		}
	}
	if err := g.write(&wandbfile.Record{Kind: wandbfile.KindSummary, Summary: summary}); err != nil {
		return err
	}
	runtime := int32(float64(o.rows)*0.05 + 2)
	return g.write(&wandbfile.Record{Kind: wandbfile.KindExit, Exit: &wandbfile.Exit{Runtime: runtime}})
}

// number is one generated value: as written and as a reader parses it.
type number struct {
	f    float64
	json string
}

// value returns metric i at row: smooth curves plus noise, like training
// metrics. A few metrics are integers.
func (g *gen) value(i, row int) number {
	t := float64(row)
	noise := g.rng.Float64() - 0.5
	var f float64
	switch i % 10 {
	case 0: // loss-like, decreasing
		f = 2.5*math.Exp(-t/2e5) + 0.3 + 0.05*noise
	case 1: // accuracy-like
		f = 0.95 - 0.6*math.Exp(-t/1.5e5) + 0.01*noise
	case 2: // schedule
		f = 3e-4 * (0.5 + 0.5*math.Cos(math.Pi*t/1e6))
	case 5: // integer counter
		n := int64(row)*int64(i+1) + int64(i)
		return number{float64(n), strconv.FormatInt(n, 10)}
	default:
		f = float64(i) + math.Sin(t/1000+float64(i)) + 0.1*noise
	}
	// Most training metrics are float32 on the GPU, logged as float64.
	f = float64(float32(f))
	return number{f, strconv.FormatFloat(f, 'g', -1, 64)}
}

// writeStats writes one stats record for the time of row.
func (g *gen) writeStats(row int) error {
	items := make([]wandbfile.Item, len(statsKeys))
	for i, k := range statsKeys {
		f := math.Round((float64(i*7%50)+g.rng.Float64()*10)*1000) / 1000
		items[i] = wandbfile.Item{Key: k, ValueJSON: strconv.FormatFloat(f, 'g', -1, 64)}
		g.res.StatsPoints++
		g.res.Sum += f
	}
	g.res.StatsRecords++
	ts := startTime.Add(time.Duration(row) * 50 * time.Millisecond)
	return g.write(&wandbfile.Record{Kind: wandbfile.KindStats, Stats: &wandbfile.Stats{Timestamp: ts, Items: items}})
}

// writeFiles writes the files/ folder of a finished online run.
func writeFiles(dir string, o options, last map[string]string) error {
	config := "_wandb:\n  value:\n    cli_version: 0.31.0\n    python_version: 3.11.9\n" +
		"batch_size:\n  value: 256\nlr:\n  value: 0.0003\noptimizer:\n  value: adamw\n"
	summary := map[string]json.RawMessage{}
	for k, v := range last {
		summary[k] = json.RawMessage(v)
	}
	summary["_step"] = json.RawMessage(strconv.Itoa(max(o.rows-1, 0)))
	summaryJSON, err := json.Marshal(summary)
	if err != nil {
		return err
	}
	metadata := fmt.Sprintf(`{"os":"Linux-6.1-x86_64","python":"CPython 3.11.9","startedAt":%q,"program":"train.py","host":"bench-host","cpu_count":2}`,
		startTime.Format(time.RFC3339Nano))
	var log strings.Builder
	for row := 999; row < o.rows; row += 1000 {
		fmt.Fprintf(&log, "step %d\n", row)
	}
	files := map[string]string{
		"config.yaml":         config,
		"wandb-summary.json":  string(summaryJSON),
		"wandb-metadata.json": metadata,
		"output.log":          log.String(),
		"requirements.txt":    "torch==2.5.1\nwandb==0.31.0\n",
	}
	var errs []error
	for name, content := range files {
		errs = append(errs, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	return errors.Join(errs...)
}
