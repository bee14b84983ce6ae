package wandbdir

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runferry/runferry/internal/wandbfile"
)

// Parsers for the JSON, JSON-lines and YAML files W&B writes into run
// folders. Every one of them reads outside bytes and is fuzzed.

// maxSmallFile caps wandb-metadata.json, wandb-summary.json and
// config.yaml (W&B's own limits are far lower).
const maxSmallFile = 64 << 20

// maxJSONLine caps one line of a pre-0.10 wandb-history.jsonl or
// wandb-events.jsonl.
const maxJSONLine = 64 << 20

// metadata is what runferry takes from wandb-metadata.json (the same fields
// as the EnvironmentRecord of SDK 0.21+). SDKs before 0.10 also kept the
// run's state there: project, name, notes and jobType from wandb.init,
// state ("running", then "finished", "failed" or "killed"), exitcode once
// the program ended, and heartbeatAt, rewritten every 15 s while it ran.
type metadata struct {
	StartedAt                                  time.Time
	Host, Username, Email, Program, CodePath   string
	Root, Python, OS, Executable, Docker, CUDA string
	GPU, GitRemote, GitCommit, Args            string // Args: a JSON array
	GPUCount, CPUCount                         int64

	Project, Name, Notes, JobType, State string
	ExitCode                             *int64 // nil: none recorded
	HeartbeatAt                          time.Time
}

// readMetadata reads wandb-metadata.json; nil when it is absent or not a
// JSON object.
func readMetadata(path string) *metadata {
	b, err := readCapped(path, maxSmallFile)
	if err != nil {
		return nil
	}
	md, err := parseMetadata(b)
	if err != nil {
		return nil
	}
	return md
}

// parseMetadata parses the content of wandb-metadata.json.
func parseMetadata(b []byte) (*metadata, error) {
	v, err := wandbfile.ParseValueJSON(string(b))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("wandb-metadata.json is not a JSON object")
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	md := &metadata{
		Host: str("host"), Username: str("username"), Email: str("email"), Program: str("program"),
		CodePath: str("codePath"), Root: str("root"), Python: str("python"), OS: str("os"),
		Executable: str("executable"), Docker: str("docker"), CUDA: str("cuda"), GPU: str("gpu"),
	}
	if md.CUDA == "" {
		md.CUDA = str("cudaVersion")
	}
	md.GPUCount, _ = wandbfile.ValueInt(m["gpu_count"])
	md.CPUCount, _ = wandbfile.ValueInt(m["cpu_count"])
	if git, ok := m["git"].(map[string]any); ok {
		md.GitRemote, _ = git["remote"].(string)
		md.GitCommit, _ = git["commit"].(string)
	}
	if args, ok := m["args"].([]any); ok {
		md.Args = wandbfile.ValueToJSON(args)
	}
	md.StartedAt = parseTime(str("startedAt"))
	md.Project, md.Name, md.Notes, md.JobType = str("project"), str("name"), str("notes"), str("jobType")
	md.State = str("state")
	if code, ok := wandbfile.ValueInt(m["exitcode"]); ok {
		md.ExitCode = &code
	}
	md.HeartbeatAt = parseTime(str("heartbeatAt"))
	return md, nil
}

// parseTime reads the ISO times of wandb-metadata.json; W&B writes UTC,
// with or without a zone suffix. The zero time when unparsable.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// parseSummaryJSON parses wandb-summary.json (extended JSON: NaN and
// Infinity may appear bare).
func parseSummaryJSON(b []byte) (map[string]any, error) {
	v, err := wandbfile.ParseValueJSON(string(b))
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("wandb-summary.json is not a JSON object")
	}
	return m, nil
}

// parseConfigYAML parses config.yaml into the run's config. Both shapes W&B
// writes are read: legacy (`wandb_version: 1`, then `key: {desc, value}`)
// and wandb-core (`key: {value}`). The `wandb_version` line and the
// `_wandb` block are returned separately, the latter in internal.
func parseConfigYAML(b []byte) (config map[string]any, internal any, err error) {
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("config.yaml: %v", err)
	}
	if doc == nil {
		return map[string]any{}, nil, nil
	}
	top, ok := wandbfile.SchemaValue(doc).(map[string]any)
	if !ok {
		return nil, nil, errors.New("config.yaml is not a mapping")
	}
	config = map[string]any{}
	for k, v := range top {
		if k == "wandb_version" {
			continue
		}
		if w, ok := v.(map[string]any); ok {
			if inner, ok := w["value"]; ok && (len(w) == 1 || len(w) == 2 && hasKey(w, "desc")) {
				v = inner
			}
		}
		if k == wandbfile.KeyWandb {
			internal = v
			continue
		}
		config[k] = v
	}
	return config, internal, nil
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// readJSONLines calls fn for each line of a JSON-lines file
// (wandb-history.jsonl, wandb-events.jsonl). A line that is not a JSON
// object is passed with its error; a missing file calls fn never.
func readJSONLines(path string, fn func(line int, obj map[string]any, err error) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return scanJSONLines(f, fn)
}

// scanJSONLines is readJSONLines over a reader.
func scanJSONLines(r io.Reader, fn func(line int, obj map[string]any, err error) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		text, err := readLine(br, maxJSONLine)
		if err == io.EOF && text == "" {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
		}
		if strings.TrimSpace(text) != "" {
			v, perr := wandbfile.ParseValueJSON(text)
			obj, ok := v.(map[string]any)
			if perr == nil && !ok {
				perr = errors.New("not a JSON object")
			}
			if ferr := fn(n, obj, perr); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
	}
}

// errLineTooLong reports a JSON-lines line over the cap.
var errLineTooLong = errors.New("line too long")

// readLine reads one line without its "\n"; io.EOF comes with the last,
// unterminated line (or "" at the end).
func readLine(br *bufio.Reader, limit int) (string, error) {
	var sb strings.Builder
	for {
		chunk, err := br.ReadSlice('\n')
		if sb.Len()+len(chunk) > limit {
			return "", errLineTooLong
		}
		sb.Write(chunk)
		switch err {
		case nil:
			return strings.TrimSuffix(sb.String(), "\n"), nil
		case bufio.ErrBufferFull:
			continue
		default:
			return sb.String(), err
		}
	}
}

// eventsToStats turns a row of a pre-0.10 wandb-events.jsonl into a stats
// sample: its time and its items, keys without the "system." prefix.
func eventsToStats(obj map[string]any) (time.Time, []wandbfile.Value) {
	var t time.Time
	if ms, ok := wandbfile.TimestampMillis(obj[wandbfile.KeyTimestamp]); ok {
		t = time.UnixMilli(ms).UTC()
	}
	var items []wandbfile.Value
	for _, it := range objectItems(obj) {
		k := it.Path[0]
		if k == wandbfile.KeyTimestamp || k == wandbfile.KeyRuntime || k == wandbfile.KeyWandb {
			continue
		}
		it.Path = []string{strings.TrimPrefix(k, "system.")}
		items = append(items, it)
	}
	return t, items
}
